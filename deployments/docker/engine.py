"""Manage the local Docker engine and the scoring base image from a shell or a Makefile.

    python deployments/docker/engine.py up       # start dockerd under .mlops/docker
    python deployments/docker/engine.py status   # exit 0 if it answers, 3 if not
    python deployments/docker/engine.py base     # ensure local/py311-base:bookworm
    python deployments/docker/engine.py down     # stop the dockerd started by `up`

``up`` prints the ``DOCKER_HOST`` to use; an engine that already answers at
``$DOCKER_HOST`` or the default socket is used as is and never stopped.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

import docker

from backends.local.base_image import ensure_base_image
from backends.local.dockerd import DockerEngine, DockerEngineError
from core.settings import get_settings

logger = logging.getLogger("engine")


def main(argv: list[str] | None = None) -> int:
    state = get_settings().state_path
    parser = argparse.ArgumentParser(prog="engine.py", description=__doc__.split("\n")[0])
    parser.add_argument("action", choices=("up", "down", "status", "base"))
    parser.add_argument("--root", type=Path, default=state / "docker", help="engine folder")
    parser.add_argument("--cache", type=Path, default=state / "cache", help="cache folder")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    engine = DockerEngine(args.root)
    if args.action == "down":
        engine.stop()
        return 0
    if args.action == "status":
        running = engine.is_running()
        sys.stdout.write(f"{engine.docker_host} {'running' if running else 'stopped'}\n")
        return 0 if running else 3
    try:
        host = engine.ensure()
    except DockerEngineError as exc:
        logger.error("%s", exc)
        return 1
    if args.action == "base":
        client = docker.DockerClient(base_url=host)
        sys.stdout.write(ensure_base_image(client, cache_dir=args.cache) + "\n")
    else:
        sys.stdout.write(host + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
