"""The decision record: challenger and champion scored by the training job on one holdout.

The job that trains the challenger also scores the champion (handed to it as a model
input) on the same holdout rows, in the same environment, and writes ``decision.json``.
The worker that judges the challenger reads only this JSON: it never unpickles a model a
job wrote, so a library mismatch between worker and job cannot break the judgement or
change the rows it is based on. The gate itself stays ``training.evaluate.decide``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from training.artifacts import DECISION_FILE, MODEL_FILE, RUN_FILE, sha256_file
from training.data import fingerprint
from training.evaluate import Decision, Metrics, decide, score
from training.params import GateConfig

_SHA256 = r"^[0-9a-f]{64}$"


class ChampionError(ValueError):
    """The champion handed to the job cannot be checked, loaded or scored; says why."""


class RecordMismatch(ValueError):
    """A decision record answers another question than the one the worker asked."""


class ChampionScore(BaseModel):
    """The champion as the job found and scored it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    version: str | None
    sha256: str = Field(pattern=_SHA256)
    metrics: Metrics
    # The library versions it was trained with (its run.json); {} if it recorded none.
    trained_with: dict[str, str] = Field(default_factory=dict)


class DecisionRecord(BaseModel):
    """What one training job measured: everything the gate needs, and what it was based on.

    Attributes:
        challenger: The new model's holdout metrics.
        challenger_sha256: Digest of the new model file (the registry records and checks it).
        champion: The champion's metrics on the same holdout; ``None`` without a champion.
        holdout_fingerprint: ``training.data.fingerprint`` of the holdout rows both were
            scored on; ``holdout_rows`` their number.
        data_fingerprint: Fingerprint of the whole training data set, ``n_rows`` its rows.
        params: The training parameters, ``params_digest`` their digest.
        python_version: The job's Python; ``versions`` its library versions.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    record_version: Literal[1] = 1
    challenger: Metrics
    challenger_sha256: str = Field(pattern=_SHA256)
    champion: ChampionScore | None
    holdout_fingerprint: str
    holdout_rows: int = Field(ge=2)
    n_train: int = Field(ge=1)
    data_fingerprint: str
    n_rows: int = Field(ge=1)
    params: dict[str, Any]
    params_digest: str
    python_version: str
    versions: dict[str, str]

    def decide(self, gate: GateConfig) -> Decision:
        """Apply the promotion gate to the recorded metrics (``training.evaluate.decide``)."""
        champion = self.champion
        return decide(
            self.challenger,
            champion.metrics if champion else None,
            gate,
            champion_version=champion.version if champion else None,
        )

    def check(self, *, data_fingerprint: str, params_digest: str, champion: str | None) -> None:
        """Refuse a record of another data set, other parameters or another champion.

        Args:
            data_fingerprint: The fingerprint of the data the job was asked to train on.
            params_digest: The digest of the parameters it was given.
            champion: The champion version it was handed (``None``: none).

        Raises:
            RecordMismatch: Names the first field that differs.
        """
        found = self.champion.version if self.champion else None
        for field, expected, actual in (
            ("data_fingerprint", data_fingerprint, self.data_fingerprint),
            ("params_digest", params_digest, self.params_digest),
            ("champion version", champion, found),
        ):
            if expected != actual:
                raise RecordMismatch(f"decision record has {field} {actual!r}, not {expected!r}")


def model_file_in(folder: Path) -> Path:
    """The ``model.joblib`` of a model folder, or of the one folder nested in it (a model
    input mounted by Azure ML keeps the folder the model was registered from).

    Raises:
        ChampionError: There is none.
    """
    found = sorted(Path(folder).rglob(MODEL_FILE), key=lambda p: len(p.parts))
    if not found:
        raise ChampionError(f"no {MODEL_FILE} in the champion folder {folder}")
    return found[0]


def score_champion(
    folder: Path, holdout: pd.DataFrame, version: str | None, sha256: str | None
) -> ChampionScore:
    """Check, load and score the champion on the challenger's holdout.

    Args:
        folder: The champion's model folder.
        holdout: The challenger's holdout rows.
        version: The champion's registry version (recorded).
        sha256: The digest the registry recorded; the file must match it (``None``: unchecked).

    Raises:
        ChampionError: Missing file, digest mismatch, or a model this environment cannot load
            or score; the message names the version.
    """
    from training import model as model_io  # scikit-learn: only where a model is scored

    label = f"champion {version or '(unversioned)'}"
    path = model_file_in(folder)
    digest = sha256_file(path)
    if sha256 is not None and digest != sha256:
        raise ChampionError(f"{label}: {MODEL_FILE} has sha256 {digest}, the registry {sha256}")
    run_file = path.parent / RUN_FILE
    trained_with: dict[str, str] = {}
    if run_file.is_file():
        trained_with = dict(json.loads(run_file.read_text(encoding="utf-8")).get("versions", {}))
    try:
        metrics = score(model_io.load(path), holdout)
    except Exception as exc:  # unpickling fails in many ways; each means "cannot compare"
        raise ChampionError(
            f"{label} cannot be scored here ({type(exc).__name__}: {exc}); "
            f"it was trained with {trained_with or 'unrecorded versions'}"
        ) from exc
    return ChampionScore(version=version, sha256=digest, metrics=metrics, trained_with=trained_with)


def build_record(
    *,
    challenger: Metrics,
    challenger_sha256: str,
    champion: ChampionScore | None,
    holdout: pd.DataFrame,
    n_train: int,
    run: dict[str, Any],
) -> DecisionRecord:
    """Assemble the record from a training run (``run`` is its ``run.json`` content)."""
    return DecisionRecord(
        challenger=challenger,
        challenger_sha256=challenger_sha256,
        champion=champion,
        holdout_fingerprint=fingerprint(holdout),
        holdout_rows=len(holdout),
        n_train=n_train,
        data_fingerprint=run["data_fingerprint"],
        n_rows=run["n_rows"],
        params=run["params"],
        params_digest=run["params_digest"],
        python_version=run["python_version"],
        versions=run["versions"],
    )


def write_record(record: DecisionRecord, folder: Path) -> Path:
    """Write ``decision.json`` into ``folder`` (created if missing); returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / DECISION_FILE
    path.write_text(record.model_dump_json(indent=2) + "\n", encoding="utf-8")
    return path


def read_record(path: Path) -> DecisionRecord:
    """Read and validate a ``decision.json`` (``pydantic.ValidationError`` if malformed)."""
    return DecisionRecord.model_validate_json(Path(path).read_text(encoding="utf-8"))
