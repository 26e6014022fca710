"""Issue 8, proved on the real flow and in-memory backends: nothing lost, nothing stuck.

- Lake faults: the lake fails right after each step in turn; reruns finish the work, and every
  file ends exactly once in curated or quarantine.
- Poison files: an oversized file is quarantined unread, a 1,000-character name is handled, and
  a file that crashes every run is dead-lettered after three and stops failing runs.
- Overlaps: concurrent runs over 50 files with re-uploads merge each content once and
  register at most one version per data fingerprint.
"""

from __future__ import annotations

import contextvars
import hashlib
import io
import json
import random
import threading
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from prefect import task
from prefect.cache_policies import NONE

import flows.retraining as retraining_module
from backends import Backends
from backends.local.memory import InMemoryDataLake
from core import dead_letter as dl
from core.interfaces import ConflictError, DataLake
from core.lake import MANIFEST, REASON_SUFFIX
from core.results import RetrainingSummary
from core.settings import Settings, get_settings
from expectations.report import ValidationReport
from flows.outcome import result_of
from flows.retraining import retraining
from tests.utils.faulty_lake import STEPS, FaultyDataLake
from tests.utils.figures import ReliabilityFigures
from training import data as tdata

DATA = Path(__file__).resolve().parents[2] / "data"
BAD = ["out_of_range.csv", "missing_column.csv", "wrong_types.csv", "nan_values.csv"]


@task(name="validate-data", cache_policy=NONE)
def fast_validation(path: Path, file: str, docs_dir: Path) -> ValidationReport:
    """Stands in for the Great Expectations run (seconds per file) where the lake is under
    test, not validation: files named ``bad-*`` fail, every other one passes."""
    if Path(file).name.startswith("bad-"):
        return ValidationReport(success=False, suite="s", file=file, rows=None, error="bad")
    frame = tdata.load_dataset(path, file)
    return ValidationReport(success=True, suite="s", file=file, rows=len(frame))


