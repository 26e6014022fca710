"""A release run in its own process, for the kill-at-every-step fault test.

``python -m tests.utils.kill_runner REGISTRY_DIR MARKER_DIR [--pause-at STEP] [--fail-production]``
runs the real release flow (``flows.release``) on the local registry in ``REGISTRY_DIR`` and
the local process target (``MLOPS_*`` settings from the environment name its state folder and
ports). With ``--pause-at``, the backend call of that step is made, then the process writes
``MARKER_DIR/<step>`` and stops there: the test SIGKILLs it in the middle of the step, after
the step's effect and before the flow recorded it (the worst moment). ``--fail-production``
makes the production smoke test fail, so the release rolls back.
"""

from __future__ import annotations

import argparse
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from backends.local.memory_target import InMemoryImageBuilder
from backends.local.process_target import ProcessTarget
from backends.local.registry import LocalModelRegistry
from core.interfaces import Endpoint
from core.probe import HttpProbe
from core.settings import get_settings
from core.smoke import SmokeCheck, SmokeConfig, SmokeReport
from flows.release import release
from flows.resources import ReleaseResources
from tests.utils.flow_harness import smoke_report

# step -> (which backend, method, the first argument that must match, or None for any)
STEPS: dict[str, tuple[str, str, str | None]] = {
    "image build": ("builder", "build", None),
    "qa deploy": ("target", "deploy", "qa"),
    "production deploy": ("target", "deploy", "production"),
    "promotion": ("registry", "set_alias", None),  # alias "production": matched below
    "rollback": ("target", "rollback", "production"),
}


class Pausing:
    """Proxies ``inner``; ``method`` (when its first argument matches) does its work, then
    marks the step reached and waits for the kill."""

    def __init__(self, inner: Any, method: str, first: str | None, marker: Path) -> None:
        self._inner, self._method, self._first, self._marker = inner, method, first, marker

    def __getattr__(self, attr: str) -> Any:
        real = getattr(self._inner, attr)
        if attr != self._method:
            return real

        def paused(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            if self._first is None or (args and args[0] == self._first):
                if attr != "set_alias" or args[1] == "production":
                    self._marker.write_text(attr)
                    threading.Event().wait()  # until SIGKILL
            return result

        return paused


class FailingInProduction(HttpProbe):
    """The real smoke test, failing in production: the release must roll back."""

    def smoke_test(
        self, endpoint: Endpoint, golden: dict[str, Any], expected_version: str, config: SmokeConfig
    ) -> SmokeReport:
        report = super().smoke_test(endpoint, golden, expected_version, config)
        if endpoint.environment != "production":
            return report
        check = SmokeCheck(name="injected", passed=False, detail="injected", duration_ms=0.0)
        return smoke_report(endpoint, expected_version, [*report.checks, check])


def resources(registry_dir: Path, fail_production: bool = False) -> ReleaseResources:
    settings = get_settings()
    ports = {"qa": settings.qa_port, "production": settings.production_port}
    return ReleaseResources(
        registry=LocalModelRegistry(registry_dir),
        builder=InMemoryImageBuilder(),
        target=ProcessTarget(settings.state_path / "targets", ports, health_timeout=30),
        probe=FailingInProduction() if fail_production else HttpProbe(),
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("registry", type=Path)
    parser.add_argument("marker", type=Path)
    parser.add_argument("--pause-at", choices=sorted(STEPS))
    parser.add_argument("--fail-production", action="store_true")
    args = parser.parse_args(argv)
    res = resources(args.registry, args.fail_production)
    if args.pause_at:
        which, method, first = STEPS[args.pause_at]
        marker = args.marker / args.pause_at.replace(" ", "-")
        res = replace(res, **{which: Pausing(getattr(res, which), method, first, marker)})
    state = release(resources=res, return_state=True)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    raise SystemExit(main())
