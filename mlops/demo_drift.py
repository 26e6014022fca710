"""The demo's second half: production's traffic drifts and the system notices by itself.

Drifted requests to production's stable URL -> Prometheus counts them -> ground-truth labels
for some of them land in ``collected/labels/`` -> the replicas write the rows to the lake ->
the ``monitoring`` deployment runs (its report and charts in the Prefect UI) and emits
``mlops.drift.detected`` -> the ``retrain-on-drift`` automation starts a retraining run,
which the demo only waits for.
"""

from __future__ import annotations

import io
import json
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np
import pandas as pd

from core.collected_lake import CollectedLake
from core.events import RETRAIN_ON_DRIFT
from core.interfaces import Endpoint, ModelVersion
from core.lake import Lake, stamp
from core.settings import Settings
from mlops.demo_wait import DemoError, finished, runs, settled, wait
from training.collected import LABEL_COLUMNS, LABELS_PREFIX
from training.schema import FEATURES, TARGET

ENVIRONMENT = "production"
TRAFFIC = 300  # requests of one row each: more than MLOPS_DRIFT_MIN_ROWS (200) by default
LABELLED = 200  # of them get a ground truth later
SHIFTED = ("bmi", "s5")  # the two strongest features of the diabetes model
SHIFT_SIGMAS = 1.0  # added to each, in standard deviations of the training data
SCORED = f'scoring_requests_total{{environment="{ENVIRONMENT}",route="/score",status="200"}}'
SERVED = f"sum({SCORED})"  # by the replicas serving now


@dataclass(frozen=True)
class Scored:
    """One answered request: the id the service answered with and its prediction."""

    request_id: str
    prediction: float


@dataclass
class DriftDemo:
    """What the drift half saw (the summary lines are built from it)."""

    sent: int = 0
    counted: float | None = None  # requests Prometheus counted meanwhile (None: not running)
    monitoring_run: str | None = None
    drifted_features: list[str] = field(default_factory=list)
    retraining: list[str] = field(default_factory=list)  # "<started by>: <state>: <message>"
    seconds: float = 0.0  # what this half took


def drifted_traffic(training: pd.DataFrame, rows: int, seed: int) -> pd.DataFrame:
    """``rows`` feature rows drawn from ``training`` (the demo passes the diabetes data),
    ``SHIFTED`` moved up by ``SHIFT_SIGMAS`` of its own standard deviation."""
    frame = training[list(FEATURES)].sample(rows, replace=True, random_state=seed)
    frame = frame.reset_index(drop=True)
    for name in SHIFTED:
        frame[name] += SHIFT_SIGMAS * float(training[name].std())
    return frame


def holdout_rmse(version: ModelVersion | None, training: pd.DataFrame) -> float:
    """The model's holdout RMSE as its registration recorded it (its typical error); the
    training target's standard deviation when the record lacks it."""
    try:
        return float(json.loads((version.tags if version else {})["metrics"])["rmse"])
    except (KeyError, ValueError, TypeError):
        return float(training[TARGET].std())


def outcome_range(training: pd.DataFrame) -> tuple[float, float]:
    """The lowest and highest outcome in the training data."""
    return float(training[TARGET].min()), float(training[TARGET].max())


def label_csv(
    scored: list[Scored], noise_sd: float, seed: int, bounds: tuple[float, float]
) -> bytes:
    """Ground truth for ``scored`` as ``training/collected.py`` lays labels out: the model's
    prediction plus Gaussian noise of its holdout error (what the true outcome of a patient
    the model describes well looks like; the demo has no real patients), kept within
    ``bounds``, the outcomes the training data holds. Unbounded, about one demo in fifteen
    drew an outcome beyond the ``labelled_rows`` suite's target range and its labelled rows
    were quarantined: a disease progression score has a scale, noise does not."""
    rng = np.random.default_rng(seed)
    predictions = np.array([s.prediction for s in scored])
    targets = np.clip(predictions + rng.normal(0.0, noise_sd, len(scored)), *bounds)
    frame = pd.DataFrame(
        {"request_id": [s.request_id for s in scored], "row": 0, "target": targets.round(2)},
        columns=list(LABEL_COLUMNS),
    )
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    return buf.getvalue().encode()


def send(endpoint: Endpoint, frame: pd.DataFrame) -> list[Scored]:
    """One request per row to the stable URL, with the key; every answer must be a 200."""
    import httpx

    headers = {"Authorization": f"Bearer {endpoint.key}"}
    scored = []
    with httpx.Client(base_url=endpoint.url, headers=headers, timeout=10) as http:
        for row in frame.itertuples(index=False):
            response = http.post("/score", json={"data": [[float(v) for v in row]]})
            if response.status_code != 200:
                raise DemoError(
                    f"production answered {response.status_code} to a scoring request: "
                    f"{response.text[:200]}"
                )
            scored.append(
                Scored(response.headers["x-request-id"], response.json()["predictions"][0])
            )
    return scored


