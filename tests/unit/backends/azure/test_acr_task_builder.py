"""The ACR Tasks builder at the HTTP boundary: the real azure-mgmt-containerregistry client and
azure-storage-blob on a recording transport, answered in the shapes of the REST specification's
examples (containerregistry, RegistriesGetBuildSourceUploadUrl / RegistriesScheduleRun / RunsGet
/ RunsGetLogSasUrl)."""

from __future__ import annotations

import io
import json
import tarfile
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest

from backends.azure.acr_task import API_VERSION, AcrTaskImageBuilder, management_client
from backends.local.docker_image import DockerImageBuilder, ImageBuildError
from backends.local.wheelhouse import (
    LOCK_FILE,
    Wheelhouse,
    environment_constraints,
    requirements_for,
    wheelhouse_key,
)
from core.interfaces import BackendError, ImageBuilder
from tests.utils.azure_http import RG, SUB, FakeCredential, Recorded, RecordingTransport
from training.artifacts import MODEL_FILE, sha256_file

SERVER = "myacr.azurecr.io"
PROVIDER = "providers/Microsoft.ContainerRegistry"
REGISTRY = f"/subscriptions/{SUB}/resourceGroups/{RG}/{PROVIDER}/registries/myacr"
RUN_ID = "ca1"
DIGEST = "sha256:" + "ab" * 32
RELATIVE = "source/202612020000/b52f12d8-c3d6-4d75-9107-220f0bfc681d.tar.gz"
STORAGE = "https://registrystorage.blob.core.windows.net/registrycontainer"
SAS = "sv=2024-08-04&se=2026-12-02T13%3A00%3A00Z&sr=b&sp=rw&sig=c2lnbmF0dXJl"
UPLOAD_URL = f"{STORAGE}/{RELATIVE}?{SAS}"
LOG_URL = f"{STORAGE}/logs/{RUN_ID}/rawtext.log?{SAS}"
IMAGE = "mlops/diabetes-ridge:3-0123456789ab"
MODIFIED = "Wed, 02 Dec 2026 12:00:00 GMT"


class TinyWheels(DockerImageBuilder):
    """The context builder with a one-line wheelhouse instead of a pip download."""

    def wheelhouse(self, artifact_dir: Path) -> Wheelhouse:
        wheels = Wheelhouse(self.cache_dir / "wheels", ("numpy",), ("numpy==2.0.0",))
        wheels.path.mkdir(parents=True, exist_ok=True)
        (wheels.path / LOCK_FILE).write_text(wheels.lock_text)
        (wheels.path / "numpy-2.0.0-cp311-none-any.whl").write_bytes(b"wheel")
        return wheels


def _run(status: str, **more: Any) -> dict[str, Any]:
    return {
        "id": f"{REGISTRY}/runs/{RUN_ID}",
        "name": RUN_ID,
        "type": "Microsoft.ContainerRegistry/registries/runs",
        "properties": {"runId": RUN_ID, "status": status, "provisioningState": "Succeeded", **more},
    }


@pytest.fixture
def transport() -> Any:
    recording = RecordingTransport()
    yield recording
    assert not recording.unexpected, f"unrouted requests: {recording.unexpected}"


@pytest.fixture
def model(tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / MODEL_FILE).write_bytes(b"pickled model")
    (folder / "run.json").write_text("{}")
    return folder


def _builder(transport: RecordingTransport, tmp_path: Path, **kwargs: Any) -> AcrTaskImageBuilder:
    return AcrTaskImageBuilder(
        TinyWheels("unix:///nonexistent/docker.sock", tmp_path / "cache"),
        management_client(FakeCredential(), SUB, transport=transport),
        RG,
        SERVER,
        blob_transport=transport,
        sleep=lambda seconds: None,
        **kwargs,
    )


def _route_registry(transport: RecordingTransport, final: dict[str, Any]) -> None:
    transport.route(
        "POST",
        f"{REGISTRY}/listBuildSourceUploadUrl",
        {"relativePath": RELATIVE, "uploadUrl": UPLOAD_URL},
    )
    transport.route(
        "PUT",
        f"^{STORAGE}/{RELATIVE}",
        transport.Reply(201, headers={"ETag": '"0x1"', "Last-Modified": MODIFIED}),
    )
    transport.route("POST", f"{REGISTRY}/scheduleRun", _run("Queued"))
    polls = iter([_run("Running"), final])
    transport.route("GET", f"{REGISTRY}/runs/{RUN_ID}\\?", lambda request: next(polls))


