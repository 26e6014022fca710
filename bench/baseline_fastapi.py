"""The benchmark's baseline: the typical FastAPI + pydantic scoring app calling ``predict``.

python bench/baseline_fastapi.py PORT MODEL_FILE KEY   (serves on 127.0.0.1:PORT)
"""

from __future__ import annotations

import sys

import joblib
import numpy as np
import uvicorn
from fastapi import Depends, FastAPI, Header, HTTPException
from pydantic import BaseModel, Field


class ScoreRequest(BaseModel):
    """Rows to score (module level, so FastAPI can resolve the annotation)."""

    data: list[list[float]] = Field(min_length=1, max_length=1000)


class ScoreResponse(BaseModel):
    """One prediction per row."""

    predictions: list[float]


def baseline_app(model_path: str, key: str) -> FastAPI:
    """Build the app: a pydantic request model, a key check, ``model.predict``."""
    model = joblib.load(model_path)
    app = FastAPI()

    def auth(authorization: str = Header("")) -> None:
        if authorization != f"Bearer {key}":
            raise HTTPException(401)

    @app.post("/score", response_model=ScoreResponse, dependencies=[Depends(auth)])
    def score(request: ScoreRequest) -> ScoreResponse:
        return ScoreResponse(predictions=model.predict(np.asarray(request.data)).tolist())

    @app.get("/")
    def health() -> str:
        return "Healthy"

    return app


if __name__ == "__main__":
    port, model_file, api_key = sys.argv[1:4]
    uvicorn.run(
        baseline_app(model_file, api_key),
        host="127.0.0.1",
        port=int(port),
        log_level="warning",
        access_log=False,
    )
