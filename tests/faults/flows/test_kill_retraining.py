"""Issue 8, kill at every step, the retraining half: SIGKILL the retraining's flow process
while its training job runs, right after the version is registered, and right after the
candidate alias is set (before the announcement); a rerun then leaves the registry
consistent (one version per data and parameters, the newest one the candidate, announced),
every file exactly once in curated or quarantine, and the killed run's lock not held.

Real parts, as a deployed run gets them (tests/utils/kill_retraining.py): the data lake in
Azurite, training jobs as processes, the registry on disk, the model lock on the Prefect
API, the events sent to it. The runner pauses right after the step's effect, where the test
kills its process group.
"""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from azure.core.exceptions import ResourceNotFoundError
from azure.storage.blob import BlobServiceClient

from backends.blob_datalake import BlobDataLake
from backends.local.registry import LocalModelRegistry
from core.lake import MANIFEST, REASON_SUFFIX
from core.outcomes import ANNOUNCED_TAG
from core.settings import Settings, load_settings
from tests.faults.flows.test_retraining import sha, slices
from tests.utils import kill_runner
from tests.utils.azurite import AzuriteInstance
from tests.utils.figures import ReliabilityFigures
from tests.utils.kill_retraining import STEPS

ROOT = Path(__file__).resolve().parents[3]
BAD = ROOT / "tests" / "data" / "bad" / "out_of_range.csv"
LEASE = 600  # a rerun waiting for the dead run's lease would time out
MODEL = "kill-retraining"


@dataclass
class Stack:
    tmp: Path
    settings: Settings
    env: dict[str, str]
    lake: BlobDataLake
    good: list[bytes]  # every good file landed so far
    bad: list[bytes]

    def run(self, *flags: str) -> subprocess.Popen[bytes]:
        """The retraining flow in a process of its own, in its own process group."""
        argv = [sys.executable, "-m", "tests.utils.kill_retraining", str(self.tmp), *flags]
        return subprocess.Popen(argv, env=self.env, cwd=ROOT, start_new_session=True)

    @property
    def registry(self) -> LocalModelRegistry:
        return LocalModelRegistry(self.settings.registry_path)


@pytest.fixture(scope="module")
def stack(
    flows_api: str, azurite: AzuriteInstance, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("kill-retraining")
    suffix = tmp.name.replace("_", "-").lower()[-8:]
    env = {
        "MLOPS_STATE_DIR": str(tmp / "state"),
        "MLOPS_MODEL_NAME": MODEL,
        "MLOPS_AZURITE_HOST": azurite.host,
        "MLOPS_AZURITE_PORT": str(azurite.port),
        "MLOPS_LANDING_CONTAINER": f"landing-{suffix}",
        "MLOPS_CURATED_CONTAINER": f"curated-{suffix}",
        "MLOPS_QUARANTINE_CONTAINER": f"quarantine-{suffix}",
        "MLOPS_DEAD_LETTER_CONTAINER": f"dead-letter-{suffix}",
        "MLOPS_LOCK_LEASE_SECONDS": str(LEASE),
    }
    settings = load_settings(**{k.removeprefix("MLOPS_").lower(): v for k, v in env.items()})
    child = {**os.environ, **env, "PYTHONPATH": str(ROOT), "PREFECT_API_URL": flows_api}
    lake = BlobDataLake(azurite.connection_string)
    lake.ensure_containers(settings.landing_container)
    yield Stack(tmp, settings, child, lake, [], [])
    # Keeps the session's in-memory emulator small.
    client = BlobServiceClient.from_connection_string(azurite.connection_string)
    for key, container in env.items():
        if key.endswith("_CONTAINER"):
            with contextlib.suppress(ResourceNotFoundError):
                client.delete_container(container)


def land(stack: Stack, step: str, seed: int) -> None:
    """Two good files and a bad one arrive for this step's run."""
    landing = stack.settings.landing_container
    for i, blob in enumerate(slices(2, 120, seed=seed)):
        stack.lake.put(landing, f"{step}-{i}.csv", blob)
        stack.good.append(blob)
    bad = BAD.read_bytes() + f"# {step}\n".encode()  # a bad file of its own
    stack.lake.put(landing, f"bad-{step}.csv", bad)
    stack.bad.append(bad)


@pytest.mark.parametrize("step", list(STEPS))
def test_a_retraining_killed_mid_step_is_finished_by_a_rerun(
    step: str, stack: Stack, reliability_figures: ReliabilityFigures
) -> None:
    land(stack, step, seed=list(STEPS).index(step))
    killed = stack.run("--pause-at", step)
    marker = stack.tmp / step
    kill_runner.kill_when_paused(killed, marker, step)

    rerun = stack.run()
    started = time.monotonic()
    rc = rerun.wait(timeout=LEASE / 3)  # a rerun the dead run's lease held would time out
    took = time.monotonic() - started
    assert rc == 0  # the killed run had quarantined the bad file: the rerun only trains

    settings, lake = stack.settings, stack.lake
    # Nothing lost in the lake: every good file merged once, every bad one quarantined once.
    assert lake.list(settings.landing_container) == []
    manifest = json.loads(lake.get(settings.curated_container, MANIFEST)[0])
    merged = Counter(manifest["sources"])
    quarantined = Counter(
        sha(lake.get(settings.quarantine_container, ref.name)[0])
        for ref in lake.list(settings.quarantine_container)
        if not ref.name.endswith(REASON_SUFFIX)
    )
    expected = Counter(sha(b) for b in stack.good)
    lost = sum((expected - merged).values()) + sum(
        (Counter(sha(b) for b in stack.bad) - quarantined).values()
    )
    # The registry is consistent: one version per data and parameters, the newest (trained
    # on the whole curated set) the candidate, and announced.
    registry = stack.registry
    versions = registry.list_versions(MODEL)
    per_data = Counter((v.tags["data_fingerprint"], v.tags["params_digest"]) for v in versions)
    duplicates = sum(n - 1 for n in merged.values()) + sum(n - 1 for n in per_data.values())
    reliability_figures.add(f"kill retraining at {step}", files_lost=lost, duplicates=duplicates)
    assert merged == expected and (lost, duplicates) == (0, 0)
    assert set(quarantined) == {sha(b) for b in stack.bad}
    candidate = registry.get_alias(MODEL, "candidate")
    assert candidate is not None, "the registered version never became the candidate"
    assert candidate.version == versions[-1].version
    assert candidate.tags["data_fingerprint"] == manifest["fingerprint"]
    assert candidate.tags.get(ANNOUNCED_TAG) == "true", "the new version was never announced"
    assert [v.version for v in versions if v.tags.get(ANNOUNCED_TAG) != "true"] == []
    # The lock is not left held: the rerun released it (and its holder record).
    assert list((settings.state_path / "locks").glob("*.json")) == []
    print(f"kill retraining at {step}: rerun {took:.1f} s")  # noqa: T201 (test timing)
