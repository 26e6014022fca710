"""Run Azurite's blob service (the Azure Storage emulator) as a background process.

The process outlives the Python process that started it (``mlops up`` starts it, a later
``mlops down`` stops it), so it is a ``ManagedProcess``: its PID is kept in a file next to
its log, not in memory. This is the one place Azurite's command line is written.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from backends.local.managed import ManagedProcess, ServiceError

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCAL_BINARY = REPO_ROOT / ".tools" / "node_modules" / ".bin" / "azurite-blob"
ACCOUNT = "devstoreaccount1"  # Azurite's well-known development account


def find_azurite_binary() -> Path | None:
    """Locate ``azurite-blob``: the repository's ``.tools`` install first, then ``PATH``.

    Returns:
        The executable's path, or None when neither exists or ``node`` is missing.
    """
    # The npm launcher is a `#!/usr/bin/env node` script: useless without node.
    if shutil.which("node") is None:
        return None
    if LOCAL_BINARY.exists():
        return LOCAL_BINARY
    found = shutil.which("azurite-blob")
    return Path(found) if found else None


class AzuriteService(ManagedProcess):
    """One Azurite blob service on ``host:port``, persisted in ``location`` or in memory.

    Args:
        port: TCP port of the blob endpoint.
        location: Folder for Azurite's data; None keeps everything in memory.
        log_file: Where Azurite's output goes (``<name>.log``); the PID file sits next to it
            (``<name>.pid``).
        host: Interface to bind (loopback by default).
        binary: The ``azurite-blob`` executable; found with ``find_azurite_binary`` if None.
    """

    def __init__(
        self,
        port: int,
        location: Path | None,
        log_file: Path,
        host: str = "127.0.0.1",
        binary: Path | None = None,
    ) -> None:
        self.location = location
        self.binary = binary
        super().__init__(
            log_file.stem,
            # Until `command()` resolves the binary, the bare name identifies the process.
            _argv(binary or find_azurite_binary() or Path("azurite-blob"), host, port, location),
            log_file.parent,
            host=host,
            port=port,
            port_setting="MLOPS_AZURITE_PORT",
            hint="run `make setup`",
        )

    @property
    def endpoint(self) -> str:
        """The blob endpoint URL of Azurite's development account."""
        return f"http://{self.host}:{self.port}/{ACCOUNT}"

    def command(self) -> list[str]:
        """The command line ``start`` runs."""
        binary = self.binary or find_azurite_binary()
        if binary is None:
            raise ServiceError(
                "azurite-blob not found (looked in .tools/node_modules/.bin and on PATH, and it "
                "needs node): run `make setup`"
            )
        return _argv(binary, self.host, self.port, self.location)

    def start(self, timeout: float = 30.0) -> int:
        """Start Azurite in the background (no-op if already running) and wait until it answers.

        Raises:
            ServiceError: (a ``BackendError``) the binary is missing, the port is taken by
                another program, or Azurite exited or did not answer in time (the message
                quotes its log).
        """
        if self.location is not None:
            self.location.mkdir(parents=True, exist_ok=True)
        return super().start(timeout)


def _argv(binary: Path, host: str, port: int, location: Path | None) -> list[str]:
    storage = ["--inMemoryPersistence"] if location is None else ["--location", str(location)]
    return [
        str(binary),
        "--blobHost",
        host,
        "--blobPort",
        str(port),
        *storage,
        "--disableTelemetry",
        # azure-storage-blob sends an API version newer than Azurite knows.
        "--skipApiVersionCheck",
        "--loose",
    ]
