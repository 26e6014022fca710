"""The systems ``make bench`` compares, each started on 127.0.0.1 and stopped afterwards.

- the Azure ML inference server (``azureml-inference-server-http`` in ``.tools/aml-server``,
  its own virtualenv: its pins fight the project's) with ``bench/aml_score.py``;
- our service as host processes (``bench/serve_direct.py``: ``scoring`` itself);
- the production URL, deployed by the release code (``bench/production.py``);
- the ceiling: ``bench/raw_asgi.py`` under uvicorn.

Every process writes its logs to a file in the run's folder (nothing is discarded: the
request logs are part of what is measured).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
AML_VENV = REPO / ".tools" / "aml-server"
MODEL_NAME = "diabetes-ridge"


@dataclass
class System:
    """A running system under test: where to send requests and what to stop afterwards."""

    name: str
    url: str  # base URL; requests go to url + "/score"
    key_file: Path | None  # None: the system checks no key
    procs: list[subprocess.Popen[bytes]] = field(default_factory=list)
    note: str = ""


def wait_ready(url: str, procs: list[subprocess.Popen[bytes]], timeout: float = 90) -> None:
    """Poll ``GET /`` until 200; fail if a process dies or the timeout passes."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                raise RuntimeError(f"{proc.args!r} exited with {proc.returncode}")
        with contextlib.suppress(httpx.TransportError):
            if httpx.get(url + "/", timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} not ready after {timeout:.0f} s")


def _spawn(argv: list[str], env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT)


def spawn_python(args: list[str], log: Path) -> subprocess.Popen[bytes]:
    """``python ARGS`` of this environment, with this checkout importable, output to ``log``."""
    return _spawn([sys.executable, *args], _base_env() | {"PYTHONPATH": str(REPO)}, log)


def stop(procs: list[subprocess.Popen[bytes]]) -> None:
    """SIGTERM each process, SIGKILL those still there after 15 s."""
    for proc in procs:
        if proc.poll() is None:
            proc.terminate()
    for proc in procs:
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith(("SCORING_", "MLOPS_"))}


@contextlib.contextmanager
def running(system: System, timeout: float = 90) -> Iterator[System]:
    """Wait until ``system`` answers, yield it, stop its processes."""
    try:
        wait_ready(system.url, system.procs, timeout)
        yield system
    finally:
        stop(system.procs)


def aml_server(workers: int, port: int, model_dir: Path, work: Path) -> System:
    """Azure ML's inference server with ``workers`` gunicorn workers.

    The server's own launcher (``azmlinfsrv``, ``amlserver_linux.run``) always binds
    0.0.0.0; this is its gunicorn command line with 127.0.0.1 instead (``-w`` is what its
    ``--worker_count`` / ``WORKER_COUNT`` sets). Access logs go to stdout, as it sets them.
    It has no key check: in Azure the endpoint's front end does that.
    """
    python = AML_VENV / "bin" / "python"
    if not python.exists():
        raise RuntimeError(f"{python} is missing: run `make .tools/aml-server/.installed`")
    root = work / f"aml-{workers}"
    root.mkdir(parents=True, exist_ok=True)
    env = _base_env() | {
        "AZUREML_ENTRY_SCRIPT": str(REPO / "bench" / "aml_score.py"),
        "AZUREML_MODEL_DIR": str(model_dir),
        "AML_APP_ROOT": str(root),
        "PYTHONPATH": "",
    }
    argv = [
        str(python), "-m", "gunicorn", "-b", f"127.0.0.1:{port}", "-w", str(workers),
        "--timeout", "300", "--access-logfile", "-", "--error-logfile", "/dev/null",
        "azureml_inference_server_http.server.entry:app",
    ]  # fmt: skip
    proc = _spawn(argv, env, work / f"aml-{workers}.log")
    return System(
        f"AML inference server, {workers} worker(s)",
        f"http://127.0.0.1:{port}",
        None,
        [proc],
        "no key check",
    )


def scoring_env(model_dir: Path, sha: str, key_file: Path, port: int) -> dict[str, str]:
    """The ``SCORING_*`` variables of our service on 127.0.0.1:``port``."""
    return _base_env() | {
        "PYTHONPATH": str(REPO),
        "SCORING_MODEL_DIR": str(model_dir),
        "SCORING_MODEL_NAME": MODEL_NAME,
        "SCORING_MODEL_VERSION": "bench",
        "SCORING_MODEL_SHA256": sha,
        "SCORING_API_KEY_FILE": str(key_file),
        "SCORING_HOST": "127.0.0.1",
        "SCORING_PORT": str(port),
    }


def ours_direct(
    processes: int,
    port: int,
    model_dir: Path,
    sha: str,
    key_file: Path,
    work: Path,
    extra_env: dict[str, str] | None = None,
) -> System:
    """Our service as ``processes`` host processes sharing one port (request logs on;
    ``extra_env``: more ``SCORING_*`` settings, e.g. collection)."""
    env = scoring_env(model_dir, sha, key_file, port) | (extra_env or {})
    script = str(REPO / "bench" / "serve_direct.py")
    procs = [
        _spawn([sys.executable, script], env, work / f"ours-{processes}-{i}.log")
        for i in range(processes)
    ]
    return System(
        f"our service, {processes} direct process(es)", f"http://127.0.0.1:{port}", key_file, procs
    )


def ceiling(workers: int, port: int, model_dir: Path, key_file: Path, work: Path) -> System:
    """The raw ASGI app under uvicorn (httptools, uvloop), ``workers`` processes."""
    env = _base_env() | {
        "PYTHONPATH": str(REPO),
        "BENCH_MODEL_FILE": str(model_dir / "model.joblib"),
        "BENCH_KEY_FILE": str(key_file),
    }
    argv = [
        sys.executable, "-m", "uvicorn", "bench.raw_asgi:app", "--host", "127.0.0.1",
        "--port", str(port), "--workers", str(workers), "--no-access-log",
        "--log-level", "warning", "--http", "httptools", "--loop", "uvloop",
    ]  # fmt: skip
    proc = _spawn(argv, env, work / f"ceiling-{workers}.log")
    return System(
        f"raw ASGI + orjson + numpy dot, {workers} workers (ceiling)",
        f"http://127.0.0.1:{port}",
        key_file,
        [proc],
        "no validation, no logs",
    )
