"""The decision record: built by the job, judged by the worker from JSON alone."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
from pydantic import ValidationError

from tests.utils.records import SHA, metrics
from tests.utils.records import decision_record as record
from training import model as model_io
from training.artifacts import DECISION_FILE, MODEL_FILE, sha256_file
from training.data import fingerprint, split
from training.decision import (
    ChampionError,
    ChampionScore,
    RecordMismatch,
    build_record,
    read_record,
    score_champion,
    write_record,
)
from training.evaluate import decide, score
from training.params import GateConfig, TrainingParams
from training.train import train

FrameFactory = Callable[..., pd.DataFrame]  # the make_frame fixture (conftest.py)


def champion(rmse: float, version: str = "4") -> ChampionScore:
    return ChampionScore(version=version, sha256="1" * 64, metrics=metrics(rmse))


@pytest.mark.parametrize(
    ("champion_rmse", "gate", "verdict"),
    [
        (None, GateConfig(), "register"),  # first model
        (55.0, GateConfig(), "register"),  # better
        (45.0, GateConfig(), "reject"),  # worse
        (50.5, GateConfig(min_improvement=0.05), "reject"),  # better, not by 5 %
    ],
)
def test_decide_applies_the_gate_to_the_recorded_metrics(
    champion_rmse: float | None, gate: GateConfig, verdict: str
) -> None:
    held = None if champion_rmse is None else champion(champion_rmse)
    decision = record(held).decide(gate)

    assert decision.verdict == verdict
    # The very rule of training.evaluate, on the metrics the job measured.
    version = held.version if held else None
    expected = decide(metrics(50.0), held.metrics if held else None, gate, version)
    assert decision == expected
    assert decision.champion_version == version


def test_the_record_round_trips_through_json(tmp_path: Path) -> None:
    written = record(champion(55.0))
    path = write_record(written, tmp_path / "decision")

    assert path == tmp_path / "decision" / DECISION_FILE
    assert read_record(path) == written
    content = json.loads(path.read_text())
    assert content["champion"]["metrics"]["rmse"] == 55.0 and content["record_version"] == 1


def test_a_malformed_or_foreign_record_is_refused(tmp_path: Path) -> None:
    content = record(None).model_dump(mode="json")
    for broken in (
        {**content, "challenger_sha256": "not-hex"},
        {**content, "unexpected": 1},
        {**content, "record_version": 2},
        {key: value for key, value in content.items() if key != "holdout_fingerprint"},
    ):
        (tmp_path / DECISION_FILE).write_text(json.dumps(broken))
        with pytest.raises(ValidationError):
            read_record(tmp_path / DECISION_FILE)


def test_check_refuses_a_record_of_another_question() -> None:
    held = record(champion(55.0, version="4"))
    asked = {"data_fingerprint": "d" * 64, "params_digest": TrainingParams().digest()}
    held.check(**asked, champion="4")  # the question it answers

    with pytest.raises(RecordMismatch, match="data_fingerprint"):
        held.check(**{**asked, "data_fingerprint": "e" * 64}, champion="4")
    with pytest.raises(RecordMismatch, match="params_digest"):
        held.check(**{**asked, "params_digest": "x"}, champion="4")
    with pytest.raises(RecordMismatch, match="champion version '4', not '5'"):
        held.check(**asked, champion="5")
    with pytest.raises(RecordMismatch, match="champion version None, not '4'"):
        record(None).check(**asked, champion="4")


@pytest.fixture
def trained(make_frame: FrameFactory, tmp_path: Path) -> tuple[pd.DataFrame, Path]:
    """A champion folder (model.joblib) and the frame it was trained on."""
    frame = make_frame(n=120, seed=1)
    result = train(frame, TrainingParams(seed=3))
    folder = tmp_path / "champion" / "model-folder"
    folder.mkdir(parents=True)
    model_io.save(result.model, folder)
    return frame, folder


def test_score_champion_scores_it_on_the_given_holdout(
    trained: tuple[pd.DataFrame, Path], make_frame: FrameFactory
) -> None:
    _, folder = trained
    holdout = make_frame(n=30, seed=9)
    digest = sha256_file(folder / MODEL_FILE)

    # The parent folder: a mounted model input keeps the folder it was registered from.
    scored = score_champion(folder.parent, holdout, "4", digest)

    assert scored.metrics == score(model_io.load(folder), holdout)
    assert (scored.version, scored.sha256) == ("4", digest)


def test_score_champion_refuses_a_file_that_is_not_the_registered_one(
    trained: tuple[pd.DataFrame, Path], make_frame: FrameFactory, tmp_path: Path
) -> None:
    _, folder = trained
    holdout = make_frame(n=30, seed=9)
    with pytest.raises(ChampionError, match="the registry " + "f" * 64):
        score_champion(folder, holdout, "4", "f" * 64)
    (folder / MODEL_FILE).write_bytes(b"not a pickle")
    with pytest.raises(ChampionError, match="champion 4 cannot be scored here"):
        score_champion(folder, holdout, "4", None)
    with pytest.raises(ChampionError, match="no model.joblib"):
        score_champion(tmp_path / "empty", holdout, "4", None)


def test_build_record_names_the_holdout_both_were_scored_on(
    trained: tuple[pd.DataFrame, Path],
) -> None:
    frame, folder = trained
    params = TrainingParams(seed=3)
    result = train(frame, params)
    held = score_champion(folder, result.holdout, "4", None)

    built = build_record(
        challenger=result.metrics,
        challenger_sha256=SHA,
        champion=held,
        holdout=result.holdout,
        n_train=result.n_train,
        run=result.run,
    )

    _, holdout = split(frame, params.holdout_fraction, params.seed)
    assert built.holdout_fingerprint == fingerprint(holdout)
    assert built.holdout_rows == len(holdout) == result.n_holdout
    assert built.champion is not None and built.champion.metrics.n == len(holdout)
    assert built.data_fingerprint == fingerprint(frame) and built.n_rows == len(frame)
    assert built.params_digest == params.digest()
    assert built.versions == result.run["versions"]
