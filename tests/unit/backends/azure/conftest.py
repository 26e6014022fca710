"""A fake Azure ML workspace at the HTTP boundary.

The real ``MLClient`` runs with a ``RecordingTransport``: every request it sends is recorded
and answered from canned JSON routes (method + URL regex), so the tests see the SDK's real
traffic. Requests nobody routed fail the test. The SDK moves artifact bytes with its own blob
client, which ignores the injected transport; ``FakeBlobStore`` stands in for that client's
``upload``/``exists``/``download``. Sockets are blocked, so nothing reaches a network.
"""

from __future__ import annotations

import re
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import pytest
from azure.ai.ml import MLClient

from tests.utils.azure_http import (
    ARM,
    RG,
    SUB,
    WS,
    FakeCredential,
    Recorded,
    RecordingTransport,
    Reply,
)

ACCOUNT, CONTAINER = "wsstore", "azureml-blobstore-0001"


class FakeBlobStore:
    """The blobs behind the SDK's ``BlobStorageClient`` (which bypasses the transport)."""

    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}  # "<account>/<container>/<blob name>" -> bytes
        self.uploads: list[dict[str, Any]] = []

    def upload(self, client: Any, source: str, name: str, version: str, **kwargs: Any) -> Any:
        dest = str(PurePosixPath("LocalUpload", str(kwargs.get("asset_hash")), Path(source).name))
        files = sorted(p for p in Path(source).rglob("*") if p.is_file())
        rel = [p.relative_to(source).as_posix() for p in files]
        for path, name_in_dir in zip(files, rel, strict=True):
            key = f"{client.account_name}/{client.container}/{dest}/{name_in_dir}"
            self.blobs[key] = path.read_bytes()
        self.uploads.append(
            {"source": source, "account": client.account_name, "container": client.container}
            | {"dest": dest, "files": rel, "name": name, "version": version}
        )
        return {"remote path": dest, "name": name, "version": version, "indicator file": None}

    def exists(self, client: Any, blobpath: str, delimiter: str = "/") -> bool:
        prefix = f"{client.account_name}/{client.container}/{blobpath}"
        return any(key.startswith(prefix) for key in self.blobs)

    def download(self, client: Any, starts_with: str, destination: Any, **kwargs: Any) -> None:
        prefix = f"{client.account_name}/{client.container}/{starts_with}"
        for key, data in self.blobs.items():
            if key.startswith(prefix):
                target = Path(destination, key[len(prefix) :].lstrip("/"))
                target.parent.mkdir(parents=True, exist_ok=True)
                target.write_bytes(data)


def job_json(name: str, status: str, **properties: Any) -> dict[str, Any]:
    """A command job as the jobs API returns it."""
    return {
        "id": f"{ARM}/jobs/{name}",
        "name": name,
        "type": "Microsoft.MachineLearningServices/workspaces/jobs",
        "properties": {
            "jobType": "Command",
            "status": status,
            "command": "python -m training.train",
            "environmentId": f"{ARM}/environments/diabetes-train-env/versions/3",
            "computeId": f"{ARM}/computes/cpu-cluster",
            "experimentName": "diabetes",
            "services": {
                "Studio": {
                    "jobServiceType": "Studio",
                    "endpoint": f"https://ml.azure.com/runs/{name}",
                }
            },
            **properties,
        },
    }


def model_json(name: str, version: str, tags: dict[str, str], path: str = "") -> dict[str, Any]:
    """A model version as the models API returns it."""
    uri = path or (
        f"azureml://subscriptions/{SUB}/resourcegroups/{RG}/workspaces/{WS}/datastores/"
        f"workspaceblobstore/paths/LocalUpload/abc{version}/outputs"
    )
    return {
        "id": f"{ARM}/models/{name}/versions/{version}",
        "name": version,
        "type": "Microsoft.MachineLearningServices/workspaces/models/versions",
        "properties": {
            "modelType": "custom_model",
            "modelUri": uri,
            "tags": tags,
            "properties": {},
            "flavors": {},
            "isArchived": False,
        },
        "systemData": {"createdAt": f"2026-11-0{version[-1]}T10:00:00Z", "createdBy": "ci"},
    }


