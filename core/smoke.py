"""Smoke test a deployed scoring service: the client side of the scoring contract.

Checks, each recorded even when an earlier one fails: ready, key enforced, golden requests
answered with the model's own predictions and version, bad input refused with a 4xx, p95
latency under budget (skipped when the service is not ready). Requests are bounded in
number and time and never retried, so a flaky service fails the test.

Every request is ``POST /score``: behind Azure ML's online-endpoint router no other path of
the container is reachable (its liveness and readiness routes are probed by the platform),
and the router turns a container's non-200 answer into 424 with the container's status in
``ms-azureml-model-error-statuscode`` (Azure ML's troubleshooting guide, "common error
codes"), so a refusal is judged by that status there.
"""

from __future__ import annotations

import json
import logging
import math
import secrets
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import BaseModel, Field

from core.interfaces import Endpoint

logger = logging.getLogger("core.smoke")
Problems = tuple[list[str], str]  # what went wrong (empty when passed), summary if passed


class SmokeConfig(BaseModel):
    """How hard to push. ``tolerance`` is both absolute and relative."""

    requests: int = Field(default=200, ge=1, le=10_000)
    p95_budget_ms: float = Field(default=250.0, gt=0)
    tolerance: float = Field(default=1e-6, ge=0)
    timeout_s: float = Field(default=10.0, gt=0)
    ready_timeout_s: float = Field(default=60.0, ge=0)


class SmokeCheck(BaseModel):
    """One check: its name, outcome, what was seen and how long it took."""

    name: str
    passed: bool
    detail: str
    duration_ms: float


class SmokeReport(BaseModel):
    """The outcome of a smoke test. It never holds the endpoint's key."""

    endpoint_url: str
    environment: str
    model_version: str
    passed: bool
    checks: list[SmokeCheck]
    p50_ms: float | None = None
    p95_ms: float | None = None
    requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        """Return the report as JSON-ready data."""
        return self.model_dump(mode="json")

    def summary(self) -> str:
        """Return one line: ``passed``, or each failed check and why (details shortened)."""
        failed = [f"{c.name} ({c.detail[:200]})" for c in self.checks if not c.passed]
        return f"smoke test failed: {'; '.join(failed)}" if failed else "smoke test passed"

    def to_markdown(self) -> str:
        """Return the report as a Markdown heading, a latency line and a table of checks."""
        p50, p95 = (f"{v:.1f} ms" if v is not None else "n/a" for v in (self.p50_ms, self.p95_ms))
        lines = [
            f"### Smoke test {'PASSED' if self.passed else 'FAILED'}: "
            f"{self.environment} `{self.endpoint_url}`, model version `{self.model_version}`",
            "",
            f"Latency over {self.requests} requests: p50 {p50}, p95 {p95}.",
            "",
            "| Check | Result | Detail | Time (ms) |",
            "|---|---|---|---:|",
        ]
        for check in self.checks:
            detail = check.detail.replace("|", "\\|").replace("\n", " ")
            result = "pass" if check.passed else "**FAIL**"
            lines.append(f"| {check.name} | {result} | {detail} | {check.duration_ms:.1f} |")
        return "\n".join(lines) + "\n"


def run_smoke_test(
    endpoint: Endpoint, golden: dict[str, Any], expected_version: str, config: SmokeConfig
) -> SmokeReport:
    """Smoke test ``endpoint`` against the model's golden requests.

    Args:
        endpoint: The deployed service (its ``key`` authorizes the requests).
        golden: ``{"data": [[...], ...], "predictions": [...]}`` from the model folder.
        expected_version: The model version the service must report.
        config: Sample size, latency budget, tolerance and timeouts.

    Returns:
        The report; ``passed`` only when every check passed.

    Raises:
        ValueError: If ``golden`` is malformed (no rows, or rows and predictions differ).
    """
    rows, expected = _validate_golden(golden)
    with httpx.Client(base_url=endpoint.url.rstrip("/"), timeout=config.timeout_s) as client:
        smoke = _Smoke(client, endpoint, rows, expected, expected_version, config)
        checks = [smoke.run(name) for name in ("ready", "auth", "golden", "bad_request", "latency")]
    samples = sorted(smoke.samples)
    failed = [check.name for check in checks if not check.passed]
    log = logger.warning if failed else logger.info
    outcome = f"failed: {', '.join(failed)}" if failed else "passed"
    log("smoke test of %s at %s %s", endpoint.environment, endpoint.url, outcome)
    return SmokeReport(
        endpoint_url=endpoint.url,
        environment=endpoint.environment,
        model_version=expected_version,
        passed=not failed,
        checks=checks,
        p50_ms=_percentile(samples, 0.50),
        p95_ms=_percentile(samples, 0.95),
        requests=len(samples),
    )


