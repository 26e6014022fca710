"""The service in-process: auth, routes, health, model info, request ids and the request log."""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from pathlib import Path

import joblib
import numpy as np
import pytest
from starlette.testclient import TestClient

from scoring.app import create_app
from scoring.deps import LoadedModel
from scoring.settings import ScoringSettings
from training.schema import FEATURES

ROW = [0.038, 0.051, 0.062, 0.022, -0.044, -0.035, -0.043, -0.003, 0.020, -0.018]


def test_score_returns_predictions_and_model(client: TestClient) -> None:
    response = client.post("/score", json={"data": [ROW, ROW]})
    assert response.status_code == 200
    body = response.json()
    assert len(body["predictions"]) == 2
    assert body["result"] == body["predictions"]  # Azure ML clients read "result"
    assert body["model"] == {"name": "diabetes-ridge", "version": "7"}


def test_golden_predictions_equal_in_process_predict(client: TestClient, model_dir: Path) -> None:
    golden = json.loads((model_dir / "golden.json").read_text())
    estimator = joblib.load(model_dir / "model.joblib")
    rows = np.asarray(golden["data"])
    served = client.post("/score", json={"data": golden["data"]}).json()["predictions"]
    expected = estimator.predict(rows)
    np.testing.assert_allclose(served, expected, rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(served, golden["predictions"], rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"Authorization": ""},
        {"Authorization": "Bearer"},
        {"Authorization": "Basic dXNlcjpwYXNz"},
        {"Authorization": "Bearer wrong-key-0123456789"},
    ],
)
def test_score_and_model_need_the_key(settings: ScoringSettings, headers: dict[str, str]) -> None:
    with TestClient(create_app(settings)) as anonymous:
        for response in (
            anonymous.post("/score", json={"data": [ROW]}, headers=headers),
            anonymous.get("/model", headers=headers),
        ):
            assert response.status_code == 401
            assert response.headers["www-authenticate"] == "Bearer"
            assert response.json()["error"]["code"] in {"missing_key", "invalid_key"}


def test_right_key_any_scheme_case(settings: ScoringSettings, api_key: str) -> None:
    with TestClient(create_app(settings)) as anonymous:
        response = anonymous.post(
            "/score", json={"data": [ROW]}, headers={"Authorization": f"bearer {api_key}"}
        )
        assert response.status_code == 200


def test_secondary_key_is_accepted(make_settings: Callable[..., ScoringSettings]) -> None:
    settings = make_settings(secondary_api_key="second-key-0123456789")
    with TestClient(create_app(settings)) as anonymous:
        for key in (settings.api_key, settings.secondary_api_key):
            assert key is not None
            auth = {"Authorization": f"Bearer {key.get_secret_value()}"}
            assert anonymous.post("/score", json={"data": [ROW]}, headers=auth).status_code == 200
        wrong = {"Authorization": "Bearer second-key-012345678"}
        assert anonymous.post("/score", json={"data": [ROW]}, headers=wrong).status_code == 401


def test_auth_comes_before_body_checks(settings: ScoringSettings) -> None:
    with TestClient(create_app(settings)) as anonymous:
        response = anonymous.post("/score", content=b"garbage", headers={"Content-Type": "x/y"})
        assert response.status_code == 401


def test_health_routes_are_open(settings: ScoringSettings) -> None:
    with TestClient(create_app(settings)) as anonymous:
        ready = anonymous.get("/")
        assert ready.status_code == 200
        assert ready.text == "Healthy"
        assert anonymous.get("/healthz").json() == {"status": "alive"}


def test_health_before_and_after_load(settings: ScoringSettings) -> None:
    app = create_app(settings)
    unstarted = TestClient(app)  # no `with`: the lifespan has not run, no model yet
    assert unstarted.get("/").status_code == 503
    assert unstarted.get("/healthz").status_code == 200
    scored = unstarted.post("/score", json={"data": [ROW]}, headers=_auth(settings))
    assert scored.status_code == 503
    assert scored.json()["error"]["code"] == "model_not_loaded"
    assert app.model is None
    with TestClient(app) as started:
        assert started.get("/").status_code == 200
        assert app.model is not None


def test_model_is_loaded_once(settings: ScoringSettings) -> None:
    calls: list[int] = []

    def loader(s: ScoringSettings) -> LoadedModel:
        from scoring.deps import load_model

        calls.append(1)
        return load_model(s)

    app = create_app(settings, loader=loader)
    for _ in range(2):
        with TestClient(app) as started:
            assert started.post("/score", json={"data": [ROW]}, headers=_auth(settings)).is_success
    assert calls == [1]


def test_injected_model(settings: ScoringSettings) -> None:
    fake = LoadedModel(
        name="fake",
        version="0",
        sha256="0" * 64,
        predict=lambda rows: rows.sum(axis=1),
        estimator="Sum",
        fast_path=False,
    )
    with TestClient(create_app(settings, loader=lambda _: fake)) as started:
        response = started.post("/score", json={"data": [[1] * 10]}, headers=_auth(settings))
        assert response.json()["predictions"] == [10.0]


