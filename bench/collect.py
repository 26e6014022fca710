"""Collection on, for the benchmark: an Azurite of the benchmark's own (in memory, free port)
and the ``collected`` container's SAS, as ``mlops release`` gives replicas.

The systems ``ours-1-collect`` and ``production-collect`` of ``bench/run.py`` are
``ours-1`` and ``production`` with every request collected (``SCORING_COLLECT_SAMPLE=1``),
measured in the same interleaved rounds: their ratio is what collection costs.

Two sinks: ``discard`` (default) stands in for a remote Blob service (``bench/blob_sink.py``:
the service pays for sending windows, nothing pays for storing them on these cores), so the
ratio is collection's cost to the service; ``azurite`` is the local stack as ``mlops up``
runs it, with the storage's own CPU on the same 2 cores as the service and the load.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from backends.blob_datalake import BlobDataLake
from backends.collect_sas import Collection, container_sas_url
from backends.local.azurite import AzuriteService
from backends.local.envstate import free_port
from core.settings import Settings

CONTAINER = "collected"


@dataclass(frozen=True)
class Sink:
    """Where collecting systems write: the lake's connection string and a SAS issuer."""

    connection_string: str | None  # None: the discard sink (nothing to read back)
    collection: Collection
    stats_url: str | None = None  # the discard sink's counts

    def env(self, environment: str, folder: Path) -> dict[str, str]:
        """``SCORING_COLLECT_*`` of a host process, the SAS in a file under ``folder``."""
        url_file = folder / f"collect_url-{environment}"
        url_file.write_text(self.collection.issue_url())
        url_file.chmod(0o600)
        return self.collection.env(environment, str(url_file))

    def rows(self, environment: str) -> int:
        """Lines collected so far for ``environment`` (the discard sink: of all)."""
        if self.connection_string is None:
            import httpx

            return int(httpx.get(str(self.stats_url), timeout=10).json()["lines"])
        lake = BlobDataLake(self.connection_string)
        return sum(
            lake.get(CONTAINER, ref.name)[0].count(b"\n")
            for ref in lake.list(CONTAINER, f"scoring/{environment}/")
        )


@contextlib.contextmanager
def discard_sink(work: Path) -> Iterator[Sink]:
    """Start ``bench/blob_sink.py`` on a free port; stop it at the end."""
    from bench.systems import System, running, spawn_python

    port = free_port()
    argv = ["-m", "uvicorn", "bench.blob_sink:app", "--factory", "--host", "127.0.0.1",
            "--port", str(port), "--no-access-log", "--log-level", "warning"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    system = System("discard sink", url, None, [spawn_python(argv, work / "blob_sink.log")])
    with running(system):
        container = f"{url}/{CONTAINER}?sv=bench"
        yield Sink(None, Collection(lambda: container, 1.0), url)


@contextlib.contextmanager
def sink(kind: str, work: Path) -> Iterator[Sink]:
    """The sink ``--collect-sink`` names: ``discard`` or ``azurite``."""
    with (discard_sink if kind == "discard" else azurite_sink)(work) as chosen:
        yield chosen


@contextlib.contextmanager
def azurite_sink(work: Path) -> Iterator[Sink]:
    """Start an in-memory Azurite on a free port; stop it at the end."""
    port = free_port()
    service = AzuriteService(port, None, work / "azurite.log", host="127.0.0.1")
    service.start(timeout=60)
    try:
        connection = Settings(azurite_port=port, blob_connection_string=None).blob_connection
        BlobDataLake(connection).ensure_containers(CONTAINER)
        issue = partial(container_sas_url, connection, CONTAINER, 1)
        yield Sink(connection, Collection(issue, 1.0))
    finally:
        service.stop()
