"""The production URL in variants, side by side with our 2 direct processes, in one run.

Every variant is a whole production environment (HAProxy + 2 Docker replicas of the same
image, key, validation, request logs) deployed by the release code, with ONE change from
what a release deploys today; ``ours-2`` is our service as 2 host processes, the figure the
issue's target compares with (production >= 80% of it). All are started first, then measured
in interleaved rounds (wrk, 1 thread, 16 connections), so the ratios to ``ours-2`` of one run
can be compared even on a busy machine; the absolute figures cannot.

Variants (the change from the deployed production):

- ``deployed``: none;
- ``before``: ``engine-cgroup`` and ``no-pool`` together, production as issue 11 measured it;
- ``engine-cgroup``: the replicas in the engine's default cgroup (no ``cgroup_parent``): on
  cgroup v1 with the cgroupfs driver, all of them under ONE ``docker`` cgroup, with the CPU
  weight of one host process (``DockerTarget`` gives each a top-level one there);
- ``no-pool``: servers without ``pool-max-conn``: HAProxy 2.6 keeps no idle connection to
  a dynamic server then, so every request opens and closes one to a replica;
- ``processes``: the release as host processes (``ProcessTarget``) behind the same HAProxy;
- ``nbthread-1``: HAProxy with one thread (it starts one per CPU);
- ``maxconn-8``: at most 8 requests at once per replica, the rest queue in HAProxy;
- ``reuse-always``: ``http-reuse always`` (a client's first request may take an idle
  connection too).

Each line also shows the CPU time per request of HAProxy and of the replicas (the direct
processes for ``ours-2``), which the machine's load disturbs less than req/s; a
``<variant>/replica`` entry measures one replica of that variant without HAProxy, and
``ours-1`` our service as one host process.

    .venv/bin/python -m bench.production_ab [--only deployed,before,no-pool] [--rounds 3]
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from unittest import mock

from backends.local.envstate import free_port
from bench import report, systems, wrk
from bench.bench_scoring import build_model, cpu_seconds
from bench.production import build_image, docker_host
from bench.run import load_line, write_inputs

Options = dict[str, Any]


def _same(value: Any) -> Any:
    return value


def _global(line: str) -> Callable[[str], str]:
    return lambda cfg: cfg.replace("global\n", f"global\n    {line}\n", 1)


def _engine_cgroup(options: Options) -> Options:
    options.pop("cgroup_parent", None)
    return options


def _no_pool(server_options: str) -> str:
    return server_options.replace(" pool-max-conn -1", "")


@dataclass(frozen=True)
class Variant:
    """One change from the deployed production: to a replica's ``containers.run`` options,
    to HAProxy's config text, to the options of every server (``add server``: dynamic
    servers ignore ``default-server``), or replicas as host processes."""

    options: Callable[[Options], Options] = _same
    config: Callable[[str], str] = _same
    servers: Callable[[str], str] = _same
    processes: bool = False


VARIANTS = {
    "deployed": Variant(),
    "before": Variant(options=_engine_cgroup, servers=_no_pool),  # as issue 11 measured
    "engine-cgroup": Variant(options=_engine_cgroup),
    "no-pool": Variant(servers=_no_pool),
    "processes": Variant(processes=True),
    "nbthread-1": Variant(config=_global("nbthread 1")),
    "maxconn-8": Variant(servers=lambda s: f"{s} maxconn 8"),
    "reuse-always": Variant(config=lambda cfg: cfg.replace("reuse safe", "reuse always")),
}


def variant_target(name: str, client: Any, state_dir: Path, port: int) -> Any:
    """The target of variant ``name``: a ``DockerTarget`` with its run-option change, or a
    ``ProcessTarget``."""
    from backends.local.docker_target import DockerTarget
    from backends.local.process_target import ProcessTarget

    variant = VARIANTS[name]
    if variant.processes:
        return ProcessTarget(state_dir, {"production": port})

    class Changed(DockerTarget):
        def run_options(self, *args: Any, **kwargs: Any) -> Options:
            return variant.options(super().run_options(*args, **kwargs))

    return Changed(lambda: client, state_dir, {"production": port})


@contextlib.contextmanager
def deployed(
    name: str, client: Any, image: str, model_dir: Path, sha: str, work: Path
) -> Iterator[Any]:
    """Variant ``name`` of the production environment, deployed: yields (target, endpoint)."""
    from backends.local import haproxy
    from core.interfaces import ReleaseSpec

    variant = VARIANTS[name]
    render = haproxy.render
    target = variant_target(name, client, work / name, free_port())
    release = ReleaseSpec("diabetes-ridge", "bench", sha, image=image)
    if variant.processes:
        release = ReleaseSpec("diabetes-ridge", "bench", sha, model_uri=model_dir.as_uri())
    try:
        with (
            mock.patch.object(haproxy, "SERVER_OPTIONS", variant.servers(haproxy.SERVER_OPTIONS)),
            mock.patch.object(haproxy, "render", lambda *a: variant.config(render(*a))),
        ):
            yield target, target.deploy("production", release)
    finally:
        target.teardown("production")


def pids(target: Any) -> tuple[list[int], list[int]]:
    """HAProxy's PID and the replicas' PIDs of ``target``'s production environment."""
    state = target._load(target._files("production"))
    if target.kind == "process":
        replicas = [int(r["handle"]["pid"]) for r in state["current"]["replicas"]]
    else:
        replicas = [int(c.attrs["State"]["Pid"]) for c in target.containers("production")]
    return [int(state["proxy"]["pid"])], replicas


