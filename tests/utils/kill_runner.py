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
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

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

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

R = TypeVar("R", bound="DataclassInstance")

# Which calls of the method are the step, judged by their positional arguments (the others
# pass through).
When = Callable[[tuple[Any, ...]], bool]


def any_call(args: tuple[Any, ...]) -> bool:
    return True


def first_is(value: str) -> When:
    return lambda args: bool(args) and args[0] == value


def alias_is(alias: str) -> When:  # ModelRegistry.set_alias(name, alias, version)
    return lambda args: len(args) > 1 and args[1] == alias


# step -> (which backend, method, which of its calls)
STEPS: dict[str, tuple[str, str, When]] = {
    "image build": ("builder", "build", any_call),
    "qa deploy": ("target", "deploy", first_is("qa")),
    "production deploy": ("target", "deploy", first_is("production")),
    "promotion": ("registry", "set_alias", alias_is("production")),
    "rollback": ("target", "rollback", first_is("production")),
}


class Pausing:
    """Proxies ``inner``; ``method`` (when its arguments match ``when``) does its work, then
    marks the step reached and waits for the kill."""

    def __init__(self, inner: Any, method: str, when: When, marker: Path) -> None:
        self._inner, self._method, self._when, self._marker = inner, method, when, marker

    def __getattr__(self, attr: str) -> Any:
        real = getattr(self._inner, attr)
        if attr != self._method:
            return real

        def paused(*args: Any, **kwargs: Any) -> Any:
            result = real(*args, **kwargs)
            if self._when(args):
                self._marker.write_text(attr)
                threading.Event().wait()  # until SIGKILL
            return result

        return paused


def pausing_at(
    resources: R, steps: dict[str, tuple[str, str, When]], step: str, marker_dir: Path
) -> R:
    """``resources`` (a dataclass) with the backend of ``step`` paused in the middle of it."""
    which, method, when = steps[step]
    marker = marker_dir / step.replace(" ", "-")
    paused = Pausing(getattr(resources, which), method, when, marker)
    return replace(resources, **{which: paused})


def kill_when_paused(
    process: subprocess.Popen[bytes], marker: Path, step: str, timeout: float = 120
) -> None:
    """Wait until a runner started with ``--pause-at`` writes ``marker`` (it is in the middle
    of ``step``), then SIGKILL its process group (the flow's; services live on)."""
    deadline = time.monotonic() + timeout
    try:
        while not marker.exists():
            assert process.poll() is None, f"the run ended (rc {process.returncode}) before {step}"
            assert time.monotonic() < deadline, f"the run never reached {step}"
            time.sleep(0.1)
    finally:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL


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
        res = pausing_at(res, STEPS, args.pause_at, args.marker)
    state = release(resources=res, return_state=True)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    raise SystemExit(main())
