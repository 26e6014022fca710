"""A real local stack in an isolated project folder, driven through the ``mlops`` command as a
user would: every port free, its own state folder, nothing shared with a developer's stack."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from backends.local._proc import kill_group, pid_alive
from core.settings import Settings
from tests.utils.net import free_port

MLOPS = Path(sys.executable).with_name("mlops")


@dataclass
class LocalStack:
    """A project folder whose stack the ``mlops`` command manages."""

    root: Path
    azurite_port: int = field(default_factory=free_port)
    prefect_port: int = field(default_factory=free_port)
    notify_port: int = field(default_factory=free_port)
    worker_port: int = field(default_factory=free_port)
    docs_port: int = field(default_factory=free_port)
    prometheus_port: int = field(default_factory=free_port)
    qa_port: int = field(default_factory=free_port)
    production_port: int = field(default_factory=free_port)
    release_target: str = "process"
    docker_host: str | None = None
    extra_env: dict[str, str] = field(default_factory=dict)  # more MLOPS_* for every command
    first_up: subprocess.CompletedProcess[str] | None = None
    landing_after_first_up: list[str] = field(default_factory=list)
    down: bool = False
    seen: dict[int, str] = field(default_factory=dict)  # pid -> part of its command line

    @property
    def env(self) -> dict[str, str]:
        # The developer's (and the test session's) MLOPS_* and PREFECT_* must not leak in.
        env = {k: v for k, v in os.environ.items() if not k.startswith(("MLOPS_", "PREFECT_"))}
        env.update(
            MLOPS_STATE_DIR=str(self.root / "state"),
            MLOPS_AZURITE_PORT=str(self.azurite_port),
            MLOPS_PREFECT_PORT=str(self.prefect_port),
            MLOPS_NOTIFY_PORT=str(self.notify_port),
            MLOPS_WORKER_PORT=str(self.worker_port),
            MLOPS_DOCS_PORT=str(self.docs_port),
            MLOPS_PROMETHEUS_PORT=str(self.prometheus_port),
            MLOPS_QA_PORT=str(self.qa_port),
            MLOPS_PRODUCTION_PORT=str(self.production_port),
            MLOPS_RELEASE_TARGET=self.release_target,
            PREFECT_SERVER_ANALYTICS_ENABLED="false",
            DO_NOT_TRACK="1",
        )
        if self.docker_host:
            env["MLOPS_DOCKER_HOST"] = self.docker_host
        env.update(self.extra_env)
        return env

    @property
    def settings(self) -> Settings:
        return Settings(
            state_dir=self.root / "state",
            azurite_port=self.azurite_port,
            prefect_port=self.prefect_port,
            notify_port=self.notify_port,
            worker_port=self.worker_port,
            docs_port=self.docs_port,
            prometheus_port=self.prometheus_port,
            qa_port=self.qa_port,
            production_port=self.production_port,
            release_target=self.release_target,  # type: ignore[arg-type]
            docker_host=self.docker_host,
        )

    @property
    def run_dir(self) -> Path:
        return self.root / "state" / "run"

    def mlops(
        self, *args: str, timeout: float = 300, **env: str
    ) -> subprocess.CompletedProcess[str]:
        """Run ``mlops <args>`` in the project folder (no .env there), ``env`` added."""
        result = subprocess.run(
            [str(MLOPS), *args],
            cwd=self.root,
            env={**self.env, **env},
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )
        markers = {
            "azurite": f"--blobPort {self.azurite_port}",
            "prefect-server": f"--port {self.prefect_port}",
        }
        for name, pid in self.pids().items():
            self.seen[pid] = markers.get(name, name)
        return result

    def pids(self) -> dict[str, int]:
        """The PIDs the stack's PID files name now, by service."""
        found = {}
        for pid_file in self.run_dir.glob("*.pid"):
            try:
                found[pid_file.stem] = int(pid_file.read_text().strip())
            except (OSError, ValueError):
                continue
        return found

    def up(self) -> subprocess.CompletedProcess[str]:
        result = self.mlops("up")
        assert result.returncode == 0, f"mlops up failed:\n{result.stdout}\n{result.stderr}"
        self.down = False
        if self.first_up is None:
            self.first_up = result
        return result


@contextmanager
def running_stack(stack: LocalStack) -> Iterator[LocalStack]:
    """``mlops up`` now, ``mlops down`` at the end; whatever the PID files named is then
    checked and, as a last resort, killed, so nothing outlives the caller."""
    try:
        stack.up()
        yield stack
    finally:
        stack.mlops("down", timeout=180)
        for pid, marker in stack.seen.items():
            if pid_alive(pid, marker):
                kill_group(pid, signal.SIGKILL)
