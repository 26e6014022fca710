"""The fake Azure ML cluster's jobs: a command job put to the fake workspace
(tests/utils/azure_ml_workspace.py) runs the real training entrypoint, ``training.train``'s
``main`` with the job's own command line, in this process.

The job's inputs are resolved as Azure ML mounts them: ``data`` is read from the data lake
the job names (by its URL), ``champion`` is the folder of the registered model version the
input names. Its outputs stay on this side (the cluster's storage): ``jobs.download`` and
``models.download`` (blob transfers the SDK makes outside the transport) copy from there, as
the datastore would serve them. So the decision record the worker reads is the one the real
entrypoint wrote, after scoring challenger and champion on one holdout.
"""

from __future__ import annotations

import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest

from core.interfaces import DataLake
from tests.utils.azure_http import Recorded, Reply
from tests.utils.azure_ml_workspace import FakeModels, FakeWorkspace, serve_submit
from training import train


class TrainingJobs:
    """Routes the workspace's job API to local runs of ``training.train`` under ``root``."""

    def __init__(
        self,
        aml: FakeWorkspace,
        lake: DataLake,
        models: FakeModels,
        root: Path,
        monkeypatch: pytest.MonkeyPatch,
    ) -> None:
        self.aml, self.lake, self.models, self.root = aml, lake, models, root
        self.status: dict[str, str] = {}
        self.commands: dict[str, list[str]] = {}
        serve_submit(aml)  # code snapshot upload and environment lookup
        aml.transport.route("PUT", r"/jobs/[^/?]+\?", self._put)
        aml.transport.route("GET", r"/jobs/[^/?]+\?", self._get)
        monkeypatch.setattr(aml.client.jobs, "download", self._download_job)
        monkeypatch.setattr(aml.client.models, "download", self._download_model)

    def _put(self, request: Recorded) -> Reply:
        name = _name(request)
        body = request.json()
        props = body["properties"]
        folder = self.root / name
        data_ref = self.lake.ref(props["inputs"]["data"]["uri"])
        data = folder / "inputs" / Path(data_ref.name).name
        data.parent.mkdir(parents=True)
        data.write_bytes(self.lake.get(data_ref.container, data_ref.name)[0])
        bindings = {
            "${{inputs.data}}": str(data),
            "${{outputs.model}}": str(folder / "model"),
            "${{outputs.decision}}": str(folder / "decision"),
        }
        champion = props["inputs"].get("champion")
        if champion is not None:
            bindings["${{inputs.champion}}"] = str(self._model_folder(champion["uri"]))
        argv = [bindings.get(arg, arg) for arg in shlex.split(props["command"])]
        assert argv[:3] == ["python", "-m", "training.train"], argv
        self.commands[name] = argv
        self.status[name] = "Completed" if train.main(argv[3:]) == 0 else "Failed"
        props["status"] = "NotStarted"
        return Reply(201, {"id": f"{self.aml.arm}/jobs/{name}", "name": name, **body})

    def _get(self, request: Recorded) -> Reply:
        name = _name(request)
        if name not in self.status:
            return Reply(404, {"error": {"code": "UserError", "message": "job not found"}})
        return Reply(200, self.aml.job_json(name, self.status[name]))

    def _download_job(
        self, name: str, *, download_path: str, output_name: str | None = None
    ) -> None:
        assert output_name is not None, "only named outputs are fetched"
        shutil.copytree(
            self.root / name / output_name, Path(download_path, "named-outputs", output_name)
        )

    def _download_model(self, name: str, version: str, download_path: Any) -> None:
        uri = self.models.versions[version]["properties"]["modelUri"]
        shutil.copytree(self._job_output(uri), Path(download_path, name, "model"))

    def _model_folder(self, asset_id: str) -> Path:
        version = asset_id.rsplit("/versions/", 1)[1]
        return self._job_output(self.models.versions[version]["properties"]["modelUri"])

    def _job_output(self, uri: str) -> Path:
        found = re.fullmatch(r"azureml://jobs/([^/]+)/outputs/([^/]+)", uri)
        assert found is not None, f"not a job output: {uri}"
        return self.root / found[1] / found[2]


def _name(request: Recorded) -> str:
    return request.url.split("/jobs/")[1].split("?")[0]