def _uploaded_tar(transport: RecordingTransport) -> tarfile.TarFile:
    [upload] = transport.sent("PUT", f"^{STORAGE}/")
    assert upload.headers["x-ms-blob-type"] == "BlockBlob"
    return tarfile.open(fileobj=io.BytesIO(upload.body), mode="r:gz")


def test_a_build_uploads_the_context_runs_it_in_acr_and_returns_the_pushed_digest(
    transport: RecordingTransport, tmp_path: Path, model: Path
) -> None:
    repository, tag = IMAGE.split(":")
    pushed = [{"registry": SERVER, "repository": repository, "tag": tag, "digest": DIGEST}]
    _route_registry(transport, _run("Succeeded", outputImages=pushed))
    builder = _builder(transport, tmp_path, base_image="mcr.microsoft.com/python:3.11")

    reference = builder.build("diabetes-ridge", "3", model, "0123456789abcdef")

    assert isinstance(builder, ImageBuilder)
    assert reference == f"{SERVER}/mlops/diabetes-ridge@{DIGEST}"
    # The order of the calls, and the api-version of every management call.
    sequence = [(r.method, r.url.split("?")[0].rsplit("/", 1)[-1]) for r in transport.requests]
    assert sequence == [
        ("POST", "listBuildSourceUploadUrl"),
        ("PUT", RELATIVE.rsplit("/", 1)[-1]),
        ("POST", "scheduleRun"),
        ("GET", RUN_ID),
        ("GET", RUN_ID),
    ]
    management = [r for r in transport.requests if "management.azure.com" in r.url]
    assert management and all(f"api-version={API_VERSION}" in r.url for r in management)
    assert API_VERSION == "2025-03-01-preview"
    # The context went to the SAS URL as it was given, and holds what a local build uses.
    [upload] = transport.sent("PUT", f"^{STORAGE}/")
    assert upload.url.startswith(UPLOAD_URL.split("?")[0]) and "sig=c2lnbmF0dXJl" in upload.url
    names = set(_uploaded_tar(transport).getnames())
    assert {"Dockerfile", "requirements.txt", f"model/{MODEL_FILE}", "app/scoring"} <= names
    assert "wheels/numpy-2.0.0-cp311-none-any.whl" in names
    tar = _uploaded_tar(transport)
    model_file = tar.extractfile(f"model/{MODEL_FILE}")
    assert model_file is not None and model_file.read() == b"pickled model"
    # The run request, in the shape of RegistriesScheduleRun.json.
    [scheduled] = transport.sent("POST", "scheduleRun")
    body = scheduled.json()
    assert body["type"] == "DockerBuildRequest"
    assert body["imageNames"] == [IMAGE]
    assert body["isPushEnabled"] is True
    assert body["sourceLocation"] == RELATIVE  # the relative path, never the SAS URL
    assert body["platform"] == {"os": "Linux", "architecture": "amd64"}
    assert body["dockerFilePath"] == "Dockerfile"
    arguments = {a["name"]: a["value"] for a in body["arguments"]}
    assert arguments == {
        "MODEL_NAME": "diabetes-ridge",
        "MODEL_VERSION": "3",
        "MODEL_SHA256": sha256_file(model / MODEL_FILE),
        "CODE_VERSION": "0123456789abcdef",
        "BASE_IMAGE": "mcr.microsoft.com/python:3.11",
    }


def test_a_failed_run_raises_with_the_tail_of_its_log(
    transport: RecordingTransport, tmp_path: Path, model: Path
) -> None:
    failed = _run("Failed", runErrorMessage="failed during run, err: exit status 1")
    _route_registry(transport, failed)
    transport.route("POST", f"{REGISTRY}/runs/{RUN_ID}/listLogSasUrl", {"logLink": LOG_URL})
    log = "".join(f"step {i}\n" for i in range(100)) + "ERROR: No matching distribution for numpy\n"

    def download(request: Recorded) -> Any:
        data = log.encode()  # a ranged GET, answered as Blob Storage does: 206 + Content-Range
        assert request.headers["x-ms-range"].startswith("bytes=0-")
        headers = {"ETag": '"0x2"', "Content-Range": f"bytes 0-{len(data) - 1}/{len(data)}"}
        return transport.Reply(206, data, headers)

    transport.route("GET", f"^{STORAGE}/logs/{RUN_ID}/rawtext.log", download)

    with pytest.raises(ImageBuildError) as caught:
        _builder(transport, tmp_path).build("diabetes-ridge", "3", model, "0123456789abcdef")

    message = str(caught.value)
    assert isinstance(caught.value, BackendError)
    assert f"ACR run {RUN_ID} ended Failed" in message and "exit status 1" in message
    assert message.endswith("ERROR: No matching distribution for numpy")
    assert "step 99" in message and "step 10\n" not in message  # the tail, not the whole log
    assert "sig=" not in message  # the SAS URLs stay out of messages
    [log_link] = transport.sent("POST", "listLogSasUrl")
    assert f"api-version={API_VERSION}" in log_link.url


