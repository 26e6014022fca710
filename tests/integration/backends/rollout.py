"""Helpers for release tests (process and Docker targets): a saturating load generator, model
folders the real scoring service accepts, and a look for leftover processes.

Tests are not a package (``--import-mode=importlib``), so test files load this one by path.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

SATURATE = Path(__file__).with_name("saturate.py")
ROW = [0.04, 0.05, 0.06, 0.02, -0.04, -0.03, -0.04, -0.0, 0.02, -0.02]


@dataclass
class LoadReport:
    """What every worker saw, in order: a model version, or ``ERR:...`` for a failure."""

    sequences: list[list[str]] = field(default_factory=list)
    seconds: float = 0.0  # how long the load ran

    @property
    def rate(self) -> float:
        """Answers per second while the load ran."""
        return self.total / self.seconds if self.seconds else 0.0

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
    """``saturate.py`` in a process of its own, driving ``url`` as hard as it can.

    ``with LoadGenerator(url, key) as report:`` returns once every connection has answers
    (the action under test must happen while traffic flows on all of them); on exit the
    load stays on a little longer, then stops, and ``report`` holds what each connection saw
    (filled in only then).
    """

    def __init__(self, url: str, key: str, *, connections: int = 16) -> None:
        self.url, self.key, self.connections = url, key, connections
        self.report = LoadReport()
        self._dir = tempfile.TemporaryDirectory(prefix="saturate-")
        self._proc: subprocess.Popen[str] | None = None

    def __enter__(self) -> LoadReport:
        key_file = Path(self._dir.name) / "key"
        key_file.touch(mode=0o600)
        key_file.write_text(self.key)
        argv = [sys.executable, str(SATURATE), self.url, str(key_file), str(self.connections)]
        self._proc = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True)
        assert self._proc.stdout is not None
        line = self._proc.stdout.readline()  # blocks until every connection has answers
        if line.strip() != "ready":
            self._proc.kill()
            raise RuntimeError(f"the load generator did not start: {line!r}")
        self._started = time.monotonic()
        return self.report

    def __exit__(self, *exc: object) -> None:
        time.sleep(0.5)  # keep the load on a little after the action returned
        assert self._proc is not None and self._proc.stdout is not None
        self.report.seconds = time.monotonic() - self._started
        self._proc.send_signal(signal.SIGTERM)
        out, _ = self._proc.communicate(timeout=30)
        self._dir.cleanup()
        self.report.sequences = json.loads(out.strip().splitlines()[-1])


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
