"""``make bench``: the scoring systems side by side on 127.0.0.1, then the other benchmarks.

Systems (all started first, then measured in interleaved rounds, same model):

- ``aml-1``, ``aml-2``: Azure ML's inference server, 1 and 2 workers (``.tools/aml-server``);
- ``ours-1``, ``ours-2``: our service as 1 and 2 host processes (request logs on);
- ``production``: the production URL exactly as deployed (HAProxy + 2 Docker replicas, key,
  validation, request logs), brought up by the release code;
- ``ceiling``: a raw ASGI app with orjson and a numpy dot product, 2 workers.

Each measurement is one wrk process (1 thread, 16 connections) against one system and one
payload (1 row, 100 rows); every round measures each pair once, in the same order, and the
table shows the medians over rounds. Then ``bench/bench_pipeline.py`` and
``bench/bench_retraining.py`` run, where present.

    make bench                         # 3 rounds x 10 s (about 10 minutes)
    make bench BENCH_ARGS=--quick      # 1 round x 3 s: checks the harness, not the figures
    .venv/bin/python -m bench.run --only ours-1,production --seconds 15 --rounds 2
"""

from __future__ import annotations

import argparse
import contextlib
import os
import secrets
import subprocess
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import orjson

from backends.local.envstate import free_port
from bench import report, systems, wrk
from bench.bench_scoring import build_model

EXTRA = ("bench_pipeline", "bench_retraining")  # written by others; run when present
LABELS = {
    "aml-1": "Azure ML inference server, 1 worker",
    "aml-2": "Azure ML inference server, 2 workers",
    "ours-1": "our service, 1 process, direct",
    "ours-2": "our service, 2 processes, direct",
    "production": "**production URL** (HAProxy + 2 Docker replicas)",
    "ours-1-collect": "our service, 1 process, direct, collecting every row",
    "production-collect": "production URL, collecting every row",
    "ceiling": "raw ASGI + orjson + numpy dot, 2 workers (ceiling)",
}


