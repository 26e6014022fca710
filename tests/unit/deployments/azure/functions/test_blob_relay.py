"""The Event Grid -> Prefect relay (deployments/azure/functions/blob_relay), without a server:
events from Azure's documented delivery shapes, settings, the webhook's handshakes, and the
package. Posting to a real Prefect server: tests/integration/deployments/azure/functions."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile
from pathlib import Path

import azure.functions as func
import pytest

from core.events import BLOB_CREATED
from tests.utils.relay import (
    FUNCTION_DIR,
    blob_created,
    relay_functions,
    relay_modules,
    sample,
    webhook,
)

relay, function_app = relay_modules()
ROOT = Path(__file__).resolve().parents[5]
ENV = {"PREFECT_API_URL": "http://127.0.0.1:1/api/", "MLOPS_LANDING_CONTAINER": "landing"}


@pytest.mark.parametrize("schema", ["blob_created.eventgrid", "blob_created.cloudevents"])
def test_both_schemas_give_the_watchers_event_with_an_id_derived_from_event_grids(
    schema: str,
) -> None:
    delivery = sample(schema)
    event = relay.to_prefect_event(delivery, "landing")

    assert event is not None and event["event"] == BLOB_CREATED
    assert event["id"] == relay.prefect_event_id("831e1650-001e-001b-66ab-eeb76e069631")
    assert event["resource"]["prefect.resource.id"] == delivery["data"]["url"]
    assert event["resource"]["azure.storage.container"] == "landing"
    assert event["resource"]["azure.storage.account"] == "mlopsdata"
    assert event["payload"]["name"] == "2026/batch.csv" and event["payload"]["eTag"]
    assert event["occurred"] == "2026-12-02T07:00:00.9584103Z"


def test_the_two_schemas_and_a_redelivery_share_one_prefect_event_id() -> None:
    ids = {
        relay.to_prefect_event(sample(name), "landing")["id"]
        for name in ("blob_created.eventgrid", "blob_created.cloudevents", "blob_created.eventgrid")
    }
    assert len(ids) == 1
    other = relay.to_prefect_event(blob_created("another-id", "x.csv"), "landing")
    assert other is not None and other["id"] not in ids


def test_other_containers_and_event_types_are_not_relayed() -> None:
    assert (
        relay.to_prefect_event(blob_created("1", "a.csv", container="curated"), "landing") is None
    )
    deleted = {**sample("blob_created.eventgrid"), "eventType": "Microsoft.Storage.BlobDeleted"}
    assert relay.to_prefect_event(deleted, "landing") is None
    result = relay.relay(
        [deleted, blob_created("2", "a.csv", container="other")], relay.RelayConfig.from_env(ENV)
    )
    assert result.posted == () and len(result.ignored) == 2  # nothing to post: no request made


def test_a_blob_created_event_without_an_id_is_refused() -> None:
    delivery = sample("blob_created.eventgrid")
    del delivery["id"]
    with pytest.raises(ValueError, match="without an id"):
        relay.to_prefect_event(delivery, "landing")


def test_settings_are_named_when_missing_or_ambiguous() -> None:
    with pytest.raises(relay.RelayConfigError, match="PREFECT_API_URL, MLOPS_LANDING_CONTAINER"):
        relay.RelayConfig.from_env({})
    with pytest.raises(relay.RelayConfigError, match="PREFECT_API_KEY .* or PREFECT_API_AUTH"):
        relay.RelayConfig.from_env(
            {**ENV, "PREFECT_API_KEY": "k", "PREFECT_API_AUTH_STRING": "a:b"}
        )
    with pytest.raises(relay.RelayConfigError, match="user:password"):
        relay.RelayConfig.from_env({**ENV, "PREFECT_API_AUTH_STRING": "no-colon"})


def test_credentials_become_the_right_header_and_never_show() -> None:
    cloud = relay.RelayConfig.from_env({**ENV, "PREFECT_API_KEY": "pnu_secret"})
    assert cloud.headers() == {"Authorization": "Bearer pnu_secret"}
    server = relay.RelayConfig.from_env({**ENV, "PREFECT_API_AUTH_STRING": "admin:s3cret"})
    assert server.headers() == {"Authorization": "Basic YWRtaW46czNjcmV0"}
    assert server.api_url == "http://127.0.0.1:1/api"
    assert "secret" not in repr(cloud) and "s3cret" not in repr(server)


def _request(method: str, body: object = None, **headers: str) -> func.HttpRequest:
    data = b"" if body is None else (body if isinstance(body, bytes) else json.dumps(body).encode())
    return func.HttpRequest(method, "http://localhost/api/events", headers=headers, body=data)


def test_the_webhook_answers_event_grids_validation_handshake() -> None:
    response = webhook()(_request("POST", sample("subscription_validation")))
    assert response.status_code == 200
    assert json.loads(response.get_body()) == {
        "validationResponse": "512d38b6-c7b8-40c8-89fe-f46f9e9622b6"
    }


def test_the_webhook_answers_the_cloudevents_abuse_protection_handshake() -> None:
    origin = "eventgrid.azure.net"
    response = webhook()(_request("OPTIONS", **{"WebHook-Request-Origin": origin}))
    assert response.status_code == 200 and response.headers["WebHook-Allowed-Origin"] == origin


def test_the_webhook_refuses_what_it_cannot_read_without_a_retry(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in ENV.items():
        monkeypatch.setenv(key, value)
    assert webhook()(_request("POST", b"not json")).status_code == 400
    assert webhook()(_request("POST", [1, 2])).status_code == 400
    nameless = {**sample("blob_created.eventgrid"), "subject": "/blobServices/default"}
    response = webhook()(_request("POST", [nameless]))
    assert response.status_code == 400 and "names no blob" in response.get_body().decode()


def test_both_triggers_are_declared() -> None:
    names = {name: f.get_trigger().get_binding_name() for name, f in relay_functions().items()}
    assert names == {"blob_created": "eventGridTrigger", "events": "httpTrigger"}


def test_the_functions_requirements_are_the_locks_versions() -> None:
    lock = {
        line.split("==")[0].lower(): line.split("==")[1]
        for line in (ROOT / "constraints.txt").read_text().splitlines()
        if "==" in line
    }
    pins = [
        line.split("==")
        for line in (FUNCTION_DIR / "requirements.txt").read_text().splitlines()
        if line and not line.startswith("#")
    ]
    assert {"azure-functions", "httpx"} <= {name.lower() for name, _ in pins}
    assert all(lock[name.lower()] == version for name, version in pins), pins


def test_the_package_holds_the_function_and_imports_on_its_own(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "deployments/azure/functions/build_package.py"),
            "--out",
            str(tmp_path / "relay.zip"),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    with zipfile.ZipFile(out) as archive:
        names = set(archive.namelist())
        archive.extractall(tmp_path / "app")
    assert names == {
        "function_app.py",
        "relay.py",
        "host.json",
        "requirements.txt",
        "core/__init__.py",
        "core/events.py",
        "core/blob_events.py",
        "core/interfaces.py",
    }
    # Run from the unpacked folder, as the Functions host does: its own core, no project.
    probe = "import core, function_app as f; print(core.__file__, len(f.app.get_functions()))"
    shown = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=tmp_path / "app",
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    assert shown == [str(tmp_path / "app" / "core" / "__init__.py"), "2"]
