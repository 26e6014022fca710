"""Single-row ``/score`` throughput: our service against a typical FastAPI + pydantic app.

Both servers run as subprocesses on loopback with one uvicorn worker each, serve the same
model (trained here by ``training`` on scikit-learn's diabetes data) and must return the
same prediction before they are measured. The load is a bounded number of requests over a
fixed number of keep-alive connections, from a raw-socket asyncio client (default) or an
async httpx client (``--client httpx``: it spends more CPU per request than either server,
so on 2 cores it caps both); each run also stops at a time limit. Rounds alternate between
the servers and the best round counts. Prints req/s, latency percentiles and the server's
CPU time per request for both, and the ratio ours/baseline.

    .venv/bin/python -m bench.bench_scoring [--requests 4000] [--rounds 3] [--client httpx]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from backends.local.envstate import free_port
from bench.systems import scoring_env, stop, wait_ready
from training.artifacts import MODEL_FILE, sha256_file

REPO = Path(__file__).resolve().parents[1]
ROW = [0.038, 0.051, 0.062, 0.022, -0.044, -0.035, -0.043, -0.003, 0.020, -0.018]


def build_model(folder: Path) -> str:
    """Train like the project does (default parameters) into ``folder``; return the sha256."""
    from training.data import reference_dataset, to_training_frame
    from training.params import TrainingParams
    from training.train import train, write_artifacts

    result = train(to_training_frame(reference_dataset()), TrainingParams())
    paths = write_artifacts(result, folder)
    return sha256_file(paths[MODEL_FILE])


async def load_httpx(
    url: str, key: str, requests: int, concurrency: int, time_limit: float
) -> tuple[float, list[float], int]:
    """Send up to ``requests`` single-row requests; return req/s, latencies (ms), errors."""
    body = json.dumps({"data": [ROW]}).encode()
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    latencies: list[float] = []
    errors = 0
    remaining = requests
    deadline = time.monotonic() + time_limit

    async with httpx.AsyncClient(base_url=url, limits=limits, timeout=10) as client:

        async def worker() -> None:
            nonlocal remaining, errors
            while remaining > 0 and time.monotonic() < deadline:
                remaining -= 1
                sent = time.perf_counter()
                response = await client.post("/score", content=body, headers=headers)
                latencies.append((time.perf_counter() - sent) * 1000)
                errors += response.status_code != 200

        started = time.perf_counter()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return len(latencies) / elapsed, latencies, errors


async def load_raw(
    url: str, key: str, requests: int, concurrency: int, time_limit: float
) -> tuple[float, list[float], int]:
    """Like ``load_httpx`` with pre-built HTTP/1.1 keep-alive requests on raw sockets.

    httpx spends more CPU per request than the server under test; on a 2-core machine the
    client then caps both servers. This client costs a few µs per request.
    """
    host, port = url.removeprefix("http://").split(":")
    body = json.dumps({"data": [ROW]}).encode()
    request = (
        f"POST /score HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {key}\r\n"
        f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    ).encode() + body
    latencies: list[float] = []
    errors = 0
    remaining = requests
    deadline = time.monotonic() + time_limit

    async def worker() -> None:
        nonlocal remaining, errors
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            while remaining > 0 and time.monotonic() < deadline:
                remaining -= 1
                sent = time.perf_counter()
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                latencies.append((time.perf_counter() - sent) * 1000)
                errors += not head.startswith(b"HTTP/1.1 200")
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return len(latencies) / (time.perf_counter() - started), latencies, errors


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process (Linux ``/proc``; NaN elsewhere)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return float("nan")
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def measure(name: str, url: str, pid: int, key: str, args: argparse.Namespace) -> float:
    """Run the load once against one server, print and return req/s.

    Also prints the server's CPU time per request, which other load on the machine
    disturbs much less than req/s.
    """
    load = load_raw if args.client == "raw" else load_httpx
    cpu_before = cpu_seconds(pid)
    rate, latencies, errors = asyncio.run(
        load(url, key, args.requests, args.concurrency, args.time_limit)
    )
    cpu_us = (cpu_seconds(pid) - cpu_before) / len(latencies) * 1e6
    cuts = statistics.quantiles(latencies, n=100)
    print(
        f"  {name:<30} {rate:7.0f} req/s  p50 {cuts[49]:6.2f} ms  p99 {cuts[98]:6.2f} ms  "
        f"server CPU {cpu_us:5.0f} µs/req  n={len(latencies)} errors={errors}"
    )
    return rate


def check_same_answer(urls: dict[str, str], key: str) -> None:
    """Both servers must return the same prediction before they are compared."""
    answers = {}
    for name, url in urls.items():
        response = httpx.post(
            url + "/score", json={"data": [ROW]}, headers={"Authorization": f"Bearer {key}"}
        )
        response.raise_for_status()
        answers[name] = response.json()["predictions"][0]
    if max(answers.values()) - min(answers.values()) > 1e-9:
        raise SystemExit(f"servers disagree: {answers}")
    print(f"both servers predict {answers[next(iter(answers))]:.9f} for the probe row")


def main() -> None:
    """Start both servers, measure them one after the other, stop them."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000, help="requests per server")
    parser.add_argument("--concurrency", type=int, default=16, help="open connections")
    parser.add_argument("--time-limit", type=float, default=20.0, help="seconds per run")
    parser.add_argument("--rounds", type=int, default=3, help="alternating runs per server")
    # httpx costs more CPU per request than either server: on 2 cores it measures itself.
    parser.add_argument("--client", choices=("raw", "httpx"), default="raw")
    args = parser.parse_args()
    key = secrets.token_hex(16)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "model"
        sha = build_model(folder)
        ours_port, base_port = free_port(), free_port()
        key_file = Path(tmp) / "api-key"
        key_file.write_text(key)
        env = scoring_env(folder, sha, key_file, ours_port)
        baseline_script = Path(__file__).with_name("baseline_fastapi.py")
        baseline_cmd = [sys.executable, str(baseline_script), str(base_port)]
        baseline_cmd += [str(folder / MODEL_FILE), key]
        procs = [
            subprocess.Popen(
                cmd, env=cmd_env, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
            )
            for cmd, cmd_env in (([sys.executable, "-m", "scoring"], env), (baseline_cmd, None))
        ]
        try:
            ours_url, base_url = f"http://127.0.0.1:{ours_port}", f"http://127.0.0.1:{base_port}"
            wait_ready(ours_url, [procs[0]], timeout=60)
            wait_ready(base_url, [procs[1]], timeout=60)
            urls = {"baseline FastAPI+pydantic": base_url, "scoring (ASGI+orjson+numpy)": ours_url}
            pids = dict(zip(urls, (procs[1].pid, procs[0].pid), strict=True))
            check_same_answer(urls, key)
            warm = argparse.Namespace(**{**vars(args), "requests": 300, "time_limit": 10})
            for name, url in urls.items():
                measure(name + " (warm-up)", url, pids[name], key, warm)
            print(
                f"single-row POST /score: {args.requests} requests x {args.rounds} rounds per "
                f"server, {args.concurrency} connections, {args.client} client, "
                f"{os.cpu_count()} cores (rounds alternate; best round counts)"
            )
            best = dict.fromkeys(urls, 0.0)
            for round_no in range(1, args.rounds + 1):
                print(f"round {round_no}")
                for name, url in urls.items():
                    best[name] = max(best[name], measure(name, url, pids[name], key, args))
            baseline, ours = best.values()
            print(f"best: baseline {baseline:.0f} req/s, ours {ours:.0f} req/s")
            print(f"ratio ours/baseline: {ours / baseline:.2f}x")
        finally:
            stop(procs)


if __name__ == "__main__":
    main()