def run_drift_demo(
    settings: Settings, lake: Lake, client: Any, console: Any, status: Any
) -> DriftDemo:
    """Drift production's traffic and watch the deployed system react (see the module)."""
    from prefect.deployments import run_deployment

    from backends import get_backends, get_release_backends
    from backends.local.prometheus import PrometheusApi
    from training.data import reference_dataset
    from training.drift import parse_rows

    outcome = DriftDemo()
    endpoint = get_release_backends(settings, start_engine=False).target.current(ENVIRONMENT)
    if endpoint is None:
        raise DemoError("nothing serves in production: the drift half needs a release first")
    # The diabetes data itself, not the curated set: the curated set of a stack that ran the
    # demo before holds its drifted labelled rows, and shifting those again went past the
    # gate's value ranges (a second `make demo` had its labels quarantined for s5).
    training = reference_dataset()
    seed = int(time.time()) % 10_000
    frame = drifted_traffic(training, TRAFFIC, seed)
    shift = ", ".join(f"{n} +{SHIFT_SIGMAS:g} σ ({training[n].std():.4f})" for n in SHIFTED)

    prometheus = PrometheusApi(settings.prometheus_url)
    before = (prometheus.scalar(SERVED) or 0.0) if prometheus.ready() else None
    started = time.time()
    status.update(f"[bold]{TRAFFIC} drifted scoring requests to production[/bold] …")
    scored = send(endpoint, frame)
    outcome.sent = len(scored)
    console.print(
        f"sent {len(scored)} requests to production in {time.time() - started:.1f} s: {shift}"
    )
    if before is not None:
        outcome.counted = wait(
            "Prometheus to count them (it scrapes every 5 s)",
            lambda: (n := (prometheus.scalar(SERVED) or 0.0) - before) >= len(scored) and n,
            60,
            status,
        )
        console.print(f"Prometheus counted {outcome.counted:g} /score requests to production")

    # Ground truth arrives later, for some of the requests.
    registry = get_backends(settings).registry
    noise = holdout_rmse(registry.get(endpoint.model_name, endpoint.model_version), training)
    name = f"{LABELS_PREFIX}/demo-{stamp()}.csv"
    labelled = label_csv(scored[:LABELLED], noise, seed, outcome_range(training))
    lake.datalake.put(settings.collected_container, name, labelled)
    console.print(
        f"uploaded {LABELLED} labels to {settings.collected_container}/{name} "
        f"(prediction + noise of the model's holdout RMSE, {noise:.1f})"
    )

    # The replicas write a window when it is full or old enough (SCORING_COLLECT_WINDOW_SECONDS).
    if settings.collect_sample == 0:
        console.print("collection is off (MLOPS_COLLECT_SAMPLE=0): nothing to monitor")
        outcome.seconds = time.time() - started
        return outcome
    collected = CollectedLake(lake.datalake, settings.collected_container)
    ids = {s.request_id for s in scored}
    since = datetime.fromtimestamp(started - 600, UTC)
    # Sampling collects a share of the requests: wait for most of that share.
    expected = (
        len(ids) if settings.collect_sample == 1 else int(len(ids) * settings.collect_sample * 0.8)
    )

    def all_collected() -> bool:
        refs = collected.window_blobs(ENVIRONMENT, since, datetime.now(UTC))
        return len(ids & {row.request_id for row in parse_rows(collected.lines(refs))}) >= expected

    window = settings.collect_window_seconds or 60.0
    wait(
        f"the replicas to write the rows to the lake (window ≤ {window:g} s)",
        all_collected,
        window + 90,
        status,
    )
    console.print(f"the rows are in the lake's {settings.collected_container} container")

    run = _monitor(client, run_deployment, status)
    outcome.monitoring_run = str(run.id)
    check = collected.latest_check()
    if check is not None and check.flow_run_id == str(run.id):
        outcome.drifted_features = list(check.drifted_features)
    console.print(f"monitoring: {run.state.name}: {run.state.message}")
    if not outcome.drifted_features:
        outcome.seconds = time.time() - started
        return outcome

    drift_run = wait(
        f"the retraining run {RETRAIN_ON_DRIFT} starts on mlops.drift.detected",
        lambda: finished(_started_by(runs(client, "retraining", run.created.timestamp()))),
        900,
        status,
    )[0]

    # The labelled landing file also raised a blob event: the run of either trigger that
    # starts first takes it (deployment concurrency 1), the other finds it gone. Show both.
    for other in wait(
        "the other retraining runs since the traffic",
        lambda: settled(runs(client, "retraining", started)),
        600,
        status,
    ):
        by = other.created_by.display_value if other.created_by else "by hand"
        outcome.retraining.append(f"{by}: {other.state.name}: {other.state.message}")
    console.print(
        f"retraining ({RETRAIN_ON_DRIFT}): {drift_run.state.name}: {drift_run.state.message}"
    )
    outcome.seconds = time.time() - started
    return outcome


def _started_by(found: list[Any]) -> list[Any]:
    return [
        r
        for r in found
        if r.created_by
        and r.created_by.type == "AUTOMATION"
        and r.created_by.display_value == RETRAIN_ON_DRIFT
    ]


def _monitor(client: Any, run_deployment: Any, status: Any) -> Any:
    """A finished run of the monitoring deployment started now. Its concurrency limit cancels
    a run started while a scheduled one works: then the demo waits for that one and asks again."""
    for _ in range(3):
        flow_run = run_deployment("monitoring/monitoring", timeout=0)
        done = wait(
            "the monitoring run (drift, labels, report)",
            partial(_final, client, flow_run.id),
            300,
            status,
        )
        if not done.state.is_cancelled():
            return done
        wait("a scheduled monitoring run to end", lambda: not _busy(client), 300, status)
    raise DemoError("the monitoring deployment cancelled three runs in a row")


def _final(client: Any, flow_run_id: Any) -> Any:
    run = client.read_flow_run(flow_run_id)
    return run if run.state and run.state.is_final() else None


def _busy(client: Any) -> list[Any]:
    """The monitoring runs pending or running now (scheduled ones included)."""
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    found = client.read_flow_runs(
        deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=["monitoring"]))
    )
    return [r for r in found if r.state and r.state.type.value in ("PENDING", "RUNNING")]
