"""Every bad input gets the right status and a JSON error naming the problem; never a 500."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import httpx
import pytest
from starlette.testclient import TestClient

from scoring.app import create_app
from scoring.settings import ScoringSettings

ROW = [0.038, 0.051, 0.062, 0.022, -0.044, -0.035, -0.043, -0.003, 0.020, -0.018]
JSON = {"Content-Type": "application/json"}


def post_raw(client: TestClient, body: bytes | str, **headers: str) -> httpx.Response:
    """POST a raw body to /score, with a JSON content type unless overridden."""
    return client.post("/score", content=body, headers={**JSON, **headers})


def assert_error(response: httpx.Response, status: int, code: str, *fragments: str) -> None:
    """The response is a JSON error with this status and code, naming every fragment."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/json"
    error = response.json()["error"]
    assert error["code"] == code
    for fragment in fragments:
        assert fragment in error["message"], error["message"]


@pytest.mark.parametrize(
    ("body", "status", "code", "fragments"),
    [
        ('{"data": [[1,2,3]]', 400, "invalid_json", ["not valid JSON"]),
        ("", 400, "invalid_json", ["empty"]),
        ("not json", 400, "invalid_json", []),
        ('{"data": [[NaN,1,1,1,1,1,1,1,1,1]]}', 422, "non_finite_value", ["NaN and Infinity"]),
        ('{"data": [[Infinity,1,1,1,1,1,1,1,1,1]]}', 422, "non_finite_value", ["finite"]),
        ('{"data": [[-Infinity,1,1,1,1,1,1,1,1,1]]}', 422, "non_finite_value", ["finite"]),
        ('{"data": [[1e999,1,1,1,1,1,1,1,1,1]]}', 422, "non_finite_value", ["finite"]),
        ("[[1,2,3,4,5,6,7,8,9,10]]", 422, "invalid_body", ["JSON object", "a list"]),
        ('{"rows": [[1,2,3,4,5,6,7,8,9,10]]}', 422, "missing_data", ['no "data" key']),
        ('{"data": "1,2,3"}', 422, "invalid_data", ["list of rows", "a string"]),
        ('{"data": {"age": 1}}', 422, "invalid_data", ["an object"]),
        ('{"data": null}', 422, "invalid_data", ["null"]),
        ('{"data": []}', 422, "empty_data", ["at least one row"]),
        ('{"data": [1,2,3,4,5,6,7,8,9,10]}', 422, "invalid_row", ["row 0", "wrap a single row"]),
        ('{"data": [{"age": 1}]}', 422, "invalid_row", ["row 0 is an object"]),
    ],
)
def test_malformed_bodies(
    client: TestClient, body: str, status: int, code: str, fragments: list[str]
) -> None:
    assert_error(post_raw(client, body), status, code, *fragments)


def test_wrong_row_width_names_row_and_features(client: TestClient) -> None:
    response = client.post("/score", json={"data": [ROW, ROW, ROW, ROW[:9]]})
    assert_error(
        response,
        422,
        "wrong_row_width",
        "row 3 has 9 values, expected 10 (age, sex, bmi, bp, s1, s2, s3, s4, s5, s6)",
    )
    assert_error(client.post("/score", json={"data": [ROW + [1.0]]}), 422, "wrong_row_width")


@pytest.mark.parametrize(
    ("value", "shown"),
    [("1.5", 'a string ("1.5")'), (True, "a boolean (true)"), (None, "null"), ([1], "a list")],
)
def test_non_numeric_values_are_refused(client: TestClient, value: object, shown: str) -> None:
    row: list[object] = list(ROW)
    row[2] = value
    response = client.post("/score", json={"data": [ROW, row]})
    assert_error(response, 422, "invalid_value", f"row 1 column 2 (bmi) is {shown}")


def test_too_many_rows(client: TestClient) -> None:
    response = client.post("/score", json={"data": [ROW] * 1001})
    assert_error(response, 413, "too_many_rows", "1001 rows, at most 1000")


def test_max_rows_is_accepted(client: TestClient) -> None:
    response = client.post("/score", json={"data": [ROW] * 1000})
    assert response.status_code == 200
    assert len(response.json()["predictions"]) == 1000


