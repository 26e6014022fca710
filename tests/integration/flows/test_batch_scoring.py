"""The batch-scoring flow on a real Prefect server, Azurite, the subprocess batch backend and
the local registry: a lake file scored by the production model, predictions and lineage beside
it, the very numbers the online service answers (``==``); a bad file fails cleanly and leaves
nothing."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from prefect.client.orchestration import get_client

from backends import get_backends
from core.results import BatchScoringReport
from core.settings import Settings, get_settings
from flows.batch_scoring import batch_scoring
from flows.outcome import result_of
from tests.utils.batch import feature_frame, online_predictions
from tests.utils.scoring import write_model_folder
from training.artifacts import MODEL_FILE, sha256_file
from training.schema import FEATURES

ROWS, CHUNK = 5_000, 700


@pytest.fixture
def batch_settings(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> Settings:
    monkeypatch.setenv("MLOPS_BATCH_CONTAINER", settings.landing_container + "-batch")
    monkeypatch.setenv("MLOPS_BATCH_CHUNK_ROWS", str(CHUNK))
    get_settings.cache_clear()
    return get_settings()


@pytest.fixture
def released(batch_settings: Settings, tmp_path: Path) -> tuple[str, Path]:
    """Two registered versions, v2 in production; returns v2's version and model folder."""
    registry = get_backends(batch_settings).registry
    name = batch_settings.model_name
    registry.register(name, write_model_folder(tmp_path / "v1"), MODEL_FILE, {})
    from sklearn.linear_model import Ridge

    folder = write_model_folder(tmp_path / "v2", Ridge(alpha=0.05))
    version = registry.register(name, folder, MODEL_FILE, {}).version
    registry.set_alias(name, "production", version)
    return version, folder


def put(settings: Settings, name: str, frame: pd.DataFrame) -> str:
    lake = get_backends(settings).datalake
    lake.ensure_containers(settings.batch_container)
    return lake.put(settings.batch_container, name, frame.to_csv(index=False).encode()).uri


def run(**kwargs: Any) -> tuple[Any, BatchScoringReport]:
    state = batch_scoring(**kwargs, return_state=True)
    report = result_of(state, BatchScoringReport)
    assert report is not None, state
    return state, report


def test_a_lake_file_is_scored_by_production_beside_itself_as_online(
    batch_settings: Settings, released: tuple[str, Path]
) -> None:
    version, folder = released
    frame = feature_frame(ROWS, seed=3)
    uri = put(batch_settings, "incoming/2026-12/visits.csv", frame)
    lake = get_backends(batch_settings).datalake

    state, report = run(input_uri=uri)

    assert state.is_completed(), state.message
    assert (report.outcome, report.version, report.rows) == ("scored", version, ROWS)
    container = batch_settings.batch_container
    names = sorted(r.name for r in lake.list(container))
    assert names == [
        "incoming/2026-12/visits.csv",
        "incoming/2026-12/visits.predictions/lineage.json",
        "incoming/2026-12/visits.predictions/predictions.parquet",
    ]
    data, blob = lake.get(container, "incoming/2026-12/visits.csv")
    lineage = json.loads(lake.get(container, names[1])[0])
    assert lineage == report.lineage
    assert lineage["model"]["version"] == version
    assert lineage["model"]["sha256"] == sha256_file(folder / MODEL_FILE)
    assert lineage["model"]["data_fingerprint"] == "0" * 64
    assert lineage["input"]["etag"] == blob.etag
    assert lineage["input"]["sha256"] == sha256_file_bytes(data)
    assert lineage["chunks"] == -(-ROWS // CHUNK)

    out = pd.read_parquet(io.BytesIO(lake.get(container, names[2])[0]))
    assert out["row"].tolist() == list(range(ROWS))
    assert lineage["output"]["sha256"] == sha256_file_bytes(lake.get(container, names[2])[0])
    online = online_predictions(
        folder, sha256_file(folder / MODEL_FILE), frame[list(FEATURES)].to_numpy(), version
    )
    assert out["prediction"].tolist() == online.tolist()
    assert_artifacts(state)


def sha256_file_bytes(data: bytes) -> str:
    import hashlib

    return hashlib.sha256(data).hexdigest()


def assert_artifacts(state: Any) -> None:
    async def keys() -> set[str]:
        from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

        async with get_client() as client:
            found = await client.read_artifacts(
                artifact_filter=ArtifactFilter(
                    flow_run_id=ArtifactFilterFlowRunId(any_=[state.state_details.flow_run_id])
                )
            )
        return {a.key for a in found if a.key}

    import asyncio

    assert {"batch-scoring", "batch-lineage"} <= asyncio.run(keys())


def test_a_named_version_and_a_csv_output_folder(
    batch_settings: Settings, released: tuple[str, Path], tmp_path: Path
) -> None:
    frame = feature_frame(50)
    uri = put(batch_settings, "x.csv", frame)
    lake = get_backends(batch_settings).datalake
    target = lake.uri(batch_settings.batch_container, "scored/by-v1/")
    state, report = run(input_uri=uri, model_version="1", output_uri=target, output_format="csv")
    assert state.is_completed(), state.message
    assert report.version == "1"
    csv = lake.get(batch_settings.batch_container, "scored/by-v1/predictions.csv")[0]
    out = pd.read_csv(io.BytesIO(csv))
    assert out["row"].tolist() == list(range(50))
    v1 = tmp_path / "v1"  # the CSV's text reads back as the very doubles v1's service answers
    online = online_predictions(v1, sha256_file(v1 / MODEL_FILE), frame[list(FEATURES)].to_numpy())
    assert out["prediction"].tolist() == online.tolist()


def test_a_bad_file_fails_the_run_and_leaves_no_output(
    batch_settings: Settings, released: tuple[str, Path]
) -> None:
    frame = feature_frame(2_000).astype({"bmi": object})
    frame.loc[1_500, "bmi"] = "high"  # in the third chunk: two were already written
    uri = put(batch_settings, "bad.csv", frame)
    lake = get_backends(batch_settings).datalake

    state, report = run(input_uri=uri)

    assert state.is_failed()
    assert report.outcome == "failed" and report.rows is None
    assert "column 'bmi', row 1500: 'high' is not a number" in report.message
    assert [r.name for r in lake.list(batch_settings.batch_container)] == ["bad.csv"]