def cpu_us(pid_list: list[int], requests: int, before: float) -> float:
    """CPU µs per request of ``pid_list`` since ``before`` (their CPU seconds then)."""
    return (sum(map(cpu_seconds, pid_list)) - before) / max(requests, 1) * 1e6


def replica_cgroups(target: Any) -> list[str]:
    """The CPU cgroup of each replica of ``target``'s production environment."""
    found: list[str] = []
    if target.kind == "process":
        return found
    for container in target.containers("production"):
        pid = container.attrs["State"]["Pid"]
        for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
            if ":cpu," in line or ":cpu:" in line or line.startswith("0::"):
                found.append(f"{container.name}: {line}")
    return found


def main(argv: list[str] | None = None) -> int:
    """Deploy the variants, measure them and ``ours-2`` in interleaved rounds, print ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1, choices=(1, 100))
    parser.add_argument("--only", default="deployed,before,engine-cgroup,no-pool")
    args = parser.parse_args(argv)
    wanted = [n for n in args.only.split(",") if n]
    names = [n for n in wanted if n in VARIANTS]
    singles = [n.removesuffix("/replica") for n in wanted if n.endswith("/replica")]
    if set(wanted) - set(VARIANTS) - {f"{n}/replica" for n in names} - {"ours-1"}:
        parser.error(f"known variants: {', '.join(VARIANTS)}")
    import docker

    print(f"production A/B: {', '.join(names)} ({load_line()})", flush=True)
    with tempfile.TemporaryDirectory(prefix="mlops-ab-") as tmp, contextlib.ExitStack() as stack:
        work = Path(tmp)
        model_dir = work / "model"
        sha = build_model(model_dir)
        key_file, bodies = write_inputs(work)
        host = docker_host()
        image = build_image(host, model_dir)
        client = stack.enter_context(contextlib.closing(docker.DockerClient(base_url=host)))
        info = client.info()
        print(f"engine: cgroup v{info['CgroupVersion']}, driver {info['CgroupDriver']}")
        running: dict[str, systems.System] = {}
        direct = systems.ours_direct(2, free_port(), model_dir, sha, key_file, work)
        running["ours-2"] = stack.enter_context(systems.running(direct))
        procs: dict[str, tuple[list[int], list[int]]] = {
            "ours-2": ([], [p.pid for p in direct.procs])
        }
        if "ours-1" in wanted:
            one = systems.ours_direct(1, free_port(), model_dir, sha, key_file, work)
            running["ours-1"] = stack.enter_context(systems.running(one))
            procs["ours-1"] = ([], [p.pid for p in one.procs])
        for name in names:
            target, endpoint = stack.enter_context(
                deployed(name, client, image, model_dir, sha, work)
            )
            prod_key = work / f"{name}.key"
            prod_key.write_text(endpoint.key)
            running[name] = systems.System(name, endpoint.url, prod_key)
            procs[name] = pids(target)
            if name in singles:  # one of its replicas, without HAProxy
                replica = target._load(target._files("production"))["current"]["replicas"][0]
                url = f"http://127.0.0.1:{replica['port']}"
                running[f"{name}/replica"] = systems.System(name, url, prod_key)
                procs[f"{name}/replica"] = ([], procs[name][1])
            for line in replica_cgroups(target):
                print(f"  {name}: {line}")
        body = bodies[args.rows]
        for system in running.values():
            wrk.run(system.url + "/score", body, system.key_file, 2.0)
        results: dict[str, list[wrk.WrkResult]] = {k: [] for k in running}
        for round_no in range(1, args.rounds + 1):
            print(f"round {round_no}/{args.rounds} ({load_line()})", flush=True)
            for key, system in running.items():
                proxy, replicas = procs[key]
                before = [sum(map(cpu_seconds, p)) for p in (proxy, replicas)]
                result = wrk.run(system.url + "/score", body, system.key_file, args.seconds)
                results[key].append(result)
                used = [
                    cpu_us(p, result.requests, b) for p, b in zip(procs[key], before, strict=True)
                ]
                ratio = result.rps / max(results["ours-2"][-1].rps, 1)
                print(
                    f"  {key:<14} {result.rps:8,.0f} req/s  p50 {result.p50_ms:6.2f}"
                    f"  p99 {result.p99_ms:7.2f} ms  errors {result.errors}"
                    f"  vs ours-2 {ratio:.2f}  CPU µs/req: HAProxy {used[0]:3.0f},"
                    f" replicas {used[1]:3.0f}",
                    flush=True,
                )
    print(f"\nmedians, {args.rows} row(s), {args.rounds} x {args.seconds:g} s ({load_line()}):")
    print(table(results))
    return 0


def table(results: dict[str, list[wrk.WrkResult]]) -> str:
    """Medians per system, and the median (and range) of its per-round ratios to ours-2."""
    lines = [
        "| system | req/s | p50 / p99 ms | errors | vs ours-2 (median of per-round ratios) |",
        "|---|---:|---:|---:|---:|",
    ]
    for key, rs in results.items():
        s = report.summarize(rs)
        ratios = sorted(r.rps / max(o.rps, 1) for r, o in zip(rs, results["ours-2"], strict=True))
        spread = f"{ratios[len(ratios) // 2]:.2f} ({ratios[0]:.2f}-{ratios[-1]:.2f})"
        lines.append(
            f"| {key} | {s.rps:,.0f} | {s.p50_ms:.1f} / {s.p99_ms:.1f} | {s.errors} | {spread} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
