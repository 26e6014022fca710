"""The guided demo behind ``make demo``: the deployed system doing its job with no human step.

New data lands in blob storage (through the data lake adapter) -> the watcher announces it -> the
retraining deployment runs -> a model is registered -> the release deployment runs -> the
new version serves in production. Then a bad file is quarantined and a notification recorded.
Then production's traffic drifts: the monitoring deployment reports it, and its
``mlops.drift.detected`` starts a retraining run (``mlops/demo_drift.py``).
Everything here only watches the Prefect server; the work happens in the deployed flows.
"""

from __future__ import annotations

import io
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

from core.lake import Lake
from core.settings import Settings
from core.version import REPO_ROOT
from mlops.demo_drift import DriftDemo, run_drift_demo
from mlops.demo_wait import finished, runs, wait

BAD_FILE = "tests/data/bad/out_of_range.csv"


@dataclass
class DemoResult:
    lines: list[str] = field(default_factory=list)
    drift: DriftDemo | None = None

    def add(self, line: str) -> None:
        self.lines.append(line)


def run_demo(settings: Settings, lake: Lake) -> DemoResult:
    """Drive the deployed loop once with new data and once with bad data; report what happened."""
    import pandas as pd
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from rich.console import Console

    from backends import get_backends
    from mlops.notify import read_notifications
    from training.data import reference_dataset

    console, result = Console(), DemoResult()
    registry = get_backends(settings).registry
    before = registry.get_alias(settings.model_name, "candidate")
    with get_client(sync_client=True) as client, console.status("starting") as status:
        start = time.time()
        stamp = pd.Timestamp.now("UTC").strftime("%Y%m%dT%H%M%S")
        name = f"new-batch-{stamp}.csv"
        buf = io.StringIO()
        reference_dataset().sample(200, random_state=int(start) % 10_000).to_csv(buf, index=False)
        lake.datalake.put(settings.landing_container, name, buf.getvalue().encode())
        console.print(f"uploaded {name} to the landing container")
        # Its schedule may start the first run up to a minute after `mlops deploy`: start one
        # now (cancelled if two already poll).
        run_deployment("blob-watcher/blob-watcher", timeout=0)
        every = settings.watch_interval_seconds
        console.print(f"blob watcher started: it lists the landing container every {every:g} s")

        retrain = wait(
            "retraining run (triggered by azure.storage.blob.created)",
            lambda: finished(runs(client, "retraining", start)),
            900,  # it releases what it registers before it finishes
            status,
        )[0]
        console.print(f"retraining: {retrain.state.name}: {retrain.state.message}")
        result.add(f"retraining  {retrain.state.name}: {retrain.state.message}")
        # A registration moves the candidate alias; the run's words are for people only.
        candidate = registry.get_alias(settings.model_name, "candidate")
        if candidate is not None and (before is None or candidate.version != before.version):
            release = wait(
                "release run (by the retraining run, or on mlops.model.registered)",
                lambda: finished(runs(client, "release", start)),
                600,
                status,
            )[0]
            console.print(f"release: {release.state.name}: {release.state.message}")
            result.add(f"release     {release.state.name}: {release.state.message}")

        bad_start = time.time()
        bad = lake.datalake.put(
            settings.landing_container, f"bad-{stamp}.csv", (REPO_ROOT / BAD_FILE).read_bytes()
        )
        console.print(f"uploaded a bad file: {bad.name}; running the retraining deployment on it")
        run_deployment(
            "retraining/retraining",
            parameters={"data_uri": bad.uri, "drain_landing": True},
            timeout=0,
        )
        quarantined = wait(
            "quarantine of the bad file",
            lambda: finished(runs(client, "retraining", bad_start)),
            300,
            status,
        )[0]
        result.add(f"bad file    {quarantined.state.name}: {quarantined.state.message}")
        note = wait(
            "the notification",
            lambda: [
                n
                for n in read_notifications(settings.notifications_path)
                if n["received_at"] >= datetime.fromtimestamp(bad_start, UTC).isoformat()
            ],
            60,
            status,
        )[-1]
        body = note["body"] if isinstance(note["body"], dict) else {}
        result.add(f"notified    {body.get('title') or body.get('event')}: {body.get('reason')}")

        drift = run_drift_demo(settings, lake, client, console, status)
        result.drift = drift
        counted = "Prometheus not running" if drift.counted is None else f"{drift.counted:g}"
        result.add(
            f"traffic     {drift.sent} drifted requests to production; Prometheus counted: "
            f"{counted} (drift half: {drift.seconds:.0f} s)"
        )
        found = ", ".join(drift.drifted_features) or "none"
        result.add(f"monitoring  drift in: {found}")
        for line in drift.retraining:
            result.add(f"retraining  {line}")
    return result
