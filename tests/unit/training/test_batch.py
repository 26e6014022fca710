"""Chunked batch scoring: chunk boundaries, row order, bad input, and the job's lineage."""

from __future__ import annotations

import json
from pathlib import Path

import joblib
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import Ridge

from tests.unit.training.conftest import FrameFactory
from training import batch_score
from training.artifacts import MODEL_FILE, RUN_FILE, sha256_file
from training.batch import (
    LINEAGE_FILE,
    ModelFileError,
    feature_rows,
    load_batch_model,
    read_predictions,
    score_file,
)
from training.chunks import iter_dataset
from training.data import DataFormatError
from training.predict import make_predictor
from training.schema import FEATURES, TARGET


@pytest.fixture
def model_dir(tmp_path: Path, make_frame: FrameFactory) -> Path:
    frame = make_frame(200, seed=1)
    folder = tmp_path / "model"
    folder.mkdir()
    joblib.dump(Ridge(alpha=0.3).fit(frame[list(FEATURES)], frame[TARGET]), folder / MODEL_FILE)
    run = {"estimator": "ridge", "data_fingerprint": "fp-123"}
    (folder / RUN_FILE).write_text(json.dumps(run), encoding="utf-8")
    return folder


@pytest.fixture
def features(make_frame: FrameFactory) -> pd.DataFrame:
    # Columns shuffled and an extra id column: only the feature names matter.
    frame = make_frame(23, seed=2)
    frame["id"] = np.arange(100, 123)
    return frame[["id", TARGET, *reversed(FEATURES)]]


def expected(model_dir: Path, frame: pd.DataFrame) -> np.ndarray:
    """What the online service answers for these rows (the same predict function)."""
    predict, _ = make_predictor(joblib.load(model_dir / MODEL_FILE))
    return predict(frame[list(FEATURES)].to_numpy(dtype=np.float64))


