"""Issue 8, kill at every step: SIGKILL the release's flow process in the middle of image
build, QA deploy, production deploy, promotion and rollback; after a rerun production serves
a smoke-tested version, QA is gone, the registry is consistent, nothing is duplicated, and
the killed run's lock did not hold the rerun for its lease.

Real processes throughout: the flow runs in ``python -m tests.utils.kill_runner`` (started
here, in its own process group, as a worker starts a flow run), scoring services are local
processes behind the process target's proxy, the registry is the local one on disk. The
runner pauses right after the step's effect (tests/utils/kill_runner.py), where the test
kills it: the moment the flow has done something and not yet recorded it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from backends.local.registry import LocalModelRegistry
from core.probe import HttpProbe
from core.settings import get_settings
from tests.utils import kill_runner
from tests.utils.figures import ReliabilityFigures
from tests.utils.net import free_port
from training import train

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "data" / "good"
LEASE = 600  # a rerun waiting for the dead run's lease would time out
MODEL = "kill-release"


@pytest.fixture(scope="module")
def stack(flows_api: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """One release stack for the module (its first release is the slow part): a model
    folder, a registry with v1 in production, settings for this test and its runners."""
    tmp = tmp_path_factory.mktemp("kill")
    out = tmp / "model"
    assert train.main(["--data", str(DATA / "diabetes_batch_a.csv"), "--output", str(out)]) == 0
    env = {
        "MLOPS_STATE_DIR": str(tmp / "state"),
        "MLOPS_MODEL_NAME": MODEL,
        "MLOPS_QA_PORT": str(free_port()),
        "MLOPS_PRODUCTION_PORT": str(free_port()),
        "MLOPS_SMOKE_REQUESTS": "20",
        "MLOPS_LOCK_LEASE_SECONDS": str(LEASE),
    }
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        get_settings.cache_clear()
        child = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_API_URL": flows_api}
        stack = Stack(tmp, out, child)
        try:
            v1 = stack.register("v1-data")
            first = stack.run()
            assert first.wait(timeout=180) == 0, "the first release failed"
            assert stack.production() == v1
            yield stack
        finally:
            target = kill_runner.resources(stack.registry_dir).target
            for environment in ("qa", "production"):
                target.teardown(environment)
    get_settings.cache_clear()


class Stack:
    def __init__(self, tmp: Path, model_folder: Path, env: dict[str, str]) -> None:
        self.tmp, self.model_folder, self.env = tmp, model_folder, env
        self.registry_dir = tmp / "registry"
        self.registry = LocalModelRegistry(self.registry_dir)

    def register(self, fingerprint: str) -> str:
        version = self.registry.register(
            MODEL, self.model_folder, "model.joblib", {"data_fingerprint": fingerprint}
        )
        self.registry.set_alias(MODEL, "candidate", version.version)
        return version.version

    def production(self) -> str | None:
        found = self.registry.get_alias(MODEL, "production")
        return found.version if found else None

    def run(self, *flags: str) -> subprocess.Popen[bytes]:
        """The release flow in a process of its own, in its own process group."""
        argv = [sys.executable, "-m", "tests.utils.kill_runner", str(self.registry_dir)]
        return subprocess.Popen(
            [*argv, str(self.tmp), *flags], env=self.env, cwd=ROOT, start_new_session=True
        )


def refuses(port: int) -> bool:
    try:
        httpx.get(f"http://127.0.0.1:{port}/", timeout=2)
    except httpx.TransportError:
        return True
    return False


STEPS = ["image build", "qa deploy", "production deploy", "promotion", "rollback"]


@pytest.mark.parametrize("step", STEPS)
def test_a_release_killed_mid_step_is_finished_by_a_rerun(
    step: str, stack: Stack, reliability_figures: ReliabilityFigures
) -> None:
    before = stack.production()
    new = stack.register(f"{step}-data")
    flags = ["--fail-production"] if step == "rollback" else []
    killed = stack.run("--pause-at", step, *flags)
    marker = stack.tmp / step.replace(" ", "-")
    kill_runner.kill_when_paused(killed, marker, step)

    rerun = stack.run(*flags)
    started = time.monotonic()
    # The killed run's lease lasts LEASE s: a rerun it held would time out here.
    rc = rerun.wait(timeout=LEASE / 3)
    took = time.monotonic() - started

    registry, settings = stack.registry, get_settings()
    expected = before if step == "rollback" else new
    assert rc == (1 if step == "rollback" else 0)  # a rolled back release fails its run
    # Production serves a smoke-tested version: the one the registry records, live.
    prod = registry.get_alias(MODEL, "production")
    assert prod is not None and prod.version == expected
    assert prod.tags.get("release.status") == "production"  # set only after its smoke test
    target = kill_runner.resources(stack.registry_dir).target
    endpoint = target.current("production")
    assert endpoint is not None and endpoint.url.endswith(f":{settings.production_port}")
    assert HttpProbe().served_version(endpoint) == expected
    # QA is gone: no alias, nothing listening, no state.
    assert registry.get_alias(MODEL, "qa") is None
    assert refuses(settings.qa_port)
    assert target.current("qa") is None
    # The registry is consistent: each data registered once; a rolled back version rejected.
    per_data = Counter(v.tags["data_fingerprint"] for v in registry.list_versions(MODEL))
    reliability_figures.add(f"kill at {step}", duplicates=sum(n - 1 for n in per_data.values()))
    assert per_data[f"{step}-data"] == 1 and set(per_data.values()) == {1}
    if step == "rollback":
        assert registry.get(MODEL, new).tags.get("release.status") == "rejected"
    print(f"kill at {step}: rerun {took:.1f} s")  # noqa: T201 (test timing)
