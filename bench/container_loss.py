"""Where does a scoring replica lose throughput in a container? One change at a time.

Every variant is ONE replica of the same scoring image (or the same service as a host
process), started side by side, then measured in interleaved rounds with wrk (1 thread,
16 connections, 1 row; medians). ``deployed`` runs the container exactly as
``DockerTarget`` does (its own ``run_options``); every other container variant changes one
thing from it:

- ``host-venv``: ``python -m scoring`` on the host, the project's ``.venv`` (request logs to
  a file), the figure a container is compared with;
- ``host-image-python``: the image's own file system (Debian's python3.11 and the image's
  virtualenv) run on the host with ``chroot``: the interpreter build without the container;
- ``seccomp-unconfined``: ``--security-opt seccomp=unconfined``;
- ``log-per-line``: each log line written at once (``SCORING_LOG_FLUSH_INTERVAL=0``, as
  before batching) through the container's stdout pipe, containerd-shim and dockerd's
  json-file writer;
- ``log-driver-none``: the request log lines go nowhere (``--log-driver none``);
- ``no-request-log``: the service writes no request log (``SCORING_LOG_LEVEL=WARNING``);
- ``cpuset-1``: the replica pinned to one CPU (``--cpuset-cpus 1``);
- ``no-healthcheck``: without the image's HEALTHCHECK (a Python process every 10 s);
- ``engine-cgroup``: the engine's default cgroup instead of the top-level one ``DockerTarget``
  gives a replica on cgroup v1 with the cgroupfs driver (``cgroup_parent="/"``): there every
  container of the engine (every variant here too) shares ONE CPU weight against each busy
  host process (wrk, HAProxy, anything else running).

Besides req/s, each line shows CPU time per request: the replica's process, and its
containerd-shim plus dockerd (the engine is shared: dockerd's share includes whatever
else it serves meanwhile), which load on the machine disturbs much less than req/s.

The network path needs no variant: replicas use the host network (the engine has no bridge,
so there is no docker-proxy or NAT between client and replica); the script checks that no
``docker-proxy`` runs. uvloop and httptools: the script asks the image which loop and HTTP
parser uvicorn gets.

    .venv/bin/python -m bench.container_loss [--seconds 10] [--rounds 3] [--only a,b]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from statistics import median
from typing import Any

from backends.local.envstate import free_port
from bench import report, systems, wrk
from bench.bench_scoring import build_model, cpu_seconds
from bench.production import MODEL_NAME, build_image, docker_host
from bench.run import load_line, write_inputs
from training.artifacts import MODEL_FILE, sha256_file

VARIANTS = (
    "host-venv",
    "host-image-python",
    "deployed",
    "seccomp-unconfined",
    "log-driver-none",
    "no-request-log",
    "cpuset-1",
    "no-healthcheck",
    "engine-cgroup",
)
# Each container variant: what it changes in DockerTarget's run options.
CHANGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "deployed": lambda options: None,
    "seccomp-unconfined": lambda o: o.setdefault("security_opt", []).append("seccomp=unconfined"),
    "log-per-line": lambda o: o["environment"].update(SCORING_LOG_FLUSH_INTERVAL="0"),
    "log-driver-none": lambda o: o.update(log_config={"type": "none"}),
    "no-request-log": lambda o: o["environment"].update(SCORING_LOG_LEVEL="WARNING"),
    "cpuset-1": lambda o: o.update(cpuset_cpus="1"),
    "no-healthcheck": lambda o: o.update(healthcheck={"test": ["NONE"]}),
    "engine-cgroup": lambda o: o.pop("cgroup_parent", None),
}


def container_variant(
    target: Any, client: Any, name: str, image: str, sha: str, key: str, port: int
) -> Any:
    """Start one replica the way ``target`` does, with ``CHANGES[name]`` applied."""
    from core.interfaces import ReleaseSpec

    release = ReleaseSpec(MODEL_NAME, "bench", sha, image=image)
    options = target.run_options("production", release, port, key)
    CHANGES[name](options)
    options["labels"]["mlops.bench"] = name
    return client.containers.run(**options)


def export_rootfs(client: Any, image: str, into: Path) -> Path:
    """The image's file system, unpacked under ``into`` (for the chroot variant)."""
    container = client.containers.create(image)
    try:
        archive = into / "rootfs.tar"
        with archive.open("wb") as out:
            for chunk in container.export():
                out.write(chunk)
    finally:
        container.remove(force=True)
    root = into / "rootfs"
    with tarfile.open(archive) as tar:
        tar.extractall(root, filter="fully_trusted")
    archive.unlink()
    return root