def load_line() -> str:
    """``uptime``'s load averages, to print beside every figure."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f}, {five:.2f}, {fifteen:.2f} on {os.cpu_count()} cores"


def write_inputs(work: Path) -> tuple[Path, dict[int, Path]]:
    """The key file (0600) and one request body per payload size (real diabetes rows)."""
    from training.data import reference_dataset
    from training.schema import FEATURES

    key_file = work / "api_key"
    key_file.touch(mode=0o600)
    key_file.write_text(secrets.token_urlsafe(24))
    rows = reference_dataset()[list(FEATURES)].to_numpy().tolist()
    bodies = {}
    for n in (1, 100):
        bodies[n] = work / f"body-{n}.json"
        bodies[n].write_bytes(orjson.dumps({"data": rows[:n]}))
    return key_file, bodies


def check_same_answer(running: dict[str, systems.System], body: Path) -> None:
    """Every system must give the same predictions before any is measured."""
    answers = {}
    for key, system in running.items():
        headers = {"Content-Type": "application/json"}
        if system.key_file is not None:
            headers["Authorization"] = f"Bearer {system.key_file.read_text().strip()}"
        response = httpx.post(system.url + "/score", content=body.read_bytes(), headers=headers)
        response.raise_for_status()
        answers[key] = response.json()["predictions"]
    first = next(iter(answers.values()))
    for key, got in answers.items():
        if (
            len(got) != len(first)
            or max(abs(a - b) for a, b in zip(got, first, strict=True)) > 1e-6
        ):
            raise SystemExit(f"{key} predicts {got[:3]}..., others {first[:3]}...: not comparable")
    print(f"all {len(answers)} systems agree on the predictions of {len(first)} row(s)")


def start_all(
    stack: contextlib.ExitStack,
    wanted: list[str],
    work: Path,
    key_file: Path,
    sink_kind: str = "discard",
) -> dict[str, systems.System]:
    """Start the wanted systems (each on a free port) and wait until each answers."""
    model_dir = work / "model"
    sha = build_model(model_dir)
    makers: dict[str, Callable[[int], systems.System]] = {
        "aml-1": lambda port: systems.aml_server(1, port, model_dir, work),
        "aml-2": lambda port: systems.aml_server(2, port, model_dir, work),
        "ours-1": lambda port: systems.ours_direct(1, port, model_dir, sha, key_file, work),
        "ours-2": lambda port: systems.ours_direct(2, port, model_dir, sha, key_file, work),
        "ceiling": lambda port: systems.ceiling(2, port, model_dir, key_file, work),
    }
    sink = None
    if any(key.endswith("-collect") for key in wanted):
        from bench.collect import sink as collect_sink

        sink = stack.enter_context(collect_sink(sink_kind, work))
        makers["ours-1-collect"] = lambda port: systems.ours_direct(
            1, port, model_dir, sha, key_file, work, sink.env("ours-1-collect", work)
        )
    running: dict[str, systems.System] = {}
    for key in wanted:
        if key in ("production", "production-collect"):
            from bench.production import deployed

            collection = sink.collection if sink and key == "production-collect" else None
            targets = work / f"targets-{key}"
            prod = stack.enter_context(deployed(model_dir, targets, free_port(), collection))
            prod_key = work / f"{key}_key"
            prod_key.touch(mode=0o600)
            prod_key.write_text(prod.endpoint.key)
            running[key] = systems.System(LABELS[key], prod.endpoint.url, prod_key)
            print(f"production: {prod.image} behind {prod.endpoint.url}")
        else:
            running[key] = stack.enter_context(systems.running(makers[key](free_port())))
    return running


def measure(
    running: dict[str, systems.System], bodies: dict[int, Path], args: argparse.Namespace
) -> report.Table:
    """Warm every system up, then the interleaved rounds; returns the medians."""
    options = {"connections": args.connections}
    for system in running.values():
        for body in bodies.values():
            wrk.run(system.url + "/score", body, system.key_file, args.warmup, **options)
    results: dict[str, dict[int, list[wrk.WrkResult]]] = {
        k: {n: [] for n in bodies} for k in running
    }
    for round_no in range(1, args.rounds + 1):
        print(f"round {round_no}/{args.rounds} ({load_line()})")
        for n, body in bodies.items():
            for key, system in running.items():
                result = wrk.run(
                    system.url + "/score", body, system.key_file, args.seconds, **options
                )
                results[key][n].append(result)
                print(
                    f"  {key:<10} {n:>3} row(s) {result.rps:9,.0f} req/s"
                    f"  p50 {result.p50_ms:6.2f} ms  p99 {result.p99_ms:6.2f} ms"
                    f"  errors {result.errors}"
                )
    return {k: {n: report.summarize(rs) for n, rs in by_n.items()} for k, by_n in results.items()}


def _model_info(system: systems.System) -> dict[str, Any]:
    key = system.key_file.read_text().strip() if system.key_file else ""
    answer = httpx.get(system.url + "/model", headers={"Authorization": f"Bearer {key}"})
    return dict(answer.json()) if answer.status_code == 200 else {}


def run_extra(quick: bool) -> None:
    """``bench/bench_pipeline.py`` and ``bench/bench_retraining.py``, each in its own
    process (their memory is their own), when the file exists."""
    for name in EXTRA:
        if not (systems.REPO / "bench" / f"{name}.py").exists():
            print(f"\n{name}: not present, skipped")
            continue
        print(f"\n=== bench/{name}.py ({load_line()})", flush=True)
        code = f"import sys; from bench.{name} import main; sys.exit(main())"
        argv = [sys.executable, "-c", code, *(["--quick"] if quick else [])]
        done = subprocess.run(argv, cwd=systems.REPO, check=False)
        if done.returncode:
            print(f"{name} exited with {done.returncode}")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="1 round x 3 s: check the harness")
    parser.add_argument("--seconds", type=float, default=10.0, help="seconds per wrk run")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (medians)")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of warm-up per pair")
    parser.add_argument("--connections", type=int, default=16)
    default = ",".join(key for key in LABELS if not key.endswith("-collect"))
    parser.add_argument("--only", default=default, help="systems, comma-separated")
    parser.add_argument("--sizes", default="1,100", help="rows per request, comma-separated")
    parser.add_argument("--no-extra", action="store_true", help="skip pipeline and retraining")
    parser.add_argument(
        "--collect", action="store_true", help="add ours-1 and production collecting every row"
    )
    parser.add_argument(
        "--collect-sink",
        choices=("discard", "azurite"),
        default="discard",
        help="where collected rows go: a stand-in for remote Blob that keeps nothing "
        "(the service's own cost) or a local Azurite on the same cores (bench/collect.py)",
    )
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds, args.warmup = 3.0, 1, 1.0
    args.only = [key.strip() for key in args.only.split(",") if key.strip()]
    if args.collect:
        args.only += [f"{key}-collect" for key in ("ours-1", "production") if key in args.only]
    unknown = set(args.only) - set(LABELS)
    if unknown:
        parser.error(f"unknown systems {sorted(unknown)}; known: {', '.join(LABELS)}")
    args.sizes = [int(n) for n in args.sizes.split(",")]
    return args


def main(argv: list[str] | None = None) -> int:
    """Start the systems, measure, print the table and the targets, run the other benches."""
    args = parse_args(argv)
    print(
        f"make bench: {', '.join(args.only)}; {args.rounds} round(s) x {args.seconds:g} s, "
        f"wrk 1 thread {args.connections} connections ({load_line()})"
    )
    with tempfile.TemporaryDirectory(prefix="mlops-bench-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        key_file, all_bodies = write_inputs(work)
        bodies = {n: all_bodies[n] for n in args.sizes}
        running = start_all(stack, args.only, work, key_file, args.collect_sink)
        check_same_answer(running, all_bodies[100])
        table = measure(running, bodies, args)
        for key in (k for k in running if k.endswith("-collect")):
            stats: dict[str, object] = _model_info(running[key]).get("collection", {})
            print(f"{key}: " + ", ".join(f"{k} {v}" for k, v in stats.items()))
        if any(k.endswith("-collect") for k in running):
            print(f"collection sink: {args.collect_sink}")
    print(
        f"\nmedians of {args.rounds} round(s) x {args.seconds:g} s, wrk -t1 -c{args.connections}"
        f" ({load_line()}):\n"
    )
    print(report.markdown(table, {k: LABELS[k] for k in args.only}, args.sizes))
    print("\ntargets (issue 11):")
    for check in report.checks(table):
        print("  " + check.line())
    if not args.no_extra:
        run_extra(args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