@dataclass
class _Smoke:
    """The checks, sharing one keep-alive client and the golden requests."""

    client: httpx.Client
    endpoint: Endpoint
    rows: list[list[float]]
    expected: list[float]
    version: str
    config: SmokeConfig
    is_ready: bool = False
    samples: list[float] = field(default_factory=list)

    def run(self, name: str) -> SmokeCheck:
        """Run the check ``name``; its detail never holds the key."""
        started = time.perf_counter()
        try:
            problems, summary = getattr(self, name)()
        except httpx.HTTPError as exc:
            problems, summary = [_describe(exc)], ""
        except Exception as exc:  # a smoke test reports, it does not crash the release
            logger.exception("smoke check %s crashed", name)
            problems, summary = [f"check crashed: {_describe(exc)}"], ""
        detail = "; ".join(problems) or summary
        if self.endpoint.key:  # a misbehaving service might echo the key back
            detail = detail.replace(self.endpoint.key, "***")
        elapsed = round((time.perf_counter() - started) * 1000, 1)
        return SmokeCheck(name=name, passed=not problems, detail=detail, duration_ms=elapsed)

    def ready(self) -> Problems:
        """Wait until the scoring route itself answers. Only ``POST /score``: behind Azure ML's
        online-endpoint router no other path of the container is reachable, so readiness is
        asked the way a client asks. Not ready while the answer is a router's or a loading
        service's (404, 408, 425, 429, 5xx) or no answer; any other status means the service
        answered, and the checks below judge what it said."""
        deadline = time.monotonic() + self.config.ready_timeout_s
        attempts, last = 0, ""
        body = _json({"data": self.rows[:1]})
        while True:
            attempts += 1
            timeout = min(self.config.timeout_s, max(deadline - time.monotonic(), 1.0))
            try:
                status = self._score(body, timeout=timeout).status_code
                if status < 500 and status not in NOT_READY:
                    self.is_ready = True
                    return [], f"the scoring route answered after {attempts} attempt(s)"
                last = f"HTTP {status}"
            except httpx.HTTPError as exc:
                last = _describe(exc)
            if time.monotonic() + 0.2 > deadline:
                return [f"not ready within {self.config.ready_timeout_s:g} s ({last})"], ""
            time.sleep(0.2)

    def auth(self) -> Problems:
        wrong = {"Authorization": f"Bearer smoke-wrong-{secrets.token_hex(16)}"}
        problems = []
        for label, headers in (("without a key", {}), ("with a wrong key", wrong)):
            response = self.client.post("/score", json={"data": self.rows[:1]}, headers=headers)
            if response.status_code != 401:
                problems.append(f"POST /score {label}: HTTP {response.status_code}, expected 401")
        return problems, "401 without a key and with a wrong key"

    def golden(self) -> Problems:
        problems = []
        for label, count in ((f"{len(self.rows)} golden rows", len(self.rows)), ("1 row", 1)):
            response = self._score(_json({"data": self.rows[:count]}))
            problems += [f"{label}: {p}" for p in self._verify(response, self.expected[:count])]
        return problems, f"{len(self.rows)} golden rows and 1 row match, version {self.version}"

    def bad_request(self) -> Problems:
        problems = []
        cases = (
            (f"a row of {len(self.rows[0]) - 1} values", _json({"data": [self.rows[0][:-1]]})),
            ("invalid JSON", b'{"data": [[1, 2'),
        )
        for label, body in cases:
            response = self._score(body)
            status, routed = _service_status(response)
            if not 400 <= status < 500 or status in (401, 403):
                shown = f"HTTP {response.status_code}" + (f" (service {status})" if routed else "")
                problems.append(f"{label}: {shown}, expected a 4xx refusal of the input")
            elif not routed and not _has_error_body(response):
                problems.append(f'{label}: HTTP {status} without an {{"error": ...}} JSON body')
        return problems, "wrong-width row and invalid JSON refused with 4xx"

    def latency(self) -> Problems:
        if not self.is_ready:
            return ["skipped: the service is not ready"], ""
        config, samples = self.config, self.samples
        # Past this many slow answers, p95 is over budget whatever follows: stop there.
        allowed_slow, slow = config.requests - math.ceil(0.95 * config.requests), 0
        bodies = [_json({"data": [row]}) for row in self.rows]
        for index in range(config.requests):
            row = index % len(self.rows)
            started = time.perf_counter()
            try:
                response = self._score(bodies[row])
                errors = self._verify(response, self.expected[row : row + 1])
            except httpx.HTTPError as exc:  # a timeout is a (failed) sample too
                errors = [_describe(exc)]
            samples.append((time.perf_counter() - started) * 1000)
            if errors:
                return [f"request {index + 1}: {errors[0]}"], ""
            slow += samples[-1] > config.p95_budget_ms
            if slow > allowed_slow:
                break
        p95 = _percentile(sorted(samples), 0.95) or 0.0
        summary = (
            f"p95 {p95:.1f} ms over {len(samples)} requests, budget {config.p95_budget_ms:g} ms"
        )
        if p95 > config.p95_budget_ms:
            return [summary + (" (stopped early)" if len(samples) < config.requests else "")], ""
        return [], summary

    def _score(self, body: bytes, timeout: float | None = None) -> httpx.Response:
        headers = {"Authorization": f"Bearer {self.endpoint.key}", **_JSON_TYPE}
        if timeout is None:
            return self.client.post("/score", content=body, headers=headers)
        return self.client.post("/score", content=body, headers=headers, timeout=timeout)

    def _verify(self, response: httpx.Response, expected: list[float]) -> list[str]:
        if response.status_code != 200:
            return [f"HTTP {response.status_code}: {response.text[:200]}"]
        try:
            body = response.json()
            predictions, model = body["predictions"], body["model"]
            served_version, served_name = str(model["version"]), str(model.get("name", ""))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            return [f"response is not the scoring contract ({_describe(exc)})"]
        problems = []
        if served_version != self.version:
            problems.append(f"served model version {served_version!r}, expected {self.version!r}")
        if self.endpoint.model_name and served_name != self.endpoint.model_name:
            problems.append(f"served model {served_name!r}, expected {self.endpoint.model_name!r}")
        if not isinstance(predictions, list) or len(predictions) != len(expected):
            count = len(predictions) if isinstance(predictions, list) else "no"
            return [*problems, f"{count} predictions for {len(expected)} rows"]
        tol = self.config.tolerance
        wrong = [
            (i, got, want)
            for i, (got, want) in enumerate(zip(predictions, expected, strict=True))
            if not _is_number(got) or not math.isclose(got, want, rel_tol=tol, abs_tol=tol)
        ]
        if wrong:
            i, got, want = wrong[0]
            problems.append(
                f"{len(wrong)} of {len(expected)} predictions differ from golden beyond "
                f"{tol:g}, first row {i}: got {got!r}, expected {want!r}"
            )
        return problems


