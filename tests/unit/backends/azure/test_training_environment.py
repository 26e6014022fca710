"""The training environment from the lock: its pins, its version, and its registration at
the HTTP boundary (GET 404, then PUT), as AmlCompute uses it for a job."""

from __future__ import annotations

import re
from importlib import metadata
from pathlib import Path
from typing import Any

import pytest
import yaml
from packaging.requirements import Requirement

from backends.azure.compute import AmlCompute
from backends.azure.environment import (
    BASE_IMAGE,
    TRACKING_LOCK,
    TRAINING_PACKAGES,
    TrainingEnvironment,
    canonical,
    conda_spec,
    environment_pins,
    environment_version,
    read_pins,
    training_pins,
)
from core.interfaces import BackendError, TrainingJobSpec
from core.settings import AzureSettings
from tests.utils.azure_ml_workspace import serve_submit

from .test_aml_compute import DATA

ROOT = Path(__file__).resolve().parents[4]
LOCK = ROOT / "constraints.txt"
TRACKING = ROOT / TRACKING_LOCK
ENVS = r"/environments/diabetes-train-env/versions/"


def test_the_pins_are_the_locks() -> None:
    pins = dict(p.split("==") for p in training_pins(LOCK))
    assert set(pins) == {canonical(p) for p in TRAINING_PACKAGES}
    # The versions this environment (and so the scoring image) runs with.
    for name in ("scikit-learn", "numpy", "joblib", "pandas"):
        assert pins[name] == metadata.version(name)


def closure_of(*names: str) -> set[str]:
    """The installed packages ``names`` need on this Python, themselves included (no extras)."""
    wanted = {canonical(n) for n in names}
    closure: set[str] = set()
    while wanted:
        name = wanted.pop()
        closure.add(name)
        for line in metadata.requires(name) or []:
            requirement = Requirement(line)
            if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                continue  # an extra, or another Python's backport
            dep = canonical(requirement.name)
            if dep not in closure:
                wanted.add(dep)
    return closure


def test_the_pins_cover_everything_training_imports() -> None:
    """The closure of scikit-learn, pandas, pyarrow, joblib and pydantic's requirements is
    pinned: nothing is left for pip to choose in the cloud."""
    closure = closure_of("scikit-learn", "pandas", "pyarrow", "joblib", "pydantic")
    assert closure <= {canonical(p) for p in TRAINING_PACKAGES}


def test_the_environment_holds_mlflow_for_sweeps() -> None:
    """The trials log their metric through mlflow-skinny and azureml-mlflow, pinned with
    their closure; every version shared with constraints.txt is the lock's, save the two
    that azureml-mlflow caps."""
    pins = dict(p.split("==") for p in environment_pins(LOCK, TRACKING))
    assert pins["mlflow-skinny"] == metadata.version("mlflow-skinny") == "3.15.0"
    assert pins["azureml-mlflow"] == "1.62.0.post6"
    for pin in training_pins(LOCK):
        assert pin.split("==")[1] == pins[pin.split("==")[0]]
    tracked, locked = read_pins(TRACKING), read_pins(LOCK)
    differ = {n for n in tracked if locked.get(n) != tracked[n]}
    # azureml-mlflow (and its jsonpickle) cannot join the worker's lock: azureml-mlflow wants
    # azure-storage-blob<=12.27.1 and pytz<=2025.2.
    assert differ == {"azureml-mlflow", "jsonpickle", "azure-storage-blob", "pytz"}
    assert closure_of("mlflow-skinny") <= set(tracked)


def test_a_tracking_pin_that_contradicts_the_lock_is_refused(tmp_path: Path) -> None:
    tracking = tmp_path / "tracking.txt"
    tracking.write_text(TRACKING.read_text() + "numpy==1.0.0\n")
    with pytest.raises(BackendError, match="disagree on numpy"):
        environment_pins(LOCK, tracking)


