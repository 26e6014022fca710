"""Data to production: land one file, time it until production answers with its model.

Brings up a local stack (``mlops up`` + ``mlops deploy``: by default a fresh one in a temporary
project state folder on free ports, sharing the project's Docker engine and build caches;
``--reuse``: the stack your settings name, started if down), makes sure production serves a
first version (a warm-up pass, not measured: it may build the base image), then lands a file
in the landing container the way a producer does and polls production's ``/score`` until the
new version answers. Nothing is run by hand: the watcher, retraining and release deployments
do it all. Prints the per-stage breakdown (``core.breakdown``: detection, work per stage,
Prefect orchestration) from the flow runs' own records, and the ratios against the targets
(total <= 30 s, orchestration <= 15 % of it).

    PYTHONPATH=$PWD .venv/bin/python bench/bench_pipeline.py [--reuse] [--rounds 2] [--keep]

Absolute seconds depend on the machine's load: note ``uptime`` next to any figure.
"""

from __future__ import annotations

import argparse
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import httpx
import numpy as np

from backends.local.dockerd import DockerEngine
from backends.local.envstate import free_port
from core.breakdown import Breakdown
from core.settings import Settings, load_settings

REPO = Path(__file__).resolve().parents[1]
MLOPS = Path(sys.executable).with_name("mlops")
PORT_SETTINGS = (
    "AZURITE_PORT", "PREFECT_PORT", "NOTIFY_PORT", "WORKER_PORT", "DOCS_PORT", "QA_PORT",
    "PRODUCTION_PORT", "PROMETHEUS_PORT",
)  # fmt: skip
# The measured file moves the target by this much (alternating sign each round), so the
# retrained model beats the champion on the shared holdout and is released. Within the
# suite's bounds: the mean of the target stays in [108.5, 195.7].
SHIFT = 30.0


def mlops(env: dict[str, str], *args: str, timeout: float = 900) -> str:
    result = subprocess.run(
        [str(MLOPS), *args], env=env, capture_output=True, text=True, timeout=timeout, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"mlops {' '.join(args)} failed:\n{result.stdout}\n{result.stderr}")
    return result.stdout.strip()


@contextmanager
def stack(reuse: bool, keep: bool) -> Iterator[dict[str, str]]:
    """The environment of a running stack with published deployments."""
    env = dict(os.environ)
    folder = None
    if not reuse:
        folder = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
        env = {k: v for k, v in env.items() if not k.startswith(("MLOPS_", "PREFECT_"))}
        env["MLOPS_STATE_DIR"] = str(folder / "state")
        env.update({f"MLOPS_{name}": str(free_port()) for name in PORT_SETTINGS})
        # The project's Docker engine (if one runs) and its build caches (wheelhouse, base
        # image), but not its PID file: `mlops down` stops the engine whose PID file is in
        # the state folder, and this engine is not the bench's to stop.
        engine = DockerEngine(REPO / ".mlops" / "docker").find()
        if engine is not None:
            env["MLOPS_DOCKER_HOST"] = engine
            cache = (REPO / ".mlops" / "docker" / "cache").resolve()
            cache.mkdir(parents=True, exist_ok=True)
            (folder / "state" / "docker").mkdir(parents=True)
            (folder / "state" / "docker" / "cache").symlink_to(cache, target_is_directory=True)
    try:
        print("mlops up ...", flush=True)
        mlops(env, "up")
        print("mlops deploy ...", flush=True)
        mlops(env, "deploy")
        yield env
    finally:
        if folder is not None and not keep:
            mlops(env, "down", timeout=300)
            (folder / "state" / "docker" / "cache").unlink(missing_ok=True)
            shutil.rmtree(folder, ignore_errors=True)
        elif folder is not None:
            print(f"stack left running: MLOPS_STATE_DIR={env['MLOPS_STATE_DIR']}")


def settings_of(env: dict[str, str]) -> Settings:
    """The settings the stack's processes get from ``env``."""
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        return load_settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def served_version(url: str, key: str) -> str | None:
    try:
        response = httpx.post(
            f"{url}/score",
            json={"data": [[0.0] * 10]},
            headers={"Authorization": f"Bearer {key}"},
            timeout=5,
        )
    except httpx.HTTPError:
        return None
    return str(response.json()["model"]["version"]) if response.status_code == 200 else None


def land(settings: Settings, name: str, shift: float, seed: int) -> datetime:
    """Upload a file of 300 reference rows (target moved by ``shift``); when it landed."""
    from core.lake import Lake
    from flows.resources import default_backends
    from training.data import reference_dataset

    frame = reference_dataset().sample(300, random_state=seed)
    frame["target"] = np.clip(frame["target"] + shift, 25, 346)
    buf = io.StringIO()
    frame.to_csv(buf, index=False)
    lake = Lake.of(default_backends(settings).datalake, settings)
    lake.datalake.put(lake.landing, name, buf.getvalue().encode())
    return datetime.now(UTC)


