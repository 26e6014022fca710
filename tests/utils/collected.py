"""Synthetic collected windows and label files, written in the scoring service's format
(``training/collected.py``: ``CollectedRequest.to_json`` lines under ``window_blob``)."""

from __future__ import annotations

from datetime import datetime, timedelta

import numpy as np
import pandas as pd

from core.interfaces import DataLake
from training.collected import CollectedRequest, CollectedRow, window_blob
from training.data import reference_dataset
from training.schema import FEATURES, TARGET


def traffic(rows: int, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    """``rows`` rows drawn (with replacement) from the reference data, with ``shift``
    reference standard deviations added to bmi and s5 (0: no drift)."""
    reference = reference_dataset()
    frame = reference.sample(rows, replace=True, random_state=seed).reset_index(drop=True)
    for name in ("bmi", "s5"):
        frame[name] += shift * reference[name].std()
    return frame


def predictions_of(frame: pd.DataFrame) -> np.ndarray:
    """A stand-in model's predictions: linear in bmi and s5 (what the service would say)."""
    return 152.0 + 900.0 * frame["bmi"].to_numpy() + 700.0 * frame["s5"].to_numpy()


def write_window(
    datalake: DataLake,
    container: str,
    env: str,
    start: datetime,
    frame: pd.DataFrame,
    *,
    writer: str = "w1",
    model: str = "diabetes-ridge",
    version: str = "1",
    request_prefix: str = "req",
) -> list[CollectedRow]:
    """One writer's window file of ``frame``'s rows (one request per row); returns them."""
    predictions = predictions_of(frame)
    rows = [
        CollectedRow(
            request_id=f"{request_prefix}-{i}",
            row=0,
            time=(start + timedelta(seconds=i % 60)).isoformat(),
            model=model,
            version=version,
            data_fingerprint="f" * 64,
            features={name: float(frame[name].iloc[i]) for name in FEATURES},
            prediction=float(predictions[i]),
        )
        for i in range(len(frame))
    ]
    requests = [
        CollectedRequest(
            request_id=r.request_id,
            time=r.time,
            model=r.model,
            version=r.version,
            data_fingerprint=r.data_fingerprint,
            columns=FEATURES,
            features=(tuple(r.features[name] for name in FEATURES),),
            predictions=(r.prediction,),
        )
        for r in rows
    ]
    body = "\n".join(r.to_json() for r in requests) + "\n"
    datalake.ensure_containers(container)
    datalake.put(container, window_blob(env, start, writer), body.encode())
    return rows


def write_labels(
    datalake: DataLake, container: str, name: str, rows: list[CollectedRow], targets: list[float]
) -> None:
    """``labels/<name>``: ``request_id,row,target`` for ``rows``."""
    lines = ["request_id,row,target"]
    lines += [f"{r.request_id},{r.row},{t}" for r, t in zip(rows, targets, strict=True)]
    datalake.put(container, f"labels/{name}", ("\n".join(lines) + "\n").encode())


__all__ = ["TARGET", "predictions_of", "traffic", "write_labels", "write_window"]