def test_values_beyond_the_documented_bound_are_refused(client: TestClient) -> None:
    huge = [*ROW[:4], -1.7e308, *ROW[5:]]
    assert_error(
        client.post("/score", json={"data": [ROW, huge]}),
        422,
        "value_out_of_range",
        "row 1 column 4 (s1)",
        "outside [-1e+09, 1e+09]",
    )
    assert client.post("/score", json={"data": [[1e9] * 10, [-1e9] * 10]}).status_code == 200


def test_unknown_fields_are_refused(client: TestClient) -> None:
    response = client.post("/score", json={"data": [ROW], "method": "predict_proba"})
    assert_error(response, 422, "unknown_field", '"method"', 'send only "data"')


def test_overflowing_prediction_is_refused(
    make_settings: Callable[..., ScoringSettings], api_key: str
) -> None:
    # Only reachable when the value bound is raised past what the model can multiply.
    settings = make_settings(max_abs_value=1.7976931348623157e308)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {api_key}"}) as big:
        response = big.post("/score", json={"data": [ROW, [1.7e308] * 10]})
    assert_error(response, 422, "non_finite_prediction", "row 1")


@pytest.mark.parametrize(
    "content_type", [None, "text/plain", "application/x-www-form-urlencoded", "application/xml"]
)
def test_wrong_content_type(client: TestClient, content_type: str | None) -> None:
    headers = {} if content_type is None else {"Content-Type": content_type}
    response = client.post("/score", content=b'{"data": [[1,2,3,4,5,6,7,8,9,10]]}', headers=headers)
    assert_error(response, 415, "unsupported_media_type", "application/json")


def test_json_with_charset_is_accepted(client: TestClient) -> None:
    response = post_raw(
        client,
        '{"data": [[1,2,3,4,5,6,7,8,9,10]]}',
        **{"Content-Type": "application/json; charset=utf-8"},
    )
    assert response.status_code == 200


def test_body_over_limit_by_content_length(client: TestClient) -> None:
    body = b'{"data": [' + b",".join([b"[1,2,3,4,5,6,7,8,9,10]"] * 50_000) + b"]}"
    assert len(body) > 1_000_000
    assert_error(post_raw(client, body), 413, "body_too_large", "1000000 bytes")


def test_body_over_limit_while_streaming(client: TestClient) -> None:
    # No Content-Length (chunked): the limit is enforced while reading.
    def chunks() -> Iterator[bytes]:
        yield b'{"data": ['
        for _ in range(60):
            yield b"[1,2,3,4,5,6,7,8,9,10]," * 1000
        yield b"[1,2,3,4,5,6,7,8,9,10]]}"

    response = client.post("/score", content=chunks(), headers=JSON)
    assert_error(response, 413, "body_too_large")


@pytest.mark.parametrize("length", [b"abc", b"-1", b"\xb2", b"1e3"])
def test_malformed_content_length(client: TestClient, length: bytes) -> None:
    response = client.post(
        "/score", content=b'{"data": [[1]]}', headers={**JSON, "Content-Length": length}
    )
    assert_error(response, 400, "invalid_content_length")


def test_small_limits_from_settings(
    make_settings: Callable[..., ScoringSettings], api_key: str
) -> None:
    settings = make_settings(max_rows=2, max_body_bytes=300)
    with TestClient(create_app(settings), headers={"Authorization": f"Bearer {api_key}"}) as small:
        assert_error(small.post("/score", json={"data": [ROW] * 3}), 413, "too_many_rows")
        assert small.post("/score", json={"data": [ROW] * 2}).status_code == 200
        big = {"data": [[123456.789012345] * 10] * 2}
        assert_error(small.post("/score", json=big), 413, "body_too_large")


def test_unknown_route_and_method(client: TestClient) -> None:
    assert_error(client.get("/nope"), 404, "not_found", "/nope")
    assert_error(client.post("/score/"), 404, "not_found")
    response = client.get("/score")
    assert_error(response, 405, "method_not_allowed", "use POST")
    assert response.headers["allow"] == "POST"
    assert_error(client.delete("/model"), 405, "method_not_allowed")
    assert_error(client.put("/"), 405, "method_not_allowed")


def test_integers_are_accepted(client: TestClient) -> None:
    # The body Azure ML's MLOpsPython smoke test sends: integers, two rows.
    response = client.post(
        "/score", json={"data": [[1, 2, 3, 4, 5, 6, 7, 8, 9, 10], [10, 9, 8, 7, 6, 5, 4, 3, 2, 1]]}
    )
    assert response.status_code == 200
    assert len(response.json()["result"]) == 2