@dataclass
class FakeWorkspace:
    """The client under test plus what stands behind it."""

    client: MLClient
    transport: RecordingTransport
    blobs: FakeBlobStore
    arm = ARM
    Reply = Reply
    job_json = staticmethod(job_json)
    model_json = staticmethod(model_json)

    def serve_models(self, name: str, versions: dict[str, dict[str, str]]) -> FakeModels:
        """A stateful model registry for ``name`` holding ``versions`` (version -> tags)."""
        models = FakeModels(name, {v: model_json(name, v, tags) for v, tags in versions.items()})
        models.attach(self.transport)
        return models

    def serve_datastore(self) -> None:
        """Route the default blob datastore and its key (what uploads and downloads ask)."""
        store = {
            "id": f"{ARM}/datastores/workspaceblobstore",
            "name": "workspaceblobstore",
            "type": "Microsoft.MachineLearningServices/workspaces/datastores",
            "properties": {
                "datastoreType": "AzureBlob",
                "accountName": ACCOUNT,
                "containerName": CONTAINER,
                "endpoint": "core.windows.net",
                "protocol": "https",
                "credentials": {"credentialsType": "AccountKey"},
                "isDefault": True,
            },
        }
        self.transport.route("GET", r"/datastores/workspaceblobstore\?", store)
        secrets = {"secretsType": "AccountKey", "key": "ZmFrZS1rZXk="}
        self.transport.route("POST", r"/datastores/workspaceblobstore/listSecrets\?", secrets)


class FakeModels:
    """The models API for one model name, keeping the versions it was sent."""

    def __init__(self, name: str, versions: dict[str, dict[str, Any]]) -> None:
        self.name = name
        self.versions = versions

    def tags(self, version: str) -> dict[str, str]:
        return dict(self.versions[version]["properties"]["tags"])

    def attach(self, transport: RecordingTransport) -> None:
        base = rf"/workspaces/{WS}/models/{re.escape(self.name)}"
        transport.route("GET", base + r"\?", self._container)
        transport.route("GET", base + r"/versions\?", self._list)
        transport.route("GET", base + r"/versions/[^/?]+\?", self._get)
        transport.route("PUT", base + r"/versions/[^/?]+\?", self._put)

    def _ordered(self) -> list[str]:
        return sorted(self.versions, key=int)

    def _container(self, request: Recorded) -> Reply:
        if not self.versions:
            return Reply(404, {"error": {"code": "UserError", "message": "model not found"}})
        latest = self._ordered()[-1]
        props = {"latestVersion": latest, "nextVersion": str(int(latest) + 1)}
        container = {"id": f"{ARM}/models/{self.name}", "name": self.name, "properties": props}
        return Reply(body=container)

    def _list(self, request: Recorded) -> Reply:
        ordered = self._ordered()
        if "top=1" in request.url:  # the SDK's "latest version" lookup
            ordered = ordered[-1:]
        return Reply(body={"value": [self.versions[v] for v in reversed(ordered)]})

    def _get(self, request: Recorded) -> Reply:
        version = re.search(r"/versions/([^/?]+)", request.url)[1]  # type: ignore[index]
        if version not in self.versions:
            return Reply(404, {"error": {"code": "UserError", "message": "version not found"}})
        return Reply(body=self.versions[version])

    def _put(self, request: Recorded) -> Reply:
        version = re.search(r"/versions/([^/?]+)", request.url)[1]  # type: ignore[index]
        props = request.json()["properties"]
        stored = model_json(self.name, version, props.get("tags") or {}, props["modelUri"])
        self.versions[version] = stored
        return Reply(200, stored)


@pytest.fixture(autouse=True)
def no_network(monkeypatch: pytest.MonkeyPatch) -> None:
    """Any connection attempt (a client that bypassed the transport) fails the test."""

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError(f"network access attempted: {args[1:] or kwargs}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)


@pytest.fixture
def aml(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeWorkspace]:
    """A real ``MLClient`` on a ``RecordingTransport`` and a ``FakeBlobStore``."""
    from azure.ai.ml._artifacts import _blob_storage_helper

    transport = RecordingTransport()
    blobs = FakeBlobStore()
    helper = _blob_storage_helper.BlobStorageClient
    monkeypatch.setattr(helper, "upload", lambda self, *a, **k: blobs.upload(self, *a, **k))
    monkeypatch.setattr(helper, "exists", lambda self, *a, **k: blobs.exists(self, *a, **k))
    monkeypatch.setattr(helper, "download", lambda self, *a, **k: blobs.download(self, *a, **k))
    # No progress bars or telemetry, as workspace_client builds it.
    client = MLClient(
        FakeCredential(),
        SUB,
        RG,
        WS,
        transport=transport,
        show_progress=False,
        enable_telemetry=False,
    )
    yield FakeWorkspace(client=client, transport=transport, blobs=blobs)
    assert not transport.unexpected, f"unrouted requests: {transport.unexpected}"


@pytest.fixture
def transport() -> Iterator[RecordingTransport]:
    """A bare recording transport, for management clients other than ``MLClient``."""
    recording = RecordingTransport()
    yield recording
    assert not recording.unexpected, f"unrouted requests: {recording.unexpected}"


@pytest.fixture
def credential() -> FakeCredential:
    return FakeCredential()
