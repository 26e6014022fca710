"""Fixtures for the backend unit tests: a small diabetes CSV, an in-memory data lake
holding it, and a stub trainer that stands in for ``training.train``."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from sklearn.datasets import load_diabetes

from backends.local.memory import InMemoryDataLake
from core.interfaces import BlobRef

COLUMNS = ["age", "sex", "bmi", "bp", "s1", "s2", "s3", "s4", "s5", "s6", "target"]

# Behaves like `python -m training.train` as far as the compute backend can tell:
# {"mode": "ok"} writes outputs (and, with --decision, a decision.json naming the champion
# it was given) after {"seconds": N}; "fail" exits 2 with a message;
# {"ignore_sigterm": true} makes it survive SIGTERM.
STUB = textwrap.dedent(
    """
    import argparse, json, pathlib, signal, sys, time
    parser = argparse.ArgumentParser()
    parser.add_argument("--data"); parser.add_argument("--output"); parser.add_argument("--params")
    parser.add_argument("--decision"); parser.add_argument("--champion")
    parser.add_argument("--champion-version"); parser.add_argument("--champion-sha256")
    args = parser.parse_args()
    params = json.loads(args.params)
    print("stub training on", pathlib.Path(args.data).name, flush=True)
    mode = params.get("mode", "ok")
    if mode == "fail":
        print("line before the error", flush=True)
        print("boom: bad input", file=sys.stderr, flush=True)
        sys.exit(2)
    if params.get("ignore_sigterm"):
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    time.sleep(params.get("seconds", 0))
    out = pathlib.Path(args.output)
    out.mkdir(parents=True)
    (out / "model.joblib").write_bytes(pathlib.Path(args.data).read_bytes()[:64])
    (out / "metrics.json").write_text(json.dumps({"params": params}))
    if args.decision:
        record = pathlib.Path(args.decision)
        record.mkdir(parents=True)
        record_of = {"champion": args.champion, "champion_version": args.champion_version}
        (record / "decision.json").write_text(json.dumps(record_of))
    print("stub done", flush=True)
    """
)


@pytest.fixture(scope="session")
def diabetes_csv() -> bytes:
    """The first 150 rows of scikit-learn's diabetes data as CSV (the project's schema)."""
    frame = load_diabetes(as_frame=True).frame[COLUMNS].head(150)
    return frame.to_csv(index=False).encode()


@pytest.fixture
def memory_lake(diabetes_csv: bytes) -> InMemoryDataLake:
    """An in-memory data lake with ``curated/sets/diabetes.csv``."""
    lake = InMemoryDataLake()
    lake.ensure_containers("curated")
    lake.put("curated", "sets/diabetes.csv", diabetes_csv)
    return lake


@pytest.fixture
def data_ref(memory_lake: InMemoryDataLake) -> BlobRef:
    """The reference of the diabetes CSV in ``memory_lake``."""
    return memory_lake.ref(memory_lake.uri("curated", "sets/diabetes.csv"))


@pytest.fixture(scope="session")
def stub_trainer(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A script with ``training.train``'s command line (see ``STUB``)."""
    path = tmp_path_factory.mktemp("stub") / "stub_train.py"
    path.write_text(STUB)
    return path
