"""The Event Grid relay posting to a real Prefect server: a burst of BlobCreated deliveries
(both schemas, with redeliveries and another container's events) starts the retraining
deployment's trigger (the one in prefect.yaml) once, redeliveries store nothing new, and a
server with an auth string takes the relay's events only with the credential."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, cast

import httpx
import pytest
from prefect.client.orchestration import get_client
from prefect.deployments.runner import RunnerDeployment
from prefect.events import DeploymentEventTrigger
from prefect.events.filters import EventFilter, EventNameFilter, EventResourceFilter
from prefect.events.schemas.events import ResourceSpecification

from core.events import BLOB_CREATED
from flows.retraining import retraining
from tests.utils.prefect_api import ApiOnlyServer
from tests.utils.relay import blob_created, deployment_trigger, relay_modules, runs_of, webhook

pytestmark = pytest.mark.integration
relay, function_app = relay_modules()


def stored_events(landing: str) -> list[Any]:
    with get_client(sync_client=True) as client:
        page = client.read_events(
            EventFilter(
                event=EventNameFilter(name=[BLOB_CREATED]),
                resource=EventResourceFilter(
                    labels=ResourceSpecification({"azure.storage.container": [landing]})
                ),
            ),
            limit=50,
        )
    return list(page.events)


def wait_for(condition: Any, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.5)


def test_a_burst_starts_one_retraining_and_redeliveries_store_nothing_new(
    prefect_server: str,
) -> None:
    landing = f"landing-{uuid.uuid4().hex[:8]}"
    deployment = cast(
        RunnerDeployment,
        retraining.to_deployment(
            name=f"relay-{landing}",
            triggers=[
                DeploymentEventTrigger(
                    **deployment_trigger("retraining", {"azure.storage.container": landing})
                )
            ],
        ),
    )
    deployment_id = cast(uuid.UUID, deployment.apply())
    config = relay.RelayConfig(api_url=prefect_server, landing_container=landing)
    burst = [
        blob_created(f"eg-{i}", f"2026/part-{i}.csv", container=landing, cloud_events=i % 2 == 1)
        for i in range(5)
    ]
    elsewhere = blob_created("eg-other", "x.csv", container="curated")

    result = relay.relay([*burst, burst[0], elsewhere], config)  # one redelivered already
    assert len(result.posted) == 6 and result.ignored == ("eg-other",)

    wait_for(lambda: len(stored_events(landing)) == 5)
    wait_for(lambda: len(runs_of(deployment_id)) >= 1)
    (run,) = runs_of(deployment_id)
    assert run.parameters["drain_landing"] is True
    assert run.parameters["data_uri"].startswith("https://mlopsdata.blob.core.windows.net/")

    relay.relay(burst, config)  # Event Grid delivers the whole burst again
    time.sleep(3)  # what a duplicate would have stored or started by now
    events = stored_events(landing)
    assert sorted(e.payload["eventGridId"] for e in events) == [f"eg-{i}" for i in range(5)]
    assert len({e.id for e in events}) == 5
    assert len(runs_of(deployment_id)) == 1


@pytest.fixture(scope="module")
def guarded_api(cache_dir: Path) -> Iterator[str]:
    server = ApiOnlyServer(cache_dir, {"PREFECT_SERVER_API_AUTH_STRING": "relay:s3cret"})
    try:
        yield server.url()
    finally:
        server.stop()


def test_a_server_with_an_auth_string_takes_the_events_only_with_it(
    guarded_api: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    delivery = blob_created("eg-auth", "2026/a.csv")
    anonymous = relay.RelayConfig(api_url=guarded_api, landing_container="landing")
    with pytest.raises(httpx.HTTPStatusError, match="401"):
        relay.relay([delivery], anonymous)

    # Through the Function's webhook, as Event Grid calls it: 502 tells it to deliver again.
    monkeypatch.setenv("PREFECT_API_URL", guarded_api)
    monkeypatch.setenv("MLOPS_LANDING_CONTAINER", "landing")
    request = function_app.func.HttpRequest(
        "POST", "http://localhost/api/events", headers={}, body=json.dumps([delivery]).encode()
    )
    assert webhook()(request).status_code == 502

    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "relay:s3cret")
    response = webhook()(request)
    assert response.status_code == 200, response.get_body()
    # (This API-only server runs no event persister: accepting the batch is what it can show.)
    assert json.loads(response.get_body()) == {"posted": 1, "ignored": 0}