def sha(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def slices(count: int, rows: int, seed: int) -> list[bytes]:
    """``count`` distinct valid CSV files of ``rows`` rows drawn from the reference data."""
    reference = tdata.reference_dataset()
    rng = random.Random(seed)
    files = []
    for _ in range(count):
        picked = reference.iloc[sorted(rng.sample(range(len(reference)), rows))]
        files.append(picked.to_csv(index=False).encode())
    return files


def run(backends: Backends) -> tuple[bool, RetrainingSummary | None]:
    state = retraining(resources=backends, return_state=True)
    return state.is_completed(), result_of(state, RetrainingSummary)


def non_reasons(lake: InMemoryDataLake, container: str, prefix: str = "") -> list[bytes]:
    return [
        lake.get(container, r.name)[0]
        for r in lake.list(container, prefix)
        if not r.name.endswith(REASON_SUFFIX)
    ]


def arrive_during_runs(
    lake: DataLake,
    landing: str,
    blobs: list[bytes],
    waiting: int,
    rng: random.Random,
    delay: tuple[float, float],
) -> set[str]:
    """Land ``blobs[waiting:]`` and 4 re-uploads of waiting ones (same content) under the
    names ``f00.csv``... at random moments (arrival times, not synchronisation), as
    `mlops retrain --data` uploads: never over a file still waiting. Returns their hashes."""
    landed = set()
    for blob in blobs[waiting:] + rng.sample(blobs[:waiting], 4):  # new and same content
        time.sleep(rng.uniform(*delay))
        name = f"f{rng.randrange(waiting):02}.csv"
        try:
            lake.put(landing, name, blob, if_none_match=True)
        except ConflictError:
            lake.put(landing, f"{name}.{sha(blob)[:8]}.csv", blob, if_none_match=True)
        landed.add(sha(blob))
    return landed


def count_files(
    figures: ReliabilityFigures, source: str, found: Counter[str], landed: list[bytes]
) -> None:
    """Files lost: landed but found nowhere; duplicates: found more than once."""
    expected = Counter(sha(b) for b in landed)
    figures.add(
        source,
        files_lost=sum((expected - found).values()),
        duplicates=sum((found - expected).values()),
    )


def assert_versions_unique(backends: Backends, settings: Settings) -> None:
    versions = backends.registry.list_versions(settings.model_name)
    per_data = Counter((v.tags["data_fingerprint"], v.tags["params_digest"]) for v in versions)
    assert all(n == 1 for n in per_data.values()), per_data


def test_a_fault_after_any_lake_step_is_finished_by_a_rerun(
    backends: Backends,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    reliability_figures: ReliabilityFigures,
) -> None:
    monkeypatch.setattr(retraining_module, "validate_data", fast_validation)
    inner = backends.datalake
    assert isinstance(inner, InMemoryDataLake)
    faulty = FaultyDataLake(inner, settings.landing_container)
    backends = replace(backends, datalake=faulty)
    inner.ensure_containers(settings.landing_container)
    good = slices(len(STEPS), 60, seed=8)
    bad = [(DATA / "bad" / name).read_bytes() for name in BAD]

    for i, step in enumerate(STEPS):
        inner.put(settings.landing_container, f"good-{step}.csv", good[i])
        inner.put(settings.landing_container, f"bad-{BAD[i]}", bad[i])
        faulty.arm(step)
        before = faulty.faults
        run(backends)
        assert faulty.faults > before, step  # the step did fail
        faulty.disarm()
        for _ in range(3):  # rerun until landing is empty
            run(backends)
            if not inner.list(settings.landing_container):
                break
        assert inner.list(settings.landing_container) == [], step
    assert faulty.faults >= len(STEPS)

    # Every good file exactly once in curated, every bad one exactly once in quarantine.
    accepted = Counter(sha(b) for b in non_reasons(inner, settings.curated_container, "accepted/"))
    quarantined = Counter(sha(b) for b in non_reasons(inner, settings.quarantine_container))
    count_files(reliability_figures, "lake faults", accepted + quarantined, good + bad)
    assert accepted == Counter(sha(b) for b in good)
    assert quarantined == Counter(sha(b) for b in bad)
    for ref in inner.list(settings.quarantine_container):  # each with its reason
        if not ref.name.endswith(REASON_SUFFIX):
            assert inner.exists(settings.quarantine_container, ref.name + REASON_SUFFIX)
    manifest = json.loads(inner.get(settings.curated_container, MANIFEST)[0])
    assert sorted(manifest["sources"]) == sorted(sha(b) for b in good)
    assert manifest["rows"] == 60 * len(good)
    curated = pd.read_parquet(io.BytesIO(inner.get(*_data_blob(inner, manifest))[0]))
    expected = pd.concat(tdata.load_dataset(b, "x.csv") for b in good)
    assert sorted(map(tuple, curated.round(9).values.tolist())) == sorted(
        map(tuple, tdata.to_training_frame(expected).round(9).values.tolist())
    )
    assert_versions_unique(backends, settings)
    assert inner.list(settings.dead_letter_container, dl.ATTEMPTS_PREFIX) == []  # no leftovers


def _data_blob(lake: InMemoryDataLake, manifest: dict[str, str]) -> tuple[str, str]:
    ref = lake.ref(manifest["data_uri"])
    return ref.container, ref.name


def test_poison_files_are_quarantined_or_dead_lettered_and_stop_failing_runs(
    backends: Backends, settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MLOPS_MAX_FILE_BYTES", "5000")
    get_settings.cache_clear()
    inner = backends.datalake
    faulty = FaultyDataLake(inner, settings.landing_container)
    backends = replace(backends, datalake=faulty)
    landing = settings.landing_container
    inner.ensure_containers(landing)
    long_bad = "n" * 1000 + ".csv"  # the quarantine prefix would overflow 1,024 characters
    crasher = "c" * 1000 + ".csv"  # and this one crashes every run that reads it
    inner.put(landing, "huge.csv", (DATA / "good" / "diabetes_batch_a.csv").read_bytes())
    inner.put(landing, long_bad, (DATA / "bad" / "too_few_rows.csv").read_bytes())
    inner.put(landing, crasher, b"age,sex\n1,2\n")
    faulty.poison.add(crasher)

    results = []
    for _ in range(3):
        completed, summary = run(backends)
        assert not completed and summary is not None
        results.append({f.file: (f.result, f.details) for f in summary.files})

    first = results[0]
    assert first["huge.csv"][0] == "quarantined" and "not read" in first["huge.csv"][1]
    assert "huge.csv" not in faulty.gets  # never read into memory
    assert first[long_bad][0] == "quarantined"
    assert [r[crasher][0] for r in results] == ["failed", "failed", "dead-lettered"]
    assert "MemoryError" in results[0][crasher][1]

    quarantined = [r.name for r in inner.list(settings.quarantine_container)]
    assert len(quarantined) == 4 and all(len(n) <= 1024 for n in quarantined)
    dead = [r.name for r in inner.list(settings.dead_letter_container, dl.FILES_PREFIX)]
    (copy,) = [n for n in dead if not n.endswith(dl.ERROR_SUFFIX)]
    error = json.loads(inner.get(settings.dead_letter_container, copy + dl.ERROR_SUFFIX)[0])
    assert error["attempts"] == 3 and "MemoryError" in error["reason"]

    completed, summary = run(backends)  # the fourth run: nothing left to fail on
    assert completed and summary is not None and summary.files == ()
    assert inner.list(landing) == []


def test_overlapping_runs_merge_each_file_once(
    backends: Backends,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    reliability_figures: ReliabilityFigures,
) -> None:
    monkeypatch.setattr(retraining_module, "validate_data", fast_validation)
    lake = backends.datalake
    landing = settings.landing_container
    lake.ensure_containers(landing)
    blobs = slices(50, 60, seed=3)  # issue 8: 50 files, 8 of them arriving during the runs
    waiting = 42
    uploaded: set[str] = set()
    for i, blob in enumerate(blobs[:waiting]):
        lake.put(landing, f"f{i:02}.csv", blob)
        uploaded.add(sha(blob))
    rng = random.Random(5)
    errors: list[BaseException] = []

    def worker() -> None:
        try:
            for _ in range(2):
                run(backends)
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    # Each thread runs in a copy of this context: it carries the test's Prefect settings.
    threads = [
        threading.Thread(target=contextvars.copy_context().run, args=(worker,)) for _ in range(3)
    ]
    started = time.monotonic()
    for thread in threads:
        thread.start()
    uploaded |= arrive_during_runs(lake, landing, blobs, waiting, rng, (0.2, 1.5))
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    for _ in range(3):  # whatever landed after the last round
        if not lake.list(landing):
            break
        run(backends)
    assert time.monotonic() - started < 90

    assert lake.list(landing) == []
    manifest = json.loads(lake.get(settings.curated_container, MANIFEST)[0])
    merged = Counter(manifest["sources"])
    reliability_figures.add(
        "overlapping runs",
        files_lost=len(uploaded - set(merged)),
        duplicates=sum(n - 1 for n in merged.values()),
    )
    assert len(manifest["sources"]) == len(set(manifest["sources"]))  # each merged once
    assert set(manifest["sources"]) == uploaded
    assert manifest["rows"] == 60 * len(uploaded)
    assert lake.list(settings.quarantine_container) == []
    assert_versions_unique(backends, settings)
