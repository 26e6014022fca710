"""The ``mlops`` command's error paths: one clear line and an exit code, never a traceback,
and ``down`` stops everything it can even when a part fails."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

import mlops.cli as cli
import mlops.stack
from backends.local.dockerd import DockerEngine
from core.interfaces import BackendError

runner = CliRunner()


@pytest.mark.parametrize("command", ["key", "url"])
def test_an_unknown_environment_is_one_line_and_exit_2(command: str) -> None:
    result = runner.invoke(cli.app, [command, "staging"])
    assert result.exit_code == 2, result.output
    assert result.stderr.strip() == "unknown environment 'staging': use one of qa, production"
    assert result.stdout == "" and "Traceback" not in result.output


class FakeService:
    def __init__(self, name: str, stopped: list[str], fails: bool = False) -> None:
        self.name, self._stopped, self._fails = name, stopped, fails

    def stop(self) -> bool:
        if self._fails:
            raise OSError("permission denied")
        self._stopped.append(self.name)
        return True


def test_down_stops_every_service_when_the_release_target_cannot_be_built(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stopped: list[str] = []

    def no_target(settings: object) -> None:
        raise BackendError("the Docker engine is not running")

    names = ["azurite", "prefect-server", "notify", "data-docs", "prefect-worker"]
    monkeypatch.setattr(cli, "_release_target", no_target)

    def stop_engine(engine: DockerEngine) -> bool:
        stopped.append("engine")
        return True

    monkeypatch.setattr(DockerEngine, "stop", stop_engine)
    monkeypatch.setattr(
        mlops.stack,
        "services",
        lambda settings: [FakeService(n, stopped, fails=n == "notify") for n in names],
    )

    result = runner.invoke(cli.app, ["down"])

    assert stopped == ["engine", "prefect-worker", "data-docs", "prefect-server", "azurite"]
    assert result.exit_code == 1
    assert "the Docker engine is not running" in result.stderr
    assert "not stopped: environments, notify" in result.stderr
    assert "azurite         stopped" in result.stdout
    assert "notify          could not be stopped: permission denied" in result.stderr