def wait_new_version(
    env: dict[str, str], before: str | None, timeout: float
) -> tuple[str, datetime]:
    """Poll production every 0.1 s until it answers with a version other than ``before``."""
    deadline = time.monotonic() + timeout
    url = key = ""
    while time.monotonic() < deadline:
        if not url:
            try:
                url, key = mlops(env, "url", "production"), mlops(env, "key", "production")
            except SystemExit:
                time.sleep(1)
                continue
        version = served_version(url, key)
        if version is not None and version != before:
            return version, datetime.now(UTC)
        time.sleep(0.1)
    raise SystemExit(f"production did not serve a new version within {timeout:.0f} s")


def release_run(version: str, since: datetime, timeout: float = 120) -> str:
    """The id of the release flow run of ``version`` (waits until it finished)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    deadline = time.monotonic() + timeout
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            # The release deployment's run, or the retraining run's subflow.
            runs = client.read_flow_runs(
                flow_filter=FlowFilter(name=FlowFilterName(any_=["release"]))
            )
            for run in runs:
                created = run.created or since
                mine = run.parameters.get("version") == version and created >= since
                if mine and run.state is not None and run.state.is_final():
                    return str(run.id)
            time.sleep(1)
    raise SystemExit(f"no finished release run of version {version}")


def measure(env: dict[str, str], round_no: int) -> tuple[Breakdown, float]:
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from backends import get_backends
    from core.breakdown import breakdown
    from tasks.timeline import pipeline_times

    settings = settings_of(env)
    url, key = mlops(env, "url", "production"), mlops(env, "key", "production")
    before = served_version(url, key)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    for attempt, shift in enumerate((SHIFT, -SHIFT) if round_no % 2 == 0 else (-SHIFT, SHIFT)):
        # A new sample every time: the same bytes again would be a replay (nothing to train).
        seed = int(time.time()) % 100_000 + attempt
        landed = land(settings, f"bench-{stamp}-{attempt}.csv", shift, seed=seed)
        try:
            version, serving = wait_new_version(env, before, timeout=300)
            break
        except SystemExit as exc:
            print(f"  no release of the shifted file ({exc}); trying the other direction")
    else:
        raise SystemExit("the gate rejected both files: nothing to measure")
    retraining = get_backends(settings).registry.get(settings.model_name, version)
    with temporary_settings(updates={PREFECT_API_URL: settings.prefect_api_url}):
        from prefect.client.orchestration import get_client

        release = release_run(version, landed)
        with get_client(sync_client=True) as client:
            times = pipeline_times(
                client, release, retraining.tags["flow_run_id"], serving=serving, landed=landed
            )
    return breakdown(times), (serving - landed).total_seconds()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reuse", action="store_true", help="the stack of your settings")
    parser.add_argument("--keep", action="store_true", help="leave the fresh stack running")
    parser.add_argument("--rounds", type=int, default=1, help="measured files, one at a time")
    args = parser.parse_args(argv)
    print(f"uptime: {os.getloadavg()}")
    with stack(args.reuse, args.keep) as env:
        url = mlops(env, "url", "production") if mlops_ok(env, "url", "production") else ""
        if not url:
            print("warm-up: a first version for production (not measured) ...", flush=True)
            land(settings_of(env), "bench-warm-up.csv", 0.0, seed=0)
            wait_new_version(env, None, timeout=1200)
        results = []
        for round_no in range(args.rounds):
            print(f"round {round_no + 1}: landing a file ...", flush=True)
            result, wall = measure(env, round_no)
            results.append(result)
            print(f"\nround {round_no + 1}: landed -> serving {wall:.1f} s (observed)\n")
            print(result.to_markdown())
        if len(results) > 1:
            print(f"\nmedian of {len(results)} rounds (per stage):\n")
            print(median(results).to_markdown())
    print(f"uptime: {os.getloadavg()}")
    return 0


def median(results: list[Breakdown]) -> Breakdown:
    """Each stage's median over the rounds (so the total is not one round's)."""
    out = Breakdown(detection=float(np.median([r.detection for r in results])))
    for stage in out.work:
        out.work[stage] = float(np.median([r.work[stage] for r in results]))
    for part in out.orchestration:
        out.orchestration[part] = float(np.median([r.orchestration[part] for r in results]))
    return out


def mlops_ok(env: dict[str, str], *args: str) -> bool:
    result = subprocess.run([str(MLOPS), *args], env=env, capture_output=True, check=False)
    return result.returncode == 0


if __name__ == "__main__":
    sys.path.insert(0, str(REPO))
    raise SystemExit(main())