def chroot_variant(root: Path, sha: str, key: str, port: int, log: Path) -> Any:
    """The image's interpreter and virtualenv as a host process (chroot, host network)."""
    (root / "run" / "secrets").mkdir(parents=True, exist_ok=True)
    (root / "run" / "secrets" / "scoring_api_key").write_text(key)
    env = {
        "PATH": "/opt/venv/bin:/usr/bin:/bin", "PYTHONPATH": "/app", "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1", "SCORING_MODEL_DIR": "/model",
        "SCORING_MODEL_NAME": MODEL_NAME, "SCORING_MODEL_VERSION": "bench",
        "SCORING_MODEL_SHA256": sha, "SCORING_API_KEY_FILE": "/run/secrets/scoring_api_key",
        "SCORING_HOST": "127.0.0.1", "SCORING_PORT": str(port),
    }  # fmt: skip
    chroot = shutil.which("chroot") or "/usr/sbin/chroot"
    argv = [chroot, "--userspec=10001:10001", str(root), "/opt/venv/bin/python", "-m", "scoring"]
    with log.open("ab") as out:
        return subprocess.Popen(argv, env=env, cwd="/", stdout=out, stderr=subprocess.STDOUT)


def image_facts(client: Any, image: str) -> str:
    """Which event loop and HTTP parser uvicorn picks in the image, and its Python."""
    code = (
        "import sys, importlib.util as u; print(sys.version.split()[0],"
        " 'uvloop' if u.find_spec('uvloop') else 'asyncio',"
        " 'httptools' if u.find_spec('httptools') else 'h11')"
    )
    out = client.containers.run(image, ["python", "-c", code], remove=True, network_mode="none")
    return bytes(out).decode().strip()


def _pids(pattern: str, exact: bool = False) -> list[int]:
    found = subprocess.run(["pgrep", "-x" if exact else "-f", pattern], capture_output=True)
    return [int(pid) for pid in found.stdout.split()]


def _container_pids(container: Any) -> tuple[list[int], list[int]]:
    """The replica's process, and the shim and engine processes that carry its output."""
    container.reload()
    return [int(container.attrs["State"]["Pid"])], _pids(f"-id {container.id}") + _pids(
        "dockerd", exact=True
    )


@dataclass
class Variant:
    """A running variant: its URL and the processes whose CPU time it costs."""

    system: systems.System
    replica_pids: list[int]
    docker_pids: list[int] = field(default_factory=list)
    results: list[wrk.WrkResult] = field(default_factory=list)
    replica_us: list[float] = field(default_factory=list)  # CPU µs per request, per round
    docker_us: list[float] = field(default_factory=list)

    def measure(self, body: Path, seconds: float) -> wrk.WrkResult:
        before = [sum(map(cpu_seconds, p)) for p in (self.replica_pids, self.docker_pids)]
        result = wrk.run(self.system.url + "/score", body, self.system.key_file, seconds)
        after = [sum(map(cpu_seconds, p)) for p in (self.replica_pids, self.docker_pids)]
        per = max(result.requests, 1) / 1e6
        self.results.append(result)
        self.replica_us.append((after[0] - before[0]) / per)
        self.docker_us.append((after[1] - before[1]) / per)
        return result


