"""The ceiling: a raw ASGI app with orjson and a numpy dot product, no framework at all.

No validation and no request log, only the key check: what serving this model over HTTP
costs at least on this machine. ``uvicorn bench.raw_asgi:app --workers 2`` with
``BENCH_MODEL_FILE`` and ``BENCH_KEY_FILE`` set (read at import, in each worker).
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import joblib
import numpy as np
import orjson

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]

_model = joblib.load(os.environ["BENCH_MODEL_FILE"])
_coef = np.asarray(_model.coef_, dtype=np.float64)
_intercept = float(_model.intercept_)
with open(os.environ["BENCH_KEY_FILE"], "rb") as _fh:
    _auth = b"Bearer " + _fh.read().strip()
_HEADERS = [(b"content-type", b"application/json")]


async def app(
    scope: Scope,
    receive: Callable[[], Awaitable[Message]],
    send: Callable[[Message], Awaitable[None]],
) -> None:
    """``GET /`` answers 200; ``POST /score`` returns the predictions of ``{"data": rows}``."""
    if scope["type"] != "http":
        return
    if scope["method"] == "GET":
        await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
        await send({"type": "http.response.body", "body": b'"Healthy"'})
        return
    if dict(scope["headers"]).get(b"authorization") != _auth:
        await send({"type": "http.response.start", "status": 401, "headers": _HEADERS})
        await send({"type": "http.response.body", "body": b"{}"})
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    rows = np.asarray(orjson.loads(body)["data"], dtype=np.float64)
    answer = orjson.dumps(
        {"predictions": rows @ _coef + _intercept}, option=orjson.OPT_SERIALIZE_NUMPY
    )
    await send({"type": "http.response.start", "status": 200, "headers": _HEADERS})
    await send({"type": "http.response.body", "body": answer})