def test_model_info(client: TestClient, model_sha: str) -> None:
    info = client.get("/model").json()
    assert info["name"] == "diabetes-ridge"
    assert info["version"] == "7"
    assert info["sha256"] == model_sha
    assert info["features"] == list(FEATURES)
    assert info["estimator"] == "Ridge"
    assert info["estimator_name"] == "ridge"
    assert info["fast_path"] is True
    assert set(info["trained_with"]) >= {"scikit-learn", "numpy", "pandas", "joblib", "scipy"}
    assert info["serving_with"]["scikit-learn"] == info["trained_with"]["scikit-learn"]
    assert info["metrics"] == {"rmse": 55.5, "r2": 0.42}


def test_openapi_and_docs(settings: ScoringSettings) -> None:
    with TestClient(create_app(settings)) as anonymous:
        spec = anonymous.get("/swagger.json").json()
        assert spec["openapi"].startswith("3.")
        assert {"/score", "/model", "/", "/healthz"} <= set(spec["paths"])
        data = spec["paths"]["/score"]["post"]["requestBody"]["content"]["application/json"]
        assert data["schema"]["properties"]["data"]["maxItems"] == 1000
        assert data["schema"]["additionalProperties"] is False
        value = data["schema"]["properties"]["data"]["items"]["items"]
        assert (value["minimum"], value["maximum"]) == (-1e9, 1e9)
        statuses = set(spec["paths"]["/score"]["post"]["responses"])
        assert {"200", "401", "408", "413", "422", "503"} <= statuses
        docs = anonymous.get("/docs")
        assert docs.status_code == 200
        assert docs.headers["content-type"].startswith("text/html")
        assert "swagger.json" in docs.text
        assert "http" not in docs.text.split("<script>")[1]  # no CDN fetch


def test_request_id_is_echoed_or_generated(client: TestClient) -> None:
    given = client.post("/score", json={"data": [ROW]}, headers={"X-Request-Id": "abc-123"})
    assert given.headers["x-request-id"] == "abc-123"
    aml = client.get("/", headers={"X-Ms-Request-Id": "aml-7"})
    assert aml.headers["x-request-id"] == "aml-7"
    generated = client.get("/healthz").headers["x-request-id"]
    assert len(generated) == 32
    for hostile in ("a b\u00e9".encode("latin-1"), b"x" * 200, b"a\tb"):
        echoed = client.get("/", headers={"X-Request-Id": hostile}).headers["x-request-id"]
        assert len(echoed) == 32 and echoed.isalnum()
    error = client.get("/nope", headers={"X-Request-Id": "err-1"})
    assert error.headers["x-request-id"] == "err-1"


def test_request_log_line(client: TestClient, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="scoring")
    client.post("/score", json={"data": [ROW, ROW]}, headers={"X-Request-Id": "log-1"})
    client.post("/score", json={"data": [ROW[:3]]}, headers={"X-Request-Id": "log-2"})
    lines = [vars(r) for r in caplog.records if r.name == "scoring.access"]
    by_id = {line["request_id"]: line for line in lines}
    ok, bad = by_id["log-1"], by_id["log-2"]
    assert ok["method"] == "POST" and ok["path"] == "/score" and ok["status"] == 200
    assert ok["rows"] == 2 and ok["model_version"] == "7" and ok["latency_ms"] >= 0
    assert (bad["status"], bad["error"]) == (422, "wrong_row_width")
    assert "data" not in ok  # no payloads by default
    assert "0.038" not in caplog.text


def test_payload_logging_when_enabled(
    make_settings: Callable[..., ScoringSettings], caplog: pytest.LogCaptureFixture
) -> None:
    settings = make_settings(log_payloads=True)
    caplog.set_level(logging.INFO, logger="scoring")
    with TestClient(create_app(settings), headers=_auth(settings)) as started:
        started.post("/score", json={"data": [ROW]}, headers={"X-Request-Id": "p-1"})
    line = next(vars(r) for r in caplog.records if vars(r).get("request_id") == "p-1")
    assert line["data"] == [ROW]
    assert len(line["predictions"]) == 1


def test_api_key_never_logged(
    settings: ScoringSettings, api_key: str, caplog: pytest.LogCaptureFixture
) -> None:
    from scoring.logs import JsonFormatter

    caplog.set_level(logging.DEBUG)
    with TestClient(create_app(settings)) as started:
        good = {"Authorization": f"Bearer {api_key}"}
        started.post("/score", json={"data": [ROW]}, headers=good)
        started.post("/score", json={"data": [ROW]}, headers={"Authorization": "Bearer nope"})
        started.post("/score", json={"data": [[api_key] * 10]}, headers=good)
        started.get("/model", headers=good)
    formatter = JsonFormatter()
    assert len(caplog.records) >= 5
    for record in caplog.records:
        assert api_key not in formatter.format(record)
    assert api_key not in caplog.text
    assert api_key not in repr(settings)


def test_unexpected_error_is_a_json_500(settings: ScoringSettings) -> None:
    def broken(rows: np.ndarray) -> np.ndarray:
        raise RuntimeError("boom")

    fake = LoadedModel("m", "1", "0" * 64, broken, "Broken", False)
    with TestClient(create_app(settings, loader=lambda _: fake)) as started:
        response = started.post("/score", json={"data": [ROW]}, headers=_auth(settings))
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    assert "boom" not in response.text


def _auth(settings: ScoringSettings) -> dict[str, str]:
    return {"Authorization": f"Bearer {settings.api_key.get_secret_value()}"}
