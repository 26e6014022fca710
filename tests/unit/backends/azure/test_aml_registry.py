"""AmlModelRegistry against a fake workspace: the model PUTs the real SDK sends."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import pytest

from backends.azure.registry import AmlModelRegistry
from core.interfaces import BackendError, IntegrityError, ModelRegistry, NotFoundError

NAME = "diabetes-ridge"
MODEL_BYTES = b"ridge model bytes"
SHA = hashlib.sha256(MODEL_BYTES).hexdigest()


@pytest.fixture
def registry(aml: Any) -> AmlModelRegistry:
    return AmlModelRegistry(aml.client)


@pytest.fixture
def artifacts(tmp_path: Path) -> Path:
    folder = tmp_path / "train-20261130-abc123"
    folder.mkdir()
    (folder / "model.joblib").write_bytes(MODEL_BYTES)
    (folder / "metrics.json").write_text('{"rmse": 55.1}')
    return folder


def stored(version: str, **tags: str) -> dict[str, str]:
    """Tags of a version registered earlier (with its digest)."""
    return {"mlops.sha256": SHA, "mlops.model_file": "model.joblib", **tags}


def test_is_a_model_registry(registry: AmlModelRegistry) -> None:
    assert isinstance(registry, ModelRegistry)


def test_register_uploads_the_folder_and_puts_the_next_version(
    aml: Any, registry: AmlModelRegistry, artifacts: Path
) -> None:
    aml.serve_models(NAME, {"1": stored("1"), "2": stored("2")})
    aml.serve_datastore()

    version = registry.register(NAME, artifacts, "model.joblib", {"data_sha": "d1"})

    # The version number came from the model container's nextVersion.
    (put,) = aml.transport.sent("PUT", rf"/workspaces/ws-mlops/models/{NAME}/versions/3\?")
    props = put.json()["properties"]
    assert props["modelType"] == "custom_model"
    assert props["tags"] == {
        "data_sha": "d1",
        "mlops.sha256": SHA,
        "mlops.model_file": "model.joblib",
    }
    (upload,) = aml.blobs.uploads
    assert sorted(upload["files"]) == ["metrics.json", "model.joblib"]
    assert props["modelUri"] == (
        "azureml://subscriptions/00000000-1111-2222-3333-444444444444/resourcegroups/rg-mlops/"
        f"workspaces/ws-mlops/datastores/workspaceblobstore/paths/{upload['dest']}"
    )
    assert upload["dest"].endswith("/train-20261130-abc123")
    # The upload went to the default datastore, whose key the SDK fetched.
    assert aml.transport.sent("POST", r"/datastores/workspaceblobstore/listSecrets")
    assert (version.name, version.version, version.sha256) == (NAME, "3", SHA)
    assert version.tags == {"data_sha": "d1"}
    assert version.uri == props["modelUri"]


def test_register_checks_its_inputs_before_sending_anything(
    aml: Any, registry: AmlModelRegistry, artifacts: Path
) -> None:
    with pytest.raises(ValueError, match="reserved"):
        registry.register(NAME, artifacts, "model.joblib", {"mlops.sha256": "forged"})
    with pytest.raises(NotFoundError):
        registry.register(NAME, artifacts, "missing.joblib", {})
    with pytest.raises(ValueError, match="relative"):
        registry.register(NAME, artifacts, "../model.joblib", {})
    assert aml.transport.requests == []


def test_register_output_registers_the_job_output_in_place(
    aml: Any, registry: AmlModelRegistry
) -> None:
    aml.serve_models(NAME, {"1": stored("1")})
    output = "azureml://jobs/train-20261202-abc123/outputs/model"

    version = registry.register_output(NAME, output, "model.joblib", SHA, {"data_sha": "d2"})

    (put,) = aml.transport.sent("PUT", rf"/workspaces/ws-mlops/models/{NAME}/versions/2\?")
    props = put.json()["properties"]
    # The job's output as it lies: no datastore key asked, nothing uploaded or downloaded.
    assert (props["modelType"], props["modelUri"]) == ("custom_model", output)
    assert props["tags"] == {
        "data_sha": "d2",
        "mlops.sha256": SHA,
        "mlops.model_file": "model.joblib",
    }
    assert aml.blobs.uploads == [] and aml.transport.sent("POST", r"/listSecrets") == []
    assert (version.version, version.sha256, version.uri) == ("2", SHA, output)


def test_register_output_checks_its_inputs_before_sending_anything(
    aml: Any, registry: AmlModelRegistry
) -> None:
    output = "azureml://jobs/j/outputs/model"
    with pytest.raises(ValueError, match="azureml://"):
        registry.register_output(NAME, "/tmp/outputs", "model.joblib", SHA, {})
    with pytest.raises(ValueError, match="sha256"):
        registry.register_output(NAME, output, "model.joblib", "not-a-digest", {})
    with pytest.raises(ValueError, match="reserved"):
        registry.register_output(NAME, output, "model.joblib", SHA, {"mlops.sha256": SHA})
    assert aml.transport.requests == []


def test_reads_list_versions_and_filter_by_tags(aml: Any, registry: AmlModelRegistry) -> None:
    aml.serve_models(
        NAME,
        {
            "1": stored("1", status="rejected"),
            "2": stored("2", status="approved", data="a"),
            "10": stored("10", status="approved", data="b"),
        },
    )

    assert [v.version for v in registry.list_versions(NAME)] == ["1", "2", "10"]
    assert [v.version for v in registry.find(NAME, {"status": "approved"})] == ["2", "10"]
    assert [v.version for v in registry.find(NAME, {"status": "approved", "data": "b"})] == ["10"]
    got = registry.get(NAME, "2")
    assert (got.sha256, got.tags) == (SHA, {"status": "approved", "data": "a"})
    assert got.created_at is not None and got.created_at.year == 2026
    with pytest.raises(NotFoundError):
        registry.get(NAME, "7")
    assert all("/models/diabetes-ridge/versions?" in r.url for r in aml.transport.requests)


def test_unknown_model_has_no_versions(aml: Any, registry: AmlModelRegistry) -> None:
    aml.serve_models("other-model", {})
    assert registry.list_versions("other-model") == []
    assert registry.get_alias("other-model", "production") is None


def test_set_alias_tags_the_new_holder_then_clears_the_old(
    aml: Any, registry: AmlModelRegistry
) -> None:
    old_stamp = "2026-11-01T10:00:00.000000Z"
    models = aml.serve_models(
        NAME,
        {
            "1": stored("1", **{"mlops.alias.production": old_stamp}),
            "2": stored("2", **{"mlops.alias.qa": old_stamp}),
        },
    )

    registry.set_alias(NAME, "production", "2")

    puts = [r for r in aml.transport.requests if r.method == "PUT"]
    assert [p.url.split("?")[0].rsplit("/", 1)[1] for p in puts] == ["2", "1"]
    first, second = (p.json()["properties"]["tags"] for p in puts)
    assert first["mlops.alias.production"] > old_stamp and first["mlops.alias.qa"] == old_stamp
    assert first["mlops.sha256"] == SHA  # the digest survives tag edits
    assert "mlops.alias.production" not in second and second["mlops.sha256"] == SHA
    # Tag edits keep the version's artifact path (a PUT with another path would be refused).
    assert all(
        p.json()["properties"]["modelUri"].endswith(f"/abc{v}/outputs")
        for p, v in zip(puts, ["2", "1"], strict=True)
    )
    assert "mlops.alias.production" not in models.tags("1")

    production = registry.get_alias(NAME, "production")
    assert production is not None and production.version == "2"
    assert production.aliases == ("production", "qa")
    assert production.tags == {}
    assert registry.get(NAME, "1").aliases == ()


def test_newest_alias_tag_wins_after_an_interrupted_move(
    aml: Any, registry: AmlModelRegistry
) -> None:
    aml.serve_models(
        NAME,
        {
            "1": stored("1", **{"mlops.alias.production": "2026-11-02T00:00:00.000000Z"}),
            "2": stored("2", **{"mlops.alias.production": "2026-11-01T00:00:00.000000Z"}),
        },
    )

    production = registry.get_alias(NAME, "production")

    assert production is not None and production.version == "1"
    assert [v.aliases for v in registry.list_versions(NAME)] == [("production",), ()]


def test_delete_alias_and_set_tags(aml: Any, registry: AmlModelRegistry) -> None:
    models = aml.serve_models(
        NAME, {"1": stored("1", **{"mlops.alias.qa": "2026-11-01T00:00:00.000000Z"}, a="1")}
    )

    registry.delete_alias(NAME, "qa")
    registry.delete_alias(NAME, "qa")  # no holder left: nothing to send
    registry.set_tags(NAME, "1", {"a": "2", "b": "3"})

    assert len(aml.transport.sent("PUT", r"/versions/1\?")) == 2
    assert models.tags("1") == stored("1", a="2", b="3")
    with pytest.raises(ValueError, match="reserved"):
        registry.set_tags(NAME, "1", {"mlops.alias.qa": "x"})
    with pytest.raises(NotFoundError):
        registry.set_tags(NAME, "9", {"a": "b"})
    with pytest.raises(NotFoundError):
        registry.set_alias(NAME, "qa", "9")


def test_download_verifies_the_model_digest(
    aml: Any, registry: AmlModelRegistry, artifacts: Path, tmp_path: Path
) -> None:
    aml.serve_models(NAME, {})
    aml.serve_datastore()
    registry.register(NAME, artifacts, "model.joblib", {})
    before = len(aml.transport.requests)

    folder = registry.download(NAME, "1", tmp_path / "dl")

    assert folder == tmp_path / "dl" / NAME / "1"
    assert (folder / "model.joblib").read_bytes() == MODEL_BYTES
    assert (folder / "metrics.json").exists()
    assert [p.name for p in (tmp_path / "dl").iterdir()] == [NAME]  # no staging left
    # The SDK looked the version up, then the datastore and its key, to read the blobs.
    sent = [
        (r.method, r.url.split("/ws-mlops/")[1].split("?")[0])
        for r in aml.transport.requests[before:]
    ]
    assert ("GET", f"models/{NAME}/versions/1") in sent
    assert ("POST", "datastores/workspaceblobstore/listSecrets") in sent

    # Someone rewrites the stored model: the download is refused and removed.
    (key,) = [k for k in aml.blobs.blobs if k.endswith("/model.joblib")]
    aml.blobs.blobs[key] = b"tampered"
    with pytest.raises(IntegrityError, match="sha256"):
        registry.download(NAME, "1", tmp_path / "dl")
    assert not folder.exists()


def test_download_refuses_a_version_without_a_digest(
    aml: Any, registry: AmlModelRegistry, tmp_path: Path
) -> None:
    aml.serve_models(NAME, {"1": {"owner": "someone else"}})
    with pytest.raises(IntegrityError, match="no recorded"):
        registry.download(NAME, "1", tmp_path)
    with pytest.raises(NotFoundError):
        registry.download(NAME, "2", tmp_path)


def test_a_failed_transfer_is_a_backend_error(
    aml: Any,
    registry: AmlModelRegistry,
    artifacts: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from azure.ai.ml.exceptions import MlException

    aml.serve_models(NAME, {})
    aml.serve_datastore()
    registry.register(NAME, artifacts, "model.joblib", {})

    def broken(*args: Any, **kwargs: Any) -> None:
        raise MlException(message="Saving blob was unsuccessful", no_personal_data_message="x")

    monkeypatch.setattr(aml.blobs, "download", broken)
    with pytest.raises(BackendError, match="unsuccessful"):
        registry.download(NAME, "1", tmp_path / "dl")
    assert not (tmp_path / "dl" / NAME).exists()