@pytest.mark.parametrize("chunk_rows", [1, 5, 22, 23, 24, 1000])
@pytest.mark.parametrize(("source", "out"), [("in.csv", "p.parquet"), ("in.parquet", "p.csv")])
def test_every_chunking_gives_the_whole_file_in_input_order(
    tmp_path: Path,
    model_dir: Path,
    features: pd.DataFrame,
    chunk_rows: int,
    source: str,
    out: str,
) -> None:
    path = tmp_path / source
    if source.endswith(".csv"):
        features.to_csv(path, index=False)
    else:
        features.to_parquet(path, index=False)
    model = load_batch_model(model_dir, sha256_file(model_dir / MODEL_FILE))

    scored = score_file(path, source, model.estimator, tmp_path / out, chunk_rows)

    result = read_predictions(tmp_path / out)
    assert scored.rows == 23 and scored.chunks == -(-23 // chunk_rows)
    assert result["row"].tolist() == list(range(23))
    # The same bits however the file was cut, and in either output format.
    assert result["prediction"].tolist() == expected(model_dir, features).tolist()
    assert scored.sha256 == sha256_file(tmp_path / out)
    assert [p.name for p in tmp_path.iterdir() if ".partial" in p.name] == []


# Numbers as people write them: short, longer than a double holds, halfway between two
# doubles (ties to even), just past halfway, subnormal.
NUMBER_TEXTS = (
    "0.1", "-0.30000000000000004", "0.12345678901234567890123456789", "1e-320", "-4.9e-324",
    "536870912.000000059604644775390625", "1.00000000000000011102230246251565404236316680908203125",
    "1.00000000000000011102230246251565404236316680908203126", "123456789.123456789123",
    "-0.049999999999999996",
)  # fmt: skip


def test_a_csv_number_reads_as_the_double_the_same_text_in_a_score_request_does(
    tmp_path: Path,
) -> None:
    """Batch reads CSV with pandas, the service reads JSON with orjson: the same text must
    become the same double, or identical predictions are out of reach before predicting."""
    from scoring.schemas import parse_rows

    texts = [NUMBER_TEXTS[i:] + NUMBER_TEXTS[:i] for i in range(len(NUMBER_TEXTS))]
    path = tmp_path / "numbers.csv"
    path.write_text("\n".join([",".join(FEATURES), *(",".join(row) for row in texts)]) + "\n")
    body = ('{"data": [' + ",".join(f"[{','.join(row)}]" for row in texts) + "]}").encode()

    (chunk,) = iter_dataset(path, path.name)
    from_csv = feature_rows(chunk, path.name, 0)
    from_json = parse_rows(body, max_rows=100)

    assert from_csv.tobytes() == from_json.tobytes()
    assert from_csv[0].tolist() == [float(text) for text in NUMBER_TEXTS]


def bad_files(tmp_path: Path, features: pd.DataFrame) -> dict[str, Path]:
    late_text = features.astype({"bmi": object})
    late_text.loc[21, "bmi"] = "oops"  # in the last chunk of 5: after 4 chunks were written
    files = {
        "missing column": features.drop(columns=["s3"]),
        "text in a late row": late_text,
        "missing value": features.assign(age=[*[0.1] * 22, np.nan]),
    }
    paths = {}
    for problem, frame in files.items():
        paths[problem] = tmp_path / f"{problem.replace(' ', '_')}.csv"
        frame.to_csv(paths[problem], index=False)
    paths["empty"] = tmp_path / "empty.csv"
    paths["empty"].write_text("")
    paths["header only"] = tmp_path / "header.csv"
    paths["header only"].write_text(",".join(FEATURES) + "\n")
    return paths


@pytest.mark.parametrize(
    ("problem", "message"),
    [
        ("missing column", "missing feature columns: s3"),
        ("text in a late row", "column 'bmi', row 21: 'oops' is not a number"),
        ("missing value", "column 'age', row 22: a missing value"),
        ("empty", "file is empty"),
        ("header only", "no data rows"),
    ],
)
def test_bad_input_fails_clearly_and_leaves_no_output(
    tmp_path: Path, model_dir: Path, features: pd.DataFrame, problem: str, message: str
) -> None:
    source = bad_files(tmp_path, features)[problem]
    before = source.read_bytes()
    dest = tmp_path / "out" / "predictions.parquet"
    estimator = joblib.load(model_dir / MODEL_FILE)

    with pytest.raises(DataFormatError, match=message):
        score_file(source, source.name, estimator, dest, chunk_rows=5)

    assert source.read_bytes() == before
    assert list(dest.parent.iterdir()) == []  # neither the file nor a partial one


def test_a_failed_run_keeps_the_previous_complete_output(
    tmp_path: Path, model_dir: Path, features: pd.DataFrame
) -> None:
    dest = tmp_path / "predictions.csv"
    dest.write_text("row,prediction\n0,1.0\n")
    source = bad_files(tmp_path, features)["text in a late row"]
    with pytest.raises(DataFormatError):
        score_file(source, source.name, joblib.load(model_dir / MODEL_FILE), dest, 5)
    assert dest.read_text() == "row,prediction\n0,1.0\n"


def test_a_model_file_that_is_not_the_registered_one_is_refused(model_dir: Path) -> None:
    with pytest.raises(ModelFileError, match="is not the registered"):
        load_batch_model(model_dir, "0" * 64)


def test_the_job_writes_predictions_then_lineage(
    tmp_path: Path, model_dir: Path, features: pd.DataFrame
) -> None:
    data = tmp_path / "features.csv"
    features.to_csv(data, index=False)
    out = tmp_path / "out"
    sha = sha256_file(model_dir / MODEL_FILE)
    argv = ["--data", str(data), "--model", str(model_dir), "--output", str(out)]
    argv += ["--model-name", "diabetes", "--model-version", "7", "--model-sha256", sha]
    argv += ["--chunk-rows", "4", "--input-uri", "http://lake/batch/features.csv"]

    assert batch_score.main([*argv, "--input-etag", '"0x1"']) == 0

    lineage = json.loads((out / LINEAGE_FILE).read_text())
    assert lineage["model"] == {
        "name": "diabetes",
        "version": "7",
        "sha256": sha,
        "data_fingerprint": "fp-123",
        "estimator": "ridge",
    }
    assert lineage["input"] == {
        "uri": "http://lake/batch/features.csv",
        "etag": '"0x1"',
        "sha256": sha256_file(data),
        "rows": 23,
    }
    assert lineage["output"]["sha256"] == sha256_file(out / "predictions.parquet")
    assert lineage["chunks"] == 6 and lineage["peak_rss_bytes"] > 0
    assert lineage["started_at"] <= lineage["finished_at"]


def test_the_job_exits_2_on_bad_data_without_output(
    tmp_path: Path, model_dir: Path, features: pd.DataFrame
) -> None:
    data = bad_files(tmp_path, features)["missing column"]
    out = tmp_path / "out"
    argv = ["--data", str(data), "--model", str(model_dir), "--output", str(out)]
    argv += ["--model-name", "m", "--model-version", "1"]
    argv += ["--model-sha256", sha256_file(model_dir / MODEL_FILE)]
    assert batch_score.main(argv) == 2
    assert not out.exists() or list(out.iterdir()) == []


def test_the_azure_ml_entry_script_scores_each_file_of_a_mini_batch(
    tmp_path: Path, model_dir: Path, features: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    from training import batch_parallel

    data = tmp_path / "in" / "features.csv"
    data.parent.mkdir()
    features.to_csv(data, index=False)
    out = tmp_path / "out"
    sha = sha256_file(model_dir / MODEL_FILE)
    argv = ["driver", "--model", str(model_dir), "--output", str(out), "--model-name", "m"]
    argv += ["--model-version", "3", "--model-sha256", sha, "--chunk-rows", "10"]
    # Azure ML appends arguments of its own: ignored.
    monkeypatch.setattr("sys.argv", [*argv, "--logging_level", "INFO"])

    batch_parallel.init()
    assert batch_parallel.run([str(data)]) == ["features.csv: 23 rows"]

    lineage = json.loads((out / LINEAGE_FILE).read_text())
    assert (lineage["model"]["version"], lineage["chunks"]) == ("3", 3)
    assert read_predictions(out / "predictions.parquet")["row"].tolist() == list(range(23))
