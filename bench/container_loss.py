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
- ``log-driver-none``: the request log lines go nowhere (``--log-driver none``) instead of
  through the container's stdout pipe, containerd-shim and dockerd's json-file writer;
- ``no-request-log``: the service writes no request log (``SCORING_LOG_LEVEL=WARNING``);
- ``cpuset-1``: the replica pinned to one CPU (``--cpuset-cpus 1``);
- ``no-healthcheck``: without the image's HEALTHCHECK (a Python process every 10 s).

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
from pathlib import Path
from typing import Any

from bench import report, systems, wrk
from bench.bench_scoring import build_model, free_port
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
)
# Each container variant: what it changes in DockerTarget's run options.
CHANGES: dict[str, Callable[[dict[str, Any]], None]] = {
    "deployed": lambda options: None,
    "seccomp-unconfined": lambda o: o.setdefault("security_opt", []).append("seccomp=unconfined"),
    "log-driver-none": lambda o: o.update(log_config={"type": "none"}),
    "no-request-log": lambda o: o["environment"].update(SCORING_LOG_LEVEL="WARNING"),
    "cpuset-1": lambda o: o.update(cpuset_cpus="1"),
    "no-healthcheck": lambda o: o.update(healthcheck={"test": ["NONE"]}),
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


@contextlib.contextmanager
def started(args: argparse.Namespace, work: Path) -> Iterator[dict[str, systems.System]]:
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
    proxies = subprocess.run(["pgrep", "-c", "docker-proxy"], capture_output=True, text=True)
    print(f"docker-proxy processes: {proxies.stdout.strip() or '0'} (host network: none needed)")
    found: dict[str, systems.System] = {}
    containers: list[Any] = []
    procs: list[subprocess.Popen[bytes]] = []
    try:
        for name in args.only:
            port = free_port()
            url = f"http://127.0.0.1:{port}"
            if name == "host-venv":
                env = systems.scoring_env(model_dir, sha, key_file, port)
                with (work / "host-venv.log").open("ab") as out:
                    procs.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "scoring"],
                            env=env,
                            cwd=systems.REPO,
                            stdout=out,
                            stderr=out,
                        )
                    )
            elif name == "host-image-python":
                root = export_rootfs(client, image, work)
                procs.append(chroot_variant(root, sha, key, port, work / "chroot.log"))
            else:
                containers.append(container_variant(target, client, name, image, sha, key, port))
            found[name] = systems.System(name, url, key_file)
            systems.wait_ready(url, procs)
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
            results: dict[str, list[wrk.WrkResult]] = {name: [] for name in running}
            for system in running.values():
                wrk.run(system.url + "/score", body, system.key_file, 2.0)
            for round_no in range(1, args.rounds + 1):
                print(f"round {round_no}/{args.rounds} ({load_line()})", flush=True)
                for name, system in running.items():
                    result = wrk.run(system.url + "/score", body, system.key_file, args.seconds)
                    results[name].append(result)
                    print(f"  {name:<20} {result.rps:8,.0f} req/s  p99 {result.p99_ms:6.2f} ms")
    base = report.summarize(results["deployed"]).rps if "deployed" in results else None
    print(
        f"\none replica, {args.rows} row(s), wrk -t1 -c16, medians of {args.rounds} x "
        f"{args.seconds:g} s ({load_line()}):\n"
    )
    print(
        "| variant (one change from the deployed container) | req/s | p50 / p99 ms | vs deployed |"
    )
    print("|---|---:|---:|---:|")
    for name, rs in results.items():
        s = report.summarize(rs)
        vs = f"{s.rps / base:.2f}x" if base else "-"
        print(f"| {name} | {s.rps:,.0f} | {s.p50_ms:.1f} / {s.p99_ms:.1f} | {vs} |")
    return 0


if __name__ == "__main__":
    os.umask(0o022)
    sys.exit(main())
