"""A fake Azure ML workspace at the HTTP boundary.

The real ``MLClient`` runs with a ``RecordingTransport``: every request it sends is recorded
and answered from canned JSON routes (method + URL regex), so the tests see the SDK's real
traffic. Requests nobody routed fail the test. The SDK moves artifact bytes with its own blob
client, which ignores the injected transport; ``FakeBlobStore`` stands in for that client's
``upload``/``exists``/``download``.

Used by the Azure unit tests (tests/unit/backends/azure/conftest.py: the ``aml`` fixture) and
the Azure profile's whole loop (tests/e2e/test_azure_profile.py).
"""

from __future__ import annotations

import re
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
    Recorded,
    RecordingTransport,
    Reply,
    fake_ml_client,
)

ACCOUNT, CONTAINER = "wsstore", "azureml-blobstore-0001"
# The upload slot the code API hands out for a new code snapshot.
SAS = f"https://{ACCOUNT}.blob.core.windows.net/{CONTAINER}?sv=2024&sig=fake"


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


def fake_workspace(monkeypatch: pytest.MonkeyPatch) -> FakeWorkspace:
    """A real ``MLClient`` on a ``RecordingTransport``, its blob transfers on a
    ``FakeBlobStore``. The caller checks ``transport.unexpected`` when done."""
    from azure.ai.ml._artifacts import _blob_storage_helper

    transport = RecordingTransport()
    blobs = FakeBlobStore()
    helper = _blob_storage_helper.BlobStorageClient
    monkeypatch.setattr(helper, "upload", lambda self, *a, **k: blobs.upload(self, *a, **k))
    monkeypatch.setattr(helper, "exists", lambda self, *a, **k: blobs.exists(self, *a, **k))
    monkeypatch.setattr(helper, "download", lambda self, *a, **k: blobs.download(self, *a, **k))
    client = fake_ml_client(transport)
    return FakeWorkspace(client=client, transport=transport, blobs=blobs)


def serve_submit(aml: Any) -> None:
    """Routes for a submit with new code: code lookup, upload slot, code PUT, env, job PUT."""
    t = aml.transport
    t.route("GET", r"/codes/[^/]+/versions\?", {"value": []})
    pending = {
        "blobReferenceForConsumption": {
            "blobUri": SAS.split("?")[0],
            "credential": {"credentialType": "SAS", "sasUri": SAS},
        },
        "pendingUploadType": "TemporaryBlobReference",
    }
    t.route("POST", r"/codes/[^/]+/versions/1/startPendingUpload\?", pending)

    def put_code(request: Any) -> dict[str, Any]:
        found = re.search(r"/codes/([^/]+)/versions/([^/?]+)", request.url)
        assert found is not None
        name, version = found.groups()
        code_id = f"{aml.arm}/codes/{name}/versions/{version}"
        return {"id": code_id, "name": version, "properties": request.json()["properties"]}

    t.route("PUT", r"/codes/[^/]+/versions/1\?", put_code)
    env = f"{aml.arm}/environments/diabetes-train-env/versions/7"
    env_version = {"id": env, "name": "7", "properties": {"image": "mcr.microsoft.com/x:1"}}
    t.route("GET", r"/environments/diabetes-train-env/versions\?", {"value": [env_version]})

    def put_job(request: Any) -> dict[str, Any]:
        name = request.url.split("/jobs/")[1].split("?")[0]
        body = request.json()
        body["properties"]["status"] = "NotStarted"
        return {"id": f"{aml.arm}/jobs/{name}", "name": name, **body}

    t.route("PUT", r"/jobs/[^/?]+\?", put_job)


def fake_download(
    monkeypatch: pytest.MonkeyPatch, aml: Any, files: dict[str, str] | Exception
) -> list[dict[str, Any]]:
    """Replace ``jobs.download`` (its blob transfer bypasses the transport) by a writer."""
    calls: list[dict[str, Any]] = []

    def download(name: str, *, download_path: str, output_name: str | None = None) -> None:
        calls.append({"name": name, "download_path": download_path, "output_name": output_name})
        if isinstance(files, Exception):
            raise files
        for rel, text in files.items():
            (Path(download_path) / rel).parent.mkdir(parents=True, exist_ok=True)
            (Path(download_path) / rel).write_text(text)

    monkeypatch.setattr(aml.client.jobs, "download", download)
    return calls