def test_the_version_follows_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / "constraints.txt"
    lock.write_text(LOCK.read_text())
    spec = conda_spec(training_pins(lock))
    same = environment_version(conda_spec(training_pins(LOCK)))
    assert environment_version(spec) == same and re.fullmatch(r"[0-9a-f]{16}", same)
    # An unrelated pin does not change it; a training pin does.
    lock.write_text(LOCK.read_text().replace("prefect==", "prefect==0.0.1#"))
    assert environment_version(conda_spec(training_pins(lock))) == same
    lock.write_text(re.sub(r"(?m)^scikit-learn==.*$", "scikit-learn==1.8.0", LOCK.read_text()))
    assert environment_version(conda_spec(training_pins(lock))) != same
    assert environment_version(spec, image="other:1") != same


def test_a_lock_without_a_training_pin_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "constraints.txt"
    lock.write_text("numpy==2.4.6\n")
    with pytest.raises(BackendError, match="pins no version of .*scikit-learn"):
        training_pins(lock)


class FakeEnvironments:
    """The environment versions of the workspace, as the REST API keeps them."""

    def __init__(self, aml: Any) -> None:
        self.versions: dict[str, dict[str, Any]] = {}
        aml.transport.route("GET", ENVS + r"[^/?]+\?", self._get)
        aml.transport.route("PUT", ENVS + r"[^/?]+\?", self._put)
        self.arm = aml.arm

    def _version(self, request: Any) -> str:
        return str(re.search(ENVS + r"([^/?]+)", request.url)[1])  # type: ignore[index]

    def _get(self, request: Any) -> Any:
        from tests.utils.azure_http import Reply

        stored = self.versions.get(self._version(request))
        if stored is None:
            return Reply(404, {"error": {"code": "UserError", "message": "not found"}})
        return Reply(200, stored)

    def _put(self, request: Any) -> Any:
        version = self._version(request)
        stored = {
            "id": f"{self.arm}/environments/diabetes-train-env/versions/{version}",
            "name": version,
            "properties": request.json()["properties"],
        }
        self.versions[version] = stored
        return stored


def test_ensure_registers_a_missing_version_once(aml: Any) -> None:
    envs = FakeEnvironments(aml)
    environment = TrainingEnvironment(aml.client, "diabetes-train-env", LOCK)

    assert environment.ensure() == f"diabetes-train-env:{environment.version}"
    assert environment.ensure() == environment.reference

    gets = aml.transport.sent("GET", ENVS + environment.version + r"\?api-version=")
    (put,) = aml.transport.sent("PUT", ENVS + environment.version + r"\?api-version=")
    assert len(gets) == 2
    props = put.json()["properties"]
    assert props["image"] == BASE_IMAGE
    conda = yaml.safe_load(props["condaFile"])
    assert conda["dependencies"][:2] == ["python=3.11", "pip"]
    assert conda["dependencies"][2]["pip"] == environment_pins(LOCK, TRACKING)
    assert "azureml-mlflow==1.62.0.post6" in conda["dependencies"][2]["pip"]
    assert props["tags"]["lock"] == "constraints.txt"
    assert len(props["tags"]["lock_sha256"]) == 64
    assert set(envs.versions) == {environment.version}


def test_a_job_runs_in_the_locks_environment(aml: Any, tmp_path: Path) -> None:
    FakeEnvironments(aml)
    serve_submit(aml)
    code = tmp_path / "repo"
    (code / "training").mkdir(parents=True)
    (code / "training" / "train.py").write_text("print('train')\n")
    settings = AzureSettings(subscription_id="s", resource_group="r", workspace="w")
    compute = AmlCompute(aml.client, settings, code, lock=LOCK)

    job_id = compute.submit(TrainingJobSpec(data_uri=DATA, params={}, experiment="e"))

    version = TrainingEnvironment(aml.client, "diabetes-train-env", LOCK).version
    assert aml.transport.sent("PUT", ENVS + version + r"\?")  # registered first
    (job,) = aml.transport.sent("PUT", rf"/jobs/{job_id}\?")
    assert job.json()["properties"]["environmentId"] == (
        f"{aml.arm}/environments/diabetes-train-env/versions/{version}"
    )
