"""The OpenAPI 3 description served at ``/swagger.json`` (as Azure ML does) and a docs page."""

from __future__ import annotations

from typing import Any

from scoring.schemas import MAX_ABS_VALUE
from training.schema import FEATURES, N_FEATURES

_ERROR = {"$ref": "#/components/schemas/Error"}


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


_ERROR_TEXT = {
    400: "Malformed JSON or Content-Length",
    401: "Missing or wrong API key",
    408: "The request's headers or body came too slowly; the connection is closed",
    413: "Too many rows or body too large",
    415: "Content-Type is not application/json",
    422: "Valid JSON that is not a valid request (message names row, column, feature)",
    503: "Model not loaded yet, or too many open connections (then as text); retry shortly",
}


def _errors(*statuses: int) -> dict[str, Any]:
    responses = {str(status): _json(_ERROR, _ERROR_TEXT[status]) for status in statuses}
    if "401" in responses:
        responses["401"]["headers"] = {
            "WWW-Authenticate": {"schema": {"type": "string", "enum": ["Bearer"]}}
        }
    if "503" in responses:  # the connection cap answers before the app, in plain text
        responses["503"]["content"]["text/plain"] = {"schema": {"type": "string"}}
    return responses


def build_openapi(
    model_name: str,
    model_version: str,
    max_rows: int,
    max_body_bytes: int,
    max_abs_value: float = MAX_ABS_VALUE,
) -> dict[str, Any]:
    """Return the OpenAPI 3.0 document of the service: exactly what it accepts and answers.

    Args:
        model_name: Registered model name (in the title).
        model_version: Registered model version (the API version).
        max_rows: Most rows per request.
        max_body_bytes: Largest body accepted.
        max_abs_value: Largest magnitude of a feature value.

    Returns:
        The document as a JSON-ready dict.
    """
    value = {"type": "number", "minimum": -max_abs_value, "maximum": max_abs_value}
    row = {
        "type": "array",
        "items": value,
        "minItems": N_FEATURES,
        "maxItems": N_FEATURES,
        "description": "One row, in this order: " + ", ".join(FEATURES),
    }
    request = {
        "type": "object",
        "required": ["data"],
        "additionalProperties": False,
        "properties": {
            "data": {"type": "array", "items": row, "minItems": 1, "maxItems": max_rows}
        },
        "example": {
            "data": [[0.038, 0.051, 0.062, 0.022, -0.044, -0.035, -0.043, -0.003, 0.020, -0.018]]
        },
    }
    predictions = {"type": "array", "items": {"type": "number"}}
    model = {
        "type": "object",
        "required": ["name", "version"],
        "properties": {"name": {"type": "string"}, "version": {"type": "string"}},
    }
    response = {
        "type": "object",
        "required": ["predictions", "result", "model"],
        "additionalProperties": False,
        "properties": {
            "predictions": predictions,
            "result": {**predictions, "description": "Same as predictions (Azure ML clients)"},
            "model": model,
        },
    }
    error = {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    }
    text = {"text/plain": {"schema": {"type": "string"}}}
    busy = {"503": {"description": _ERROR_TEXT[503], "content": text}}
    secured: list[dict[str, list[str]]] = [{"bearer": []}]
    return {
        "openapi": "3.0.3",
        "info": {
            "title": f"{model_name} scoring service",
            "version": model_version,
            "description": f"A scikit-learn regressor on the diabetes features. Bodies up to "
            f"{max_body_bytes} bytes, 1 to {max_rows} rows, values in "
            f"[-{max_abs_value:g}, {max_abs_value:g}].",
        },
        "paths": {
            "/score": {
                "post": {
                    "summary": "Predict one value per row",
                    "security": secured,
                    "requestBody": {
                        "required": True,
                        "content": {"application/json": {"schema": request}},
                    },
                    "responses": {
                        "200": _json(response, "Predictions"),
                        **_errors(400, 401, 408, 413, 415, 422, 503),
                    },
                }
            },
            "/model": {
                "get": {
                    "summary": "The served model: version, sha256, estimator, features, libraries",
                    "security": secured,
                    "responses": {
                        "200": _json({"type": "object"}, "Model description"),
                        **_errors(401, 408, 503),
                    },
                }
            },
            "/": {
                "get": {
                    "summary": "Readiness: 'Healthy' once the model is loaded",
                    "responses": {
                        "200": {"description": "Ready", "content": text},
                        **_errors(408),
                        "503": {"description": "Model not loaded (or busy)", "content": text},
                    },
                }
            },
            "/healthz": {
                "get": {
                    "summary": "Liveness",
                    "responses": {
                        "200": _json(
                            {
                                "type": "object",
                                "required": ["status"],
                                "properties": {"status": {"type": "string", "enum": ["alive"]}},
                            },
                            "Alive",
                        ),
                        **_errors(408),
                        **busy,
                    },
                }
            },
        },
        "components": {
            "securitySchemes": {"bearer": {"type": "http", "scheme": "bearer"}},
            "schemas": {"Error": error},
        },
    }


DOCS_HTML = b"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Scoring service</title>
<style>body{font-family:sans-serif;max-width:60em;margin:2em auto}pre{background:#f4f4f4;
padding:1em;overflow:auto}code{background:#f4f4f4}</style></head><body>
<h1>Scoring service</h1>
<ul>
<li><code>POST /score</code> with <code>Authorization: Bearer &lt;key&gt;</code> and
<code>{"data": [[10 numbers], ...]}</code> returns <code>{"predictions": [...]}</code></li>
<li><code>GET /model</code> (key required): version, sha256, estimator, features, libraries</li>
<li><code>GET /</code> readiness, <code>GET /healthz</code> liveness</li>
<li><a href="swagger.json">swagger.json</a>: the OpenAPI 3 document, shown below</li>
</ul>
<pre id="spec">Loading swagger.json...</pre>
<script>
fetch("swagger.json").then(r => r.json()).then(s => {
  document.getElementById("spec").textContent = JSON.stringify(s, null, 2);
}).catch(e => { document.getElementById("spec").textContent = String(e); });
</script>
</body></html>
"""
