"""The ASGI application: routes, key auth, the request log and the model's lifespan.

``create_app(settings)`` returns a plain ASGI callable. The model is loaded once, in the
lifespan startup, by an injectable loader; handlers receive it as an argument, and the only
place it lives is the app instance. A model that fails verification stops the startup, so
the process exits non-zero instead of serving a wrong model.

Every answered request is counted for ``GET /metrics`` (``scoring.metrics``) and, when
telemetry is on, traced in a span of its own (``scoring.telemetry``).
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import orjson

from scoring.asgi import (
    ClientDisconnected,
    Receive,
    Request,
    Response,
    Scope,
    Send,
    read_body,
    send_response,
)
from scoring.collect import Collector, collector_for
from scoring.deps import LoadedModel, ModelLoadError, load_model
from scoring.logs import log_request
from scoring.metrics import (
    CONTENT_TYPE,
    QueueStats,
    QueueStatsSource,
    ServiceMetrics,
    no_queue,
)
from scoring.openapi import DOCS_HTML, build_openapi
from scoring.schemas import ApiError, parse_rows
from scoring.settings import ScoringSettings
from scoring.telemetry import RequestTracer

Loader = Callable[[ScoringSettings], LoadedModel]
Handler = Callable[[Request, LoadedModel | None], Awaitable[Response]]

logger = logging.getLogger("scoring")

_TEXT = b"text/plain; charset=utf-8"
_JSON_TYPES = ("application/json",)


@dataclass(frozen=True)
class Route:
    """A handler and whether it needs the API key."""

    handler: Handler
    auth: bool = False


class ScoringApp:
    """The scoring service as an ASGI application. Build it with ``create_app``."""

    def __init__(
        self,
        settings: ScoringSettings,
        loader: Loader = load_model,
        queue_stats: QueueStatsSource | None = None,
        tracer: RequestTracer | None = None,
    ) -> None:
        self._settings = settings
        self._tracer = tracer
        self._loader = loader
        self._keys = settings.api_keys()
        self._model: LoadedModel | None = None
        self._collector: Collector | None = None
        self._model_ref = {"name": settings.model_name, "version": settings.model_version}
        spec = build_openapi(
            settings.model_name,
            settings.model_version,
            settings.max_rows,
            settings.max_body_bytes,
            settings.max_abs_value,
        )
        self._swagger = orjson.dumps(spec)
        self._routes: dict[str, dict[str, Route]] = {
            "/score": {"POST": Route(self._score, auth=True)},
            "/model": {"GET": Route(self._model_info, auth=True)},
            "/": {"GET": Route(self._ready)},
            "/healthz": {"GET": Route(self._live)},
            "/swagger.json": {"GET": Route(self._openapi)},
            "/docs": {"GET": Route(self._docs)},
            # No key: replicas listen on loopback (or a private network) for the scraper,
            # and the environment's HAProxy refuses /metrics on the stable URL.
            "/metrics": {"GET": Route(self._metrics_text)},
        }
        self.metrics = ServiceMetrics(
            settings.model_name,
            settings.model_version,
            settings.model_sha256,
            self._routes,
            queue_stats or self._collection_queue,
        )

    def _collection_queue(self) -> QueueStats:
        """The collector's queue for ``/metrics``: rows held, rows dropped (full or upload)."""
        if self._collector is None:
            return no_queue()
        stats = self._collector.stats()
        return QueueStats(
            stats["queue_rows"], stats["rows_dropped_full"] + stats["rows_dropped_upload"]
        )

    @property
    def model(self) -> LoadedModel | None:
        """The loaded model, or None before startup."""
        return self._model

    @property
    def collector(self) -> Collector | None:
        """The collector of scored rows (``stats()`` holds its counters), None when off."""
        return self._collector

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Serve one ASGI connection (HTTP request or lifespan)."""
        kind = scope["type"]
        if kind == "http":
            if self._tracer is None:
                await self._http(scope, receive, send)
            else:
                with self._tracer.request(scope["method"], scope["path"]) as span:
                    await self._http(scope, receive, send, span)
        elif kind == "lifespan":
            await self._lifespan(receive, send)
        elif kind == "websocket":  # refuse: a 403 at the handshake
            await send({"type": "websocket.close", "code": 1008})

    # ------------------------------------------------------------------ lifespan
    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                try:
                    self._startup()
                except Exception as exc:
                    reason = str(exc) if isinstance(exc, ModelLoadError) else repr(exc)
                    logger.error(
                        "refusing to start: %s",
                        reason,
                        exc_info=not isinstance(exc, ModelLoadError),
                    )
                    await send({"type": "lifespan.startup.failed", "message": reason})
                    raise  # servers (uvicorn, the test client) then stop
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                if self._collector is not None:  # every answered request is recorded by now
                    await asyncio.to_thread(self._collector.close)
                await send({"type": "lifespan.shutdown.complete"})
                return

    def _startup(self) -> None:
        if self._model is not None:  # loaded once per app, even if the lifespan reruns
            return
        started = time.perf_counter()
        model = self._loader(self._settings)
        self._model = model
        self._collector = collector_for(
            self._settings, model.name, model.version, model.data_fingerprint
        )
        if self._collector is not None:
            self._collector.start()
        logger.info(
            "model loaded",
            extra={
                "model_name": model.name,
                "model_version": model.version,
                "sha256": model.sha256,
                "estimator": model.estimator,
                "estimator_name": model.estimator_name,
                "fast_path": model.fast_path,
                "load_ms": round((time.perf_counter() - started) * 1000, 1),
            },
        )

    # ------------------------------------------------------------------ HTTP
    async def _http(self, scope: Scope, receive: Receive, send: Send, span: Any = None) -> None:
        started = time.perf_counter()
        request = Request.from_scope(scope, receive)
        try:
            response = await self._dispatch(request)
        except ClientDisconnected:
            self._done(request, 499, started, span)
            return
        await send_response(send, response, request.request_id)
        self._done(request, response.status, started, span)

    def _done(self, request: Request, status: int, started: float, span: Any) -> None:
        if span is not None and self._tracer is not None:
            self._tracer.finish(span, request.request_id, status, request.rows)
        self.metrics.observe(
            request.path,
            request.method,
            status,
            time.perf_counter() - started,
            (request.rows or 0) if status == 200 else 0,
        )
        log_request(request, status, started, self._settings.model_version)

    async def _dispatch(self, request: Request) -> Response:
        try:
            routes = self._routes.get(request.path)
            if routes is None:
                raise ApiError(404, "not_found", f"no route {request.path[:100]}; see /docs")
            route = routes.get(request.method)
            if route is None:
                allowed = ", ".join(routes)
                raise ApiError(
                    405,
                    "method_not_allowed",
                    f"{request.method[:20]} is not allowed on {request.path}; use {allowed}",
                    {"allow": allowed},
                )
            if route.auth:
                self._authorize(request)
            return await route.handler(request, self._model)
        except ApiError as err:
            request.error = err.code
            extra = tuple((k.encode(), v.encode()) for k, v in err.headers.items())
            return Response(err.status, err.body(), headers=extra)
        except ClientDisconnected:
            raise
        except Exception:
            logger.exception("unhandled error", extra={"request_id": request.request_id})
            request.error = "internal_error"
            failure = ApiError(500, "internal_error", f"internal error ({request.request_id})")
            return Response(500, failure.body())

    def _authorize(self, request: Request) -> None:
        scheme, _, token = request.headers.get(b"authorization", "").partition(" ")
        challenge = {"www-authenticate": "Bearer"}
        if scheme.lower() != "bearer" or not token.strip():
            raise ApiError(
                401, "missing_key", "send the API key as 'Authorization: Bearer <key>'", challenge
            )
        given = token.strip().encode("latin-1")
        # Compare with every key (no early exit), each in constant time.
        if not sum(hmac.compare_digest(given, key) for key in self._keys):
            raise ApiError(401, "invalid_key", "the API key is not valid", challenge)

    # ------------------------------------------------------------------ handlers
    async def _score(self, request: Request, model: LoadedModel | None) -> Response:
        model = _require(model)
        content_type = request.headers.get(b"content-type", "")
        if content_type.partition(";")[0].strip().lower() not in _JSON_TYPES:
            raise ApiError(
                415,
                "unsupported_media_type",
                f"Content-Type must be application/json, got {content_type[:50] or 'none'}",
            )
        body = await read_body(request, self._settings.max_body_bytes, self._settings.body_timeout)
        rows = parse_rows(body, self._settings.max_rows, self._settings.max_abs_value)
        request.rows = len(rows)
        with np.errstate(all="ignore"):
            predictions = model.predict(rows)
        if not np.isfinite(predictions).all():
            first = int(np.argmin(np.isfinite(predictions)))
            raise ApiError(
                422,
                "non_finite_prediction",
                f"the prediction for row {first} overflows: its values are too large",
            )
        values = predictions.tolist()
        if self._collector is not None:
            self._collector.record(request.request_id, rows, predictions, body)
        if self._settings.log_payloads:
            request.payload = {"data": rows.tolist(), "predictions": values}
        return Response(
            200, orjson.dumps({"predictions": values, "result": values, "model": self._model_ref})
        )

    async def _model_info(self, request: Request, model: LoadedModel | None) -> Response:
        info = _require(model).info()
        if self._collector is not None:
            info["collection"] = self._collector.stats()
        return Response(200, orjson.dumps(info))

    async def _ready(self, request: Request, model: LoadedModel | None) -> Response:
        if model is None:
            return Response(503, b"Unhealthy: model not loaded", _TEXT)
        return Response(200, b"Healthy", _TEXT)

    async def _live(self, request: Request, model: LoadedModel | None) -> Response:
        return Response(200, b'{"status":"alive"}')

    async def _openapi(self, request: Request, model: LoadedModel | None) -> Response:
        return Response(200, self._swagger)

    async def _docs(self, request: Request, model: LoadedModel | None) -> Response:
        return Response(200, DOCS_HTML, b"text/html; charset=utf-8")

    async def _metrics_text(self, request: Request, model: LoadedModel | None) -> Response:
        return Response(200, self.metrics.exposition(), CONTENT_TYPE)


def _require(model: LoadedModel | None) -> LoadedModel:
    if model is None:
        raise ApiError(503, "model_not_loaded", "the model is not loaded yet; retry shortly")
    return model


def create_app(
    settings: ScoringSettings,
    loader: Loader = load_model,
    queue_stats: QueueStatsSource | None = None,
    tracer: RequestTracer | None = None,
) -> ScoringApp:
    """Build the scoring service.

    Args:
        settings: The service settings.
        loader: Loads and verifies the model at startup (tests inject their own).
        queue_stats: The collection queue's depth and drops, for ``/metrics`` (default:
            the service's own collector's).
        tracer: Makes a span per request (``scoring.telemetry``); None: no tracing.

    Returns:
        An ASGI application; the model loads when its lifespan starts.
    """
    return ScoringApp(settings, loader, queue_stats, tracer)
