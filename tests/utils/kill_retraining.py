"""A retraining run in its own process, for the kill-at-every-step fault test.

``python -m tests.utils.kill_retraining MARKER_DIR [--pause-at STEP]`` runs the real
retraining flow (``flows.retraining``) on the backends of the local profile, as a deployed
run gets them: the data lake in Azurite, training jobs as processes (``SubprocessCompute``),
the registry on disk, the model lock on the Prefect API; ``MLOPS_*`` settings from the
environment say where. Only Great Expectations is stood in for (``fast_validation``: its
import costs seconds per process; validation is tested on its own). With ``--pause-at``,
the backend call of that step is made, then the process writes ``MARKER_DIR/<step>`` and
stops there for the test to SIGKILL it (tests/utils/kill_runner.py: ``Pausing``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import flows.retraining as retraining_module
from backends import get_backends
from core.settings import get_settings
from tests.utils.flow_harness import fast_validation
from tests.utils.kill_runner import When, alias_is, any_call, pausing_at

STEPS: dict[str, tuple[str, str, When]] = {
    # The job runs (a process of its own); the flow has not seen it finish.
    "training": ("compute", "submit", any_call),
    # The version exists; the candidate alias and the announcement do not.
    "registration": ("registry", "register_output", any_call),
    # The candidate alias is set; the model-registered event was never sent.
    "announcement": ("registry", "set_alias", alias_is("candidate")),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("marker", type=Path)
    parser.add_argument("--pause-at", choices=sorted(STEPS))
    args = parser.parse_args(argv)
    backends = get_backends(get_settings())
    if args.pause_at:
        backends = pausing_at(backends, STEPS, args.pause_at, args.marker)
    retraining_module.validate_data = fast_validation
    state = retraining_module.retraining(resources=backends, return_state=True)
    return 0 if state.is_completed() else 1


if __name__ == "__main__":
    raise SystemExit(main())
