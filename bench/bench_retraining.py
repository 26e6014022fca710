"""Retraining time and peak memory at 100k, 1M and 10M rows, through the real code path.

For each size it generates a diabetes-shaped CSV (10 features + target, reference rows drawn
with replacement plus a little noise, written in chunks), uploads it to a landing container
of a real Azurite (persisted on disk, not in memory), and runs the ``retraining`` flow on it
under a temporary Prefect server: streaming download, chunked GX validation, merge into the
Parquet curated set, training as a subprocess job (``SubprocessCompute``), the gate and the
registration. It samples the resident memory of this process plus all its children (the
training job) every 50 ms (Azurite and the Prefect server excluded: they stand in for Azure
services) and prints, per size, the time and that peak, then the ratios against the
targets of issue 11: peak <= 4 GB at 10M rows, and time linear in rows (10M within 20% of
10 x the 1M time). ``--burst N`` also times the validation of N small files in one process
(one GX context for all) against a fresh GX context per file (what each file paid before).

    .venv/bin/python bench/bench_retraining.py                    # 100k, 1M and 10M rows
    .venv/bin/python bench/bench_retraining.py --sizes 100k,1M --burst 21

Needs ~6 GB of free disk for 10M rows (CSV, its downloaded copy, the Parquet set, Azurite's
copies); everything is deleted at the end (``--keep`` keeps the work folder).
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import psutil

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

GB = 1024**3
TARGET_PEAK_GB = 4.0
LINEAR_TOLERANCE = 0.20
GENERATE_CHUNK = 500_000


@dataclass(frozen=True)
class Measured:
    rows: int
    file_mb: float
    seconds: float
    peak_gb: float  # worker + training job at the same moment
    worker_gb: float  # this process's own peak (download, validation, merge, holdout)
    job_gb: float  # the training job's peak
    peak_at: float  # seconds into the run when the summed peak was seen
    outcome: str


def parse_size(text: str) -> int:
    """``100k`` -> 100000, ``1M`` -> 1000000, ``2500`` -> 2500."""
    text = text.strip()
    scale = {"k": 1_000, "m": 1_000_000}.get(text[-1:].lower(), 1)
    return int(float(text[:-1] if scale > 1 else text) * scale)


def label(rows: int) -> str:
    if rows % 1_000_000 == 0:
        return f"{rows // 1_000_000}M"
    return f"{rows // 1_000}k" if rows % 1_000 == 0 else str(rows)


def generate(path: Path, rows: int, seed: int) -> None:
    """Write ``rows`` diabetes-shaped rows as CSV, a chunk at a time."""
    from training.data import reference_dataset
    from training.schema import TARGET

    reference = reference_dataset()
    noise = reference.std().to_numpy() * 0.05
    rng = np.random.default_rng(seed)
    written = 0
    with path.open("w") as file:
        while written < rows:
            n = min(GENERATE_CHUNK, rows - written)
            picked = reference.to_numpy()[rng.integers(0, len(reference), n)]
            values = picked + rng.normal(0.0, 1.0, picked.shape) * noise
            frame = pd.DataFrame(values, columns=reference.columns)
            frame[TARGET] = frame[TARGET].round()
            frame.to_csv(file, index=False, header=written == 0, float_format="%.6f")
            written += n


class PeakMemory:
    """Peak of the summed RSS of this process, its descendants and the detached training
    jobs (their command line names ``marker``, the bench's folder), sampled in a thread."""

    def __init__(self, exclude: set[int], marker: str, interval: float = 0.1) -> None:
        self.exclude = exclude
        self.marker = marker
        self.interval = interval
        self.peak = self.worker_peak = self.job_peak = 0
        self.at = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> PeakMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def _processes(self) -> tuple[list[psutil.Process], list[psutil.Process]]:
        """(this process and its descendants, the training jobs), services left out."""
        me = psutil.Process()
        worker = {p.pid: p for p in [me, *me.children(recursive=True)]}
        jobs = {}
        for proc in psutil.process_iter(["cmdline"]):
            if any(self.marker in part for part in proc.info["cmdline"] or ()):
                jobs[proc.pid] = proc
                worker.pop(proc.pid, None)
        return (
            [p for pid, p in worker.items() if pid not in self.exclude],
            [p for pid, p in jobs.items() if pid not in self.exclude],
        )

    def _run(self) -> None:
        started = time.perf_counter()
        while not self._stop.is_set():
            worker, jobs = (sum(_rss(p) for p in group) for group in self._processes())
            if worker + jobs > self.peak:
                self.peak, self.at = worker + jobs, time.perf_counter() - started
            self.worker_peak = max(self.worker_peak, worker)
            self.job_peak = max(self.job_peak, jobs)
            self._stop.wait(self.interval)


def _rss(proc: psutil.Process) -> int:
    try:
        return int(proc.memory_info().rss)
    except psutil.Error:
        return 0


def excluded_services() -> set[int]:
    """Processes that stand in for Azure services (Azurite, the Prefect server): running
    before the first run, they are left out of the peak."""
    me = psutil.Process()
    return {p.pid for p in me.children(recursive=True)}


@contextlib.contextmanager
def project_env(workdir: Path, port: int, tag: str) -> Iterator[None]:
    """Settings of an isolated project for one size: own state, containers and model name."""
    from core.settings import get_settings

    env = {
        "MLOPS_STATE_DIR": str(workdir / f"state-{tag}"),
        "MLOPS_AZURITE_PORT": str(port),
        "MLOPS_MODEL_NAME": f"bench-{tag}",
        "MLOPS_MAX_FILE_BYTES": str(64 * GB),
        **{f"MLOPS_{k.upper()}_CONTAINER": f"b{tag}-{k}" for k in ("landing", "curated")},
        "MLOPS_QUARANTINE_CONTAINER": f"b{tag}-quarantine",
        "MLOPS_DEAD_LETTER_CONTAINER": f"b{tag}-dead-letter",
    }
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    get_settings.cache_clear()
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        get_settings.cache_clear()


def run_size(rows: int, workdir: Path, port: int, exclude: set[int]) -> Measured:
    """Generate, upload and retrain on one file of ``rows`` rows; time and peak memory."""
    from backends.blob_datalake import BlobDataLake
    from core.settings import get_settings
    from flows.retraining import retraining

    tag = label(rows).lower()
    with project_env(workdir, port, tag):
        settings = get_settings()
        lake = BlobDataLake(settings.blob_connection)
        containers = [
            settings.landing_container,
            settings.curated_container,
            settings.quarantine_container,
            settings.dead_letter_container,
        ]
        lake.ensure_containers(*containers)
        source = workdir / f"diabetes-{tag}.csv"
        generate(source, rows, seed=rows)
        size_mb = source.stat().st_size / 1e6
        lake.upload(settings.landing_container, source.name, source)
        source.unlink()  # only Azurite's copy stays: the run streams it down itself
        with PeakMemory(exclude, str(workdir / f"state-{tag}")) as peak:
            started = time.perf_counter()
            state = retraining(
                data_uri=f"{settings.landing_container}/{source.name}", return_state=True
            )
            seconds = time.perf_counter() - started
        summary: Any = state.result(raise_on_failure=False)
        outcome = str(getattr(summary, "outcome", summary))[:120]
        _drop_containers(settings.blob_connection, containers)
        shutil.rmtree(workdir / f"state-{tag}", ignore_errors=True)
    return Measured(
        rows,
        size_mb,
        seconds,
        peak.peak / GB,
        peak.worker_peak / GB,
        peak.job_peak / GB,
        peak.at,
        outcome,
    )


def _drop_containers(connection: str, names: list[str]) -> None:
    from azure.storage.blob import BlobServiceClient

    client = BlobServiceClient.from_connection_string(connection)
    for name in names:
        with contextlib.suppress(Exception):
            client.delete_container(name)


def burst(files: int, workdir: Path) -> tuple[float, float]:
    """Seconds per file validating a burst of ``files`` small files into a Data Docs site
    that already holds ``KEEP_RUNS`` runs: before, a GX context and an index rebuild per
    file; now, one context and one index rebuild for the burst (as the retraining run)."""
    from expectations import gx_runner
    from expectations.validate import validate_file

    corpus = sorted((REPO / "tests" / "data" / "good").glob("*.csv"))
    docs = workdir / "burst-docs"
    for i in range(gx_runner.KEEP_RUNS):  # a site in use: the index lists KEEP_RUNS runs
        validate_file(corpus[i % len(corpus)], file=f"old-{i}.csv", docs_dir=docs)
    started = time.perf_counter()
    for i in range(files):  # what every file paid before: a context of its own (no session)
        validate_file(corpus[i % len(corpus)], file=f"before-{i}.csv", docs_dir=docs)
    before = (time.perf_counter() - started) / files
    started = time.perf_counter()
    session = gx_runner.ValidationSession()  # as the retraining run: one for the burst
    for i in range(files):
        path = corpus[i % len(corpus)]
        validate_file(path, file=f"now-{i}.csv", docs_dir=docs, build_index=False, session=session)
    session.build_stale_indexes(docs)
    return before, (time.perf_counter() - started) / files


def report(results: list[Measured]) -> list[str]:
    lines = [
        f"{'rows':>6} {'CSV MB':>8} {'time s':>8} {'s/M rows':>9} {'peak GB':>8} "
        f"{'(at s)':>7} {'worker':>7} {'job':>6}  outcome",
    ]
    for m in results:
        per_m = m.seconds / (m.rows / 1e6)
        lines.append(
            f"{label(m.rows):>6} {m.file_mb:8.0f} {m.seconds:8.1f} {per_m:9.1f} "
            f"{m.peak_gb:8.2f} {m.peak_at:7.0f} {m.worker_gb:7.2f} {m.job_gb:6.2f}  {m.outcome}"
        )
    by_rows = {m.rows: m for m in results}
    if 1_000_000 in by_rows and 10_000_000 in by_rows:
        ratio = by_rows[10_000_000].seconds / (10 * by_rows[1_000_000].seconds)
        verdict = "met" if ratio <= 1 + LINEAR_TOLERANCE else "NOT met"
        lines.append(
            f"time 10M / (10 x 1M): {ratio:.2f} (target <= {1 + LINEAR_TOLERANCE:.2f}: {verdict})"
        )
    if 10_000_000 in by_rows:
        peak = by_rows[10_000_000].peak_gb
        verdict = "met" if peak <= TARGET_PEAK_GB else "NOT met"
        lines.append(
            f"peak 10M: {peak:.2f} GB = {peak / TARGET_PEAK_GB:.2f} x the 4 GB target ({verdict})"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="100k,1M,10M", help="comma-separated row counts")
    parser.add_argument("--burst", type=int, default=0, help="also time N small validations")
    parser.add_argument("--workdir", type=Path, default=None, help="where files go (disk)")
    parser.add_argument("--keep", action="store_true", help="keep the work folder")
    args = parser.parse_args(argv)
    sizes = [parse_size(s) for s in args.sizes.split(",") if s.strip()]

    from backends.local.azurite import AzuriteService, find_azurite_binary
    from backends.local.envstate import free_port

    if find_azurite_binary() is None:
        print("Azurite is not installed: run `make setup`", file=sys.stderr)
        return 2
    workdir = args.workdir or Path(tempfile.mkdtemp(prefix="bench-retraining-"))
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("PREFECT_HOME", str(workdir / "prefect"))
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")
    free = shutil.disk_usage(workdir).free / GB
    print(f"load average {os.getloadavg()}; disk free {free:.0f} GB", flush=True)
    port = free_port()
    azurite = AzuriteService(port, workdir / "azurite", workdir / "azurite.log")
    azurite.start(timeout=60)
    try:
        import great_expectations  # noqa: F401  (imported once per worker process anyway)
        from prefect.testing.utilities import prefect_test_harness

        with prefect_test_harness(server_startup_timeout=180):
            exclude = excluded_services()
            results = []
            for rows in sizes:
                results.append(run_size(rows, workdir, port, exclude))
                print(report(results)[-1], flush=True)
            print("\nretraining, one file per size (time: the whole flow run)")
            print("\n".join(report(results)))
            if args.burst:
                before, now = burst(args.burst, workdir)
                print(
                    f"\nvalidation of a burst of {args.burst} small files: {before:.2f} s/file "
                    f"with a GX context and index per file (before), {now:.2f} s/file with one "
                    f"of each per burst (now): {before / now:.1f}x"
                )
        print(f"load average {os.getloadavg()}")
    finally:
        azurite.stop()
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
