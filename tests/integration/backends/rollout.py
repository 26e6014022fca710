"""Helpers for release tests (process and Docker targets): a bounded load generator, model
folders the real scoring service accepts, and a look for leftover processes.

Tests are not a package (``--import-mode=importlib``), so test files load this one by path.
"""

from __future__ import annotations

import json
import os
import threading
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import httpx

ROW = [0.04, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, -0.0, 0.02, -0.02]


@dataclass
class LoadReport:
    """What every worker saw, in order: a model version, or ``ERR:...`` for a failure."""

    sequences: list[list[str]] = field(default_factory=list)

    @property
    def total(self) -> int:
        return sum(len(s) for s in self.sequences)

    @property
    def failures(self) -> list[str]:
        return [r for s in self.sequences for r in s if r.startswith("ERR:")]

    def versions(self) -> set[str]:
        return {r for s in self.sequences for r in s if not r.startswith("ERR:")}

    def switched_once(self, old: str, new: str) -> bool:
        """Each worker saw ``old`` then ``new`` and never ``old`` again after ``new``."""
        for seq in self.sequences:
            if not seq or seq[-1] != new or new not in seq:
                return False
            if old in seq[seq.index(new) :]:
                return False
        return old in self.versions()


class LoadGenerator:
    """Threads posting ``/score`` on keep-alive connections at a bounded rate.

    Bounded three ways: ``rate`` (requests/s for all workers), ``max_seconds`` and
    ``max_requests``; it stops on its own when either bound is reached.
    """

    def __init__(
        self,
        url: str,
        key: str,
        *,
        workers: int = 6,
        rate: float = 300.0,
        max_seconds: float = 90.0,
        max_requests: int = 30_000,
    ) -> None:
        self.url, self.key = url, key
        self.interval = workers / rate
        self.per_worker = max_requests // workers
        self.deadline = time.monotonic() + max_seconds
        self.report = LoadReport([[] for _ in range(workers)])
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._work, args=(seq,), daemon=True)
            for seq in self.report.sequences
        ]

    def _work(self, seq: list[str]) -> None:
        headers = {"Authorization": f"Bearer {self.key}"}
        with httpx.Client(base_url=self.url, headers=headers, timeout=10.0, trust_env=False) as c:
            next_at = time.monotonic()
            while not self._stop.is_set() and len(seq) < self.per_worker:
                if time.monotonic() > self.deadline:
                    break
                try:
                    response = c.post("/score", json={"data": [ROW]})
                    if response.status_code == 200:
                        seq.append(str(response.json()["model"]["version"]))
                    else:
                        seq.append(f"ERR:{response.status_code}:{response.text[:80]}")
                except (httpx.HTTPError, ValueError, KeyError) as exc:
                    seq.append(f"ERR:{exc!r}")
                next_at += self.interval
                time.sleep(max(0.0, next_at - time.monotonic()))

    def __enter__(self) -> LoadReport:
        for thread in self._threads:
            thread.start()
        # The action under test must happen while traffic flows on every connection.
        deadline = time.monotonic() + 10
        while min(len(s) for s in self.report.sequences) < 10 and time.monotonic() < deadline:
            time.sleep(0.02)
        return self.report

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.5)  # keep the load on a little after the action returned
        self._stop.set()
        for thread in self._threads:
            thread.join(timeout=15)


def write_model_folder(folder: Path) -> tuple[Path, str]:
    """A model folder like training writes (Ridge on diabetes); returns it and its sha256."""
    import joblib
    from sklearn.datasets import load_diabetes
    from sklearn.linear_model import Ridge

    from training.artifacts import GOLDEN_FILE, METRICS_FILE, MODEL_FILE, RUN_FILE, sha256_file
    from training.schema import FEATURES

    frame = load_diabetes(as_frame=True).frame
    features = frame[list(FEATURES)]
    model = Ridge(alpha=0.5).fit(features, frame["target"])
    folder.mkdir(parents=True, exist_ok=True)
    joblib.dump(model, folder / MODEL_FILE)
    libraries = ("scikit-learn", "numpy", "pandas", "joblib", "scipy")
    run: dict[str, Any] = {
        "params": {"estimator": "ridge", "hyperparameters": {"alpha": 0.5, "fit_intercept": True}},
        "data_fingerprint": "sha256:" + "0" * 64,
        "feature_names": list(FEATURES),
        "library_versions": {lib: metadata.version(lib) for lib in libraries},
    }
    (folder / RUN_FILE).write_text(json.dumps(run))
    (folder / METRICS_FILE).write_text(json.dumps({"rmse": 55.5, "r2": 0.42}))
    golden = features.iloc[:5]
    payload = {"data": golden.to_numpy().tolist(), "predictions": model.predict(golden).tolist()}
    (folder / GOLDEN_FILE).write_text(json.dumps(payload))
    return folder, sha256_file(folder / MODEL_FILE)


def pids_mentioning(needle: str) -> list[int]:
    """Live processes whose command line or environment contains ``needle`` (Linux)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            text = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if needle.encode() in text:
            found.append(int(entry.name))
    return found