_JSON_TYPE = {"Content-Type": "application/json"}
# Azure ML's online-endpoint router answers 424 ("model error") whenever the container answers
# anything but 200, with the container's status in this header and a body of its own.
ROUTER_MODEL_ERROR = 424
MODEL_STATUS_HEADER = "ms-azureml-model-error-statuscode"
# Statuses of a scoring route that is not serving yet (a router without a ready deployment,
# a loading or overloaded service); with every 5xx, "not ready".
NOT_READY = frozenset({404, 408, 425, 429})


def _validate_golden(golden: dict[str, Any]) -> tuple[list[list[float]], list[float]]:
    rows, predictions = golden.get("data"), golden.get("predictions")
    if not isinstance(rows, list) or not rows or not isinstance(predictions, list):
        raise ValueError('golden must be {"data": [[...], ...], "predictions": [...]}, non-empty')
    if len(rows) != len(predictions):
        raise ValueError(f"golden has {len(rows)} rows but {len(predictions)} predictions")
    widths = {len(row) if isinstance(row, list) else 0 for row in rows}
    if len(widths) != 1 or min(widths) < 2:
        raise ValueError("golden rows must be lists of numbers, all of the same width")
    values = [*predictions, *(value for row in rows for value in row)]
    if not all(_is_number(value) and math.isfinite(value) for value in values):
        raise ValueError("golden rows and predictions must be finite numbers")
    return rows, predictions


def _json(payload: Any) -> bytes:
    return json.dumps(payload, allow_nan=False).encode()


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _service_status(response: httpx.Response) -> tuple[int, bool]:
    """The status the service itself answered, and whether a router stood in between: behind
    Azure ML's router a refusal arrives as 424 with the container's status in a header (its
    body is the router's, so only the status can be judged)."""
    forwarded = response.headers.get(MODEL_STATUS_HEADER, "")
    if response.status_code == ROUTER_MODEL_ERROR and forwarded.isdigit():
        return int(forwarded), True
    return response.status_code, False


def _has_error_body(response: httpx.Response) -> bool:
    try:
        return {"code", "message"} <= response.json()["error"].keys()
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:200] or 'no message'}"


def _percentile(ordered: list[float], fraction: float) -> float | None:
    """Nearest-rank percentile of an ascending list (None when empty)."""
    if not ordered:
        return None
    return round(ordered[max(0, math.ceil(fraction * len(ordered)) - 1)], 3)
