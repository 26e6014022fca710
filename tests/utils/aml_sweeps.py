"""A fake Azure ML sweep service at the HTTP boundary of the fake workspace
(tests/utils/azure_ml_workspace.py).

A sweep job PUT to it runs its grid: each point becomes a child job (``<sweep>_<n>``) that
runs the real ``training.train`` entrypoint in this process with the trial's command line
(``${{search_space.X}}`` replaced by the point's value, as the service does) and MLflow's
local file store as the run's tracking store. The service reads each child's primary metric
back from MLflow, as the real one does, and records the best child as the sweep job's
``best_child_run_id``. The children are listed through the run history API (reached through
the workspace's discovery URL), and their outputs served to ``jobs.download``.
"""

from __future__ import annotations

import itertools
import re
import shlex
import shutil
from pathlib import Path
from typing import Any

import pytest

from tests.utils.azure_http import RG, SUB, WS, Recorded, Reply
from tests.utils.azure_ml_workspace import FakeWorkspace, serve_submit
from training import train

API = "https://eastus.api.azureml.ms"
DISCOVERY = f"{API}/discovery/workspaces/{WS}"


class SweepService:
    """Sweep and trial jobs of the fake workspace; trials train on ``data`` (a local file
    standing for the blob the ``data`` input names).

    Args:
        final: The status the sweep job ends in (``Failed``/``Canceled`` run no trial).
        failing: Trial numbers (1-based) that fail instead of running.
    """

    def __init__(
        self,
        aml: FakeWorkspace,
        data: Path,
        root: Path,
        monkeypatch: pytest.MonkeyPatch,
        final: str = "Completed",
        failing: tuple[int, ...] = (),
    ) -> None:
        self.aml, self.data, self.root, self.final = aml, data, root, final
        self.failing = failing
        self.monkeypatch = monkeypatch
        self.sweeps: dict[str, dict[str, Any]] = {}  # name -> stored REST body
        self.children: dict[str, list[dict[str, Any]]] = {}  # sweep -> run history runs
        self.metrics: dict[str, float] = {}  # child -> the metric MLflow holds for it
        self.points: dict[str, dict[str, Any]] = {}  # child -> its hyperparameters
        t = aml.transport
        serve_submit(aml)
        t.route("PUT", r"/jobs/[^/?]+\?", self._put)
        t.route("GET", r"/jobs/[^/?]+\?", self._get)
        workspace = {
            "id": aml.arm,
            "name": WS,
            "location": "eastus",
            "properties": {"discoveryUrl": DISCOVERY},
        }
        t.route("GET", rf"/workspaces/{WS}\?api-version=", workspace)
        t.route("GET", re.escape(DISCOVERY), {"api": API, "catalog": API})
        t.route("GET", r"/history/v1\.0/.*/runs/[^/]+/children", self._children)
        monkeypatch.setattr(aml.client.jobs, "download", self._download)

    def _put(self, request: Recorded) -> Reply:
        name = request.url.split("/jobs/")[1].split("?")[0]
        body = request.json()
        props = body["properties"]
        assert props["jobType"] == "Sweep", props["jobType"]
        self.sweeps[name] = body
        self.children[name] = []
        if self.final == "Completed":
            self._run_trials(name, props)
        props["status"] = "NotStarted"
        return Reply(201, {"id": f"{self.aml.arm}/jobs/{name}", "name": name, **body})

    def _run_trials(self, name: str, props: dict[str, Any]) -> None:
        space = props["searchSpace"]
        keys = sorted(space)
        # The REST shape of a choice: ["choice", [[values...]]].
        grids = [space[k][1][0] for k in keys]
        points = list(itertools.product(*grids))[: props["limits"]["maxTotalTrials"]]
        metric = props["objective"]["primaryMetric"]
        for number, point in enumerate(points, start=1):
            child = f"{name}_{number - 1}"
            folder = self.root / child
            bindings = {
                "${{inputs.data}}": str(self.data),
                "${{outputs.model}}": str(folder / "model"),
                "${{outputs.decision}}": str(folder / "decision"),
            } | {f"${{{{search_space.{k}}}}}": str(v) for k, v in zip(keys, point, strict=True)}
            argv = []
            for arg in shlex.split(props["trial"]["command"]):
                for key, value in bindings.items():
                    arg = arg.replace(key, value)
                argv.append(arg)
            assert argv[:3] == ["python", "-m", "training.train"], argv
            store = folder / "mlruns"
            self.monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
            self.monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
            ok = number not in self.failing and train.main(argv[3:]) == 0
            self.points[child] = dict(zip(keys, point, strict=True))
            if ok:
                self.metrics[child] = _logged(store, metric)
            status = "Completed" if ok else "Failed"
            self.children[name].append({"runId": child, "status": status, "parentRunId": name})
        if self.metrics:
            sign = 1 if props["objective"]["goal"].lower() == "minimize" else -1
            best = min(self.metrics, key=lambda c: sign * self.metrics[c])
            props.setdefault("properties", {})["best_child_run_id"] = best

    def _get(self, request: Recorded) -> Reply:
        name = request.url.split("/jobs/")[1].split("?")[0]
        if name in self.sweeps:
            body = self.sweeps[name]
            body["properties"]["status"] = self.final
            return Reply(200, {"id": f"{self.aml.arm}/jobs/{name}", "name": name, **body})
        for runs in self.children.values():
            for run in runs:
                if run["runId"] == name:
                    return Reply(200, self.aml.job_json(name, run["status"]))
        return Reply(404, {"error": {"code": "UserError", "message": "job not found"}})

    def _children(self, request: Recorded) -> Reply:
        found = re.search(r"/runs/([^/]+)/children", request.url)
        assert found is not None
        assert f"/subscriptions/{SUB}/resourceGroups/{RG}/" in request.url
        return Reply(200, {"value": self.children.get(found[1], []), "nextLink": None})

    def _download(self, name: str, *, download_path: str, output_name: str | None = None) -> None:
        assert output_name == "decision", "the worker fetches decision records only"
        shutil.copytree(
            self.root / name / output_name, Path(download_path, "named-outputs", output_name)
        )


def _logged(store: Path, metric: str) -> float:
    """The metric the trial's run logged to the MLflow store (what the service compares)."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=store.as_uri())
    ids = [e.experiment_id for e in client.search_experiments()]
    (run,) = client.search_runs(ids)
    return float(run.data.metrics[metric])
