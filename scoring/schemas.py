"""Request and error schemas: parse a ``/score`` body into a float64 matrix, or say why not.

The request is ``{"data": [[<N_FEATURES numbers>], ...]}``, the body Azure ML's
MLOpsPython clients send. Every refusal is an ``ApiError`` whose JSON body is
``{"error": {"code": ..., "message": ...}}`` and whose message names the row, the column
and the feature at fault. Nothing a client sends can produce a 500.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import orjson

from training.schema import FEATURES, N_FEATURES

FEATURE_LIST = ", ".join(FEATURES)
# The largest magnitude of a feature value. The features are scaled (|x| < 1); far beyond,
# a value is a mistake, and a linear model's prediction could overflow a double (the
# service would refuse it anyway): bounding the input makes "schema-valid" mean "served".
MAX_ABS_VALUE = 1e9
_NON_FINITE_TOKENS = (b"NaN", b"Infinity")


class ApiError(Exception):
    """A request the service refuses, with its HTTP status and a machine-readable code.

    Args:
        status: HTTP status code.
        code: Stable, machine-readable error code (``wrong_row_width``, ...).
        message: What is wrong, for a person.
        headers: Extra response headers (``allow``, ``www-authenticate``).
    """

    def __init__(
        self, status: int, code: str, message: str, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}

    def body(self) -> bytes:
        """Return the JSON error body."""
        return orjson.dumps({"error": {"code": self.code, "message": self.message}})


def _invalid(code: str, message: str) -> ApiError:
    return ApiError(422, code, message)


def decode_json(body: bytes) -> Any:
    """Parse strict JSON (no ``NaN``/``Infinity``, no numbers that overflow a double).

    Raises:
        ApiError: 400 ``invalid_json``, or 422 ``non_finite_value`` for NaN/Infinity.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        pos = exc.pos
        if body[pos : pos + 8].startswith(_NON_FINITE_TOKENS) or "infinity" in exc.msg:
            raise _invalid(
                "non_finite_value",
                f"non-finite number at byte {pos}: NaN and Infinity are not allowed, "
                "every value must be a finite number",
            ) from None
        raise ApiError(
            400, "invalid_json", f"body is not valid JSON: {exc.msg} (byte {pos})"
        ) from None


def parse_rows(body: bytes, max_rows: int, max_abs_value: float = MAX_ABS_VALUE) -> np.ndarray:
    """Validate a ``/score`` body and return its rows as an ``(n, N_FEATURES)`` float64 array.

    Args:
        body: The raw request body.
        max_rows: Most rows accepted.
        max_abs_value: Largest magnitude of a value (the OpenAPI document says the same).

    Returns:
        The rows, C-contiguous float64, all finite.

    Raises:
        ApiError: With a message naming the first problem found.
    """
    payload = decode_json(body)
    if not isinstance(payload, dict):
        raise _invalid(
            "invalid_body",
            f'body must be a JSON object like {{"data": [[{N_FEATURES} numbers], ...]}}, '
            f"got {_kind(payload)}",
        )
    if "data" not in payload:
        raise _invalid("missing_data", 'body has no "data" key: send {"data": [[...], ...]}')
    if len(payload) > 1:  # a misspelt option must not be ignored silently
        extra = sorted(key for key in payload if key != "data")
        shown = ", ".join(orjson.dumps(key[:40]).decode() for key in extra[:3])
        raise _invalid("unknown_field", f'unknown field(s) {shown}: send only "data"')
    data = payload["data"]
    if not isinstance(data, list):
        raise _invalid("invalid_data", f'"data" must be a list of rows, got {_kind(data)}')
    if not data:
        raise _invalid("empty_data", '"data" is empty: send at least one row')
    if len(data) > max_rows:
        raise ApiError(
            413, "too_many_rows", f'"data" has {len(data)} rows, at most {max_rows} are accepted'
        )
    for index, row in enumerate(data):
        if type(row) is not list or len(row) != N_FEATURES:
            raise _row_error(index, row)
        for value in row:
            kind = type(value)
            if kind is not float and kind is not int:
                raise _value_error(index, row)
    try:
        rows = np.array(data, dtype=np.float64)
    except (OverflowError, ValueError) as exc:  # ints beyond a double's range
        raise _invalid("non_finite_value", f"a value does not fit a double: {exc}") from None
    if not np.isfinite(rows).all():
        bad = np.argwhere(~np.isfinite(rows))[0]
        raise _invalid(
            "non_finite_value",
            f"row {bad[0]} column {bad[1]} ({FEATURES[bad[1]]}) is not a finite number",
        )
    if (np.abs(rows) > max_abs_value).any():
        bad = np.argwhere(np.abs(rows) > max_abs_value)[0]
        raise _invalid(
            "value_out_of_range",
            f"row {bad[0]} column {bad[1]} ({FEATURES[bad[1]]}) is {rows[tuple(bad)]:g}, "
            f"outside [-{max_abs_value:g}, {max_abs_value:g}]",
        )
    return rows


def _row_error(index: int, row: Any) -> ApiError:
    if isinstance(row, list):
        return _invalid(
            "wrong_row_width",
            f"row {index} has {len(row)} values, expected {N_FEATURES} ({FEATURE_LIST})",
        )
    hint = " (wrap a single row in a list: [[...]])" if not isinstance(row, dict) else ""
    return _invalid(
        "invalid_row",
        f"row {index} is {_kind(row)}, expected a list of {N_FEATURES} numbers{hint}",
    )


def _value_error(index: int, row: list[Any]) -> ApiError:
    column, value = next(
        (col, val) for col, val in enumerate(row) if type(val) is not float and type(val) is not int
    )
    return _invalid(
        "invalid_value",
        f"row {index} column {column} ({FEATURES[column]}) is {_kind(value)}, "
        "expected a finite number",
    )


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, str):
        shown = value if len(value) <= 20 else value[:20] + "..."
        return f"a string ({orjson.dumps(shown).decode()})"
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    return f"a number ({value})"