def test_a_run_without_the_digest_is_an_error(
    transport: RecordingTransport, tmp_path: Path, model: Path
) -> None:
    other = [{"registry": SERVER, "repository": "mlops/other", "tag": "1", "digest": DIGEST}]
    _route_registry(transport, _run("Succeeded", outputImages=other))

    with pytest.raises(ImageBuildError, match="reports no digest for mlops/diabetes-ridge"):
        _builder(transport, tmp_path).build("diabetes-ridge", "3", model, "0123456789abcdef")


def test_a_refused_schedule_is_a_build_error_naming_the_registry(
    transport: RecordingTransport, tmp_path: Path, model: Path
) -> None:
    _route_registry(transport, _run("Succeeded"))
    forbidden = {"error": {"code": "AuthorizationFailed", "message": "no scheduleRun/action"}}
    transport.route("POST", f"{REGISTRY}/scheduleRun", transport.Reply(403, forbidden))

    with pytest.raises(ImageBuildError, match="ACR myacr cannot build .*AuthorizationFailed"):
        _builder(transport, tmp_path).build("diabetes-ridge", "3", model, "0123456789abcdef")
    assert not transport.sent("GET", "/runs/")


def test_a_folder_without_a_model_fails_before_any_call(
    transport: RecordingTransport, tmp_path: Path
) -> None:
    with pytest.raises(ImageBuildError, match="missing"):
        _builder(transport, tmp_path).build("m", "1", tmp_path, "abc")
    assert transport.requests == []


def _seed_wheelhouse(cache: Path, run: dict[str, Any], *, telemetry: bool) -> None:
    """Put in the cache the wheelhouse the real builder would download (empty wheels, no pip)."""
    wanted = sorted(requirements_for(run, telemetry=telemetry))
    folder = cache / "wheelhouse" / wheelhouse_key(wanted, environment_constraints(wanted))
    folder.mkdir(parents=True)
    for pin in wanted:
        name, _, version = pin.partition("==")
        (folder / f"{name.replace('-', '_')}-{version}-py3-none-any.whl").write_bytes(b"")
    (folder / LOCK_FILE).write_text("".join(f"{pin}\n" for pin in wanted))


@pytest.mark.parametrize("telemetry", [True, False])
def test_the_context_names_the_exporter_only_when_telemetry_is_on(
    transport: RecordingTransport, tmp_path: Path, model: Path, telemetry: bool
) -> None:
    run = {"versions": {"scikit-learn": metadata.version("scikit-learn")}}
    (model / "run.json").write_text(json.dumps(run))
    _seed_wheelhouse(tmp_path / "cache", run, telemetry=telemetry)
    repository = "mlops/diabetes-ridge"
    tag = "3-0123456789ab" + ("-otel" if telemetry else "")
    pushed = [{"registry": SERVER, "repository": repository, "tag": tag, "digest": DIGEST}]
    _route_registry(transport, _run("Succeeded", outputImages=pushed))
    builder = AcrTaskImageBuilder(
        DockerImageBuilder("", tmp_path / "cache", telemetry=telemetry),  # the real wheelhouse
        management_client(FakeCredential(), SUB, transport=transport),
        RG,
        SERVER,
        blob_transport=transport,
        sleep=lambda seconds: None,
    )

    assert builder.build("diabetes-ridge", "3", model, "0123456789abcdef").endswith(DIGEST)

    requirements = _uploaded_tar(transport).extractfile("requirements.txt")
    assert requirements is not None
    lines = requirements.read().decode().splitlines()
    exporter = f"azure-monitor-opentelemetry=={metadata.version('azure-monitor-opentelemetry')}"
    assert (exporter in lines) is telemetry
    assert f"scikit-learn=={metadata.version('scikit-learn')}" in lines
    [scheduled] = transport.sent("POST", "scheduleRun")
    assert scheduled.json()["imageNames"] == [f"{repository}:{tag}"]  # never the plain tag