@contextlib.contextmanager
def started(args: argparse.Namespace, work: Path) -> Iterator[dict[str, Variant]]:
    """Every wanted variant running and answering, each on its own port."""
    import docker

    from backends.local.docker_target import DockerTarget

    model_dir = work / "model"
    build_model(model_dir)
    sha = sha256_file(model_dir / MODEL_FILE)
    key_file, _ = write_inputs(work)
    key = key_file.read_text()
    host = docker_host()
    image = build_image(host, model_dir)
    client = docker.DockerClient(base_url=host)
    target = DockerTarget(lambda: client, work / "targets", {"production": free_port()})
    print(f"image {image}: Python, loop, parser = {image_facts(client, image)}")
    print(f"docker-proxy processes: {len(_pids('docker-proxy', exact=True))} (host network)")
    found: dict[str, Variant] = {}
    containers: list[Any] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name in args.only:
            port = free_port()
            system = systems.System(name, f"http://127.0.0.1:{port}", key_file)
            if name == "host-venv":
                env = systems.scoring_env(model_dir, sha, key_file, port)
                with (work / "host-venv.log").open("ab") as out:
                    argv = [sys.executable, "-m", "scoring"]
                    procs.append(subprocess.Popen(argv, env=env, cwd=systems.REPO, stdout=out))
                found[name] = Variant(system, [procs[-1].pid])
            elif name == "host-image-python":
                root = export_rootfs(client, image, work)
                procs.append(chroot_variant(root, sha, key, port, work / "chroot.log"))
                found[name] = Variant(system, [procs[-1].pid])
            else:
                containers.append(container_variant(target, client, name, image, sha, key, port))
            systems.wait_ready(system.url, procs)
            if name not in found:
                found[name] = Variant(system, *_container_pids(containers[-1]))
        yield found
    finally:
        systems.stop(procs)
        for container in containers:
            container.remove(force=True)
        client.close()
        with contextlib.suppress(OSError):
            shutil.rmtree(work / "rootfs")


def main(argv: list[str] | None = None) -> int:
    """Start the variants, measure them in interleaved rounds, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rows", type=int, default=1, choices=(1, 100))
    parser.add_argument("--only", default=",".join(VARIANTS))
    args = parser.parse_args(argv)
    args.only = [name for name in args.only.split(",") if name]
    if set(args.only) - set(VARIANTS):
        parser.error(f"known variants: {', '.join(VARIANTS)}")
    with tempfile.TemporaryDirectory(prefix="mlops-container-loss-") as tmp:
        work = Path(tmp)
        with started(args, work) as running:
            body = work / f"body-{args.rows}.json"
            for variant in running.values():
                wrk.run(variant.system.url + "/score", body, variant.system.key_file, 2.0)
            for round_no in range(1, args.rounds + 1):
                print(f"round {round_no}/{args.rounds} ({load_line()})", flush=True)
                for name, variant in running.items():
                    result = variant.measure(body, args.seconds)
                    print(
                        f"  {name:<20} {result.rps:8,.0f} req/s  p99 {result.p99_ms:6.2f} ms"
                        f"  CPU/request: replica {variant.replica_us[-1]:4.0f} µs,"
                        f" shim+dockerd {variant.docker_us[-1]:4.0f} µs"
                    )
    print(
        f"\none replica, {args.rows} row(s), wrk -t1 -c16, medians of {args.rounds} x "
        f"{args.seconds:g} s ({load_line()}):\n"
    )
    print(table(running))
    return 0


def table(running: dict[str, Variant]) -> str:
    """The variants as a markdown table, req/s also relative to the deployed container."""
    deployed = running.get("deployed")
    base = report.summarize(deployed.results).rps if deployed else None
    lines = [
        "| variant (one change from the deployed container) | req/s | p50 / p99 ms "
        "| vs deployed | CPU µs/req: replica | shim + dockerd |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for name, variant in running.items():
        s = report.summarize(variant.results)
        vs = f"{s.rps / base:.2f}x" if base else "-"
        replica, engine = median(variant.replica_us), median(variant.docker_us)
        lines.append(
            f"| {name} | {s.rps:,.0f} | {s.p50_ms:.1f} / {s.p99_ms:.1f} | {vs} "
            f"| {replica:.0f} | {engine:.0f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
