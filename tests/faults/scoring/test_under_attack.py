"""The scoring service under saturation load and a slow-client attack at the same time.

A real ``python -m scoring`` process on loopback, as production runs it (one process,
default connection cap). A load generator in a process of its own keeps it saturated:
32 keep-alive clients, each sending the next ``POST /score`` as soon as its answer arrived
(tests/utils/loadgen.py says why Python rather than wrk). First alone, for a baseline; then
again while a third process holds hundreds of connections open that send nothing, send
their headers a byte a second, or their body a byte a second, more than the connection cap,
each reopened as soon as the service drops it.

Asserted: every normal request is answered 200 (no 5xx at all: the slow clients are the ones
cut off, the normal clients are served); the p99 latency under attack stays within 5× the
baseline's (or 250 ms, whichever is larger: this machine's cores are shared) and throughput
keeps a quarter of it; every slow connection is closed by the service within its timeout
(plus a generous scheduling slack: the machine is shared), most of them within the timeout
itself, answered 408 or nothing (a connection evicted to make room before its timeout gets
the same).
"""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from pathlib import Path
from typing import Any

from tests.utils.figures import ReliabilityFigures
from tests.utils.scoring_process import REPO, scoring_service

logger = logging.getLogger(__name__)
TIMEOUT = 2  # header, body and keep-alive timeouts of the service under attack
MAX_CONNECTIONS = 256  # the default cap (scoring.settings)
CONNECTIONS = 32  # normal keep-alive clients
LOAD_SECONDS = 6
ATTACKERS = {"idle": 200, "heads": 100, "bodies": 50}  # 350 > MAX_CONNECTIONS
# Seconds past its timeout a slow connection may still be open, as its client sees it: the
# service is saturated on a shared 2-core machine, and a connection waits in the kernel's
# accept queue before the service's clock starts (seen: up to 4.5 s late at a load average
# of 8). A service without the timeouts holds them the whole attack (ATTACK_SECONDS).
SLACK = 5.0
ATTACK_SECONDS = LOAD_SECONDS + 4  # > TIMEOUT + SLACK
P99_FLOOR = 0.25  # seconds


def _generator(out: Path, *args: object) -> tuple[subprocess.Popen[str], Path]:
    proc = subprocess.Popen(
        [sys.executable, "-m", "tests.utils.loadgen", out, *map(str, args)],
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    return proc, out


def _result(generator: tuple[subprocess.Popen[str], Path], timeout: float) -> dict[str, Any]:
    proc, out = generator
    try:
        _, err = proc.communicate(timeout=timeout)
    finally:  # a generator that hangs must not outlive the test
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, err[-3000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def _p99(latencies: list[float]) -> float:
    ordered = sorted(latencies)
    return ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]


def test_normal_clients_served_while_slow_clients_are_cut_off(
    model_dir: Path,
    model_sha: str,
    api_key: str,
    reliability_figures: ReliabilityFigures,
    tmp_path: Path,
) -> None:
    timeouts = {f"{name}_timeout": TIMEOUT for name in ("header", "body", "keep_alive")}
    with scoring_service(
        model_dir, model_sha, api_key, max_connections=MAX_CONNECTIONS, **timeouts
    ) as service:
        url, load = service.url, ("load", service.url, api_key, LOAD_SECONDS, CONNECTIONS)
        baseline = _result(_generator(tmp_path / "baseline.json", *load), 60)
        attackers = _generator(
            tmp_path / "attack.json", "attack", url, api_key, ATTACK_SECONDS, *ATTACKERS.values()
        )
        try:  # the attackers connect within a second; the load starts once they are in
            attackers[0].wait(timeout=1.0)
        except subprocess.TimeoutExpired:
            pass
        attacked = _result(_generator(tmp_path / "attacked.json", *load), 60)
        attack = _result(attackers, ATTACK_SECONDS + 30)

    statuses = baseline["statuses"] + attacked["statuses"]
    failed = sum(status != 200 for status in statuses)
    n5xx = sum(status >= 500 for status in statuses)
    reliability_figures.add("scoring under attack", failed_requests=failed, n5xx=n5xx)

    base_p99, attack_p99 = _p99(baseline["latencies"]), _p99(attacked["latencies"])
    base_rate, attack_rate = len(baseline["statuses"]), len(attacked["statuses"])
    logger.info(  # the measured numbers (pytest -rA, or --log-cli-level=INFO)
        "baseline %d requests p99 %.1f ms; under attack %d requests p99 %.1f ms; "
        "%d slow connections",
        base_rate, base_p99 * 1e3, attack_rate, attack_p99 * 1e3, len(attack["connections"]),
    )  # fmt: skip
    refused = {s: attacked["statuses"].count(s) for s in set(attacked["statuses"]) - {200}}
    assert failed == 0, f"normal requests not served: {refused} (0 = no answer)"
    bound = max(5 * base_p99, P99_FLOOR)
    assert attack_p99 <= bound, f"p99 {attack_p99 * 1e3:.1f} ms > {bound * 1e3:.1f} ms"
    assert attack_rate >= base_rate / 4, (base_rate, attack_rate)

    connections = attack["connections"]
    kinds = {c["kind"] for c in connections}
    assert kinds == set(ATTACKERS), kinds
    assert len(connections) > sum(ATTACKERS.values())  # they were dropped and came back
    held = [c for c in connections if not c["closed"] or c["open"] > TIMEOUT + SLACK]
    spread = {
        kind: sorted(round(c["open"], 2) for c in connections if c["kind"] == kind)[::50]
        for kind in ATTACKERS
    }
    lag = attack["lag"]  # the attackers' own delay, to tell a busy client from a slow service
    assert not held, f"{len(held)}/{len(connections)} held > {TIMEOUT} s: {spread}, lag {lag}"
    # (a lag near SLACK means the generator itself was starved: rerun on a quieter machine)
    # Most are cut off within the timeout itself (or sooner: evicted to make room).
    slow = sorted(c["open"] for c in connections if c["kind"] != "idle")
    assert slow[len(slow) // 2] <= TIMEOUT + 1.0, spread
    replies = {c["reply"][:12] for c in connections}
    assert replies <= {"", "HTTP/1.1 408"}, replies
    # Body drippers sent whole headers (so are mid-request, never evicted): they are told
    # why (a reset may overtake a few answers). Idle and header drippers evicted before their
    # first byte are closed without a word, as a client that sent nothing is.
    bodies = [c for c in connections if c["kind"] == "bodies"]
    told = [c for c in bodies if c["reply"].startswith("HTTP/1.1 408")]
    assert len(told) >= len(bodies) // 2, (len(told), len(bodies))
    assert "Traceback" not in service.output
