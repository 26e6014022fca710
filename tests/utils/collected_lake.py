"""Reading what scoring services collected into a real lake, for tests."""

from __future__ import annotations

import uuid
from pathlib import Path

from backends.blob_datalake import BlobDataLake
from backends.collect_sas import container_sas_url
from training.collected import COLLECTED_PREFIX, CollectedRow

CONTAINER = "collected"


def collect_url_file(connection_string: str, folder: Path) -> Path:
    """Make sure the collected container exists; write its SAS URL to a file, as the targets do."""
    BlobDataLake(connection_string).ensure_containers(CONTAINER)
    path = folder / f"collect_url-{uuid.uuid4().hex[:6]}"
    path.write_text(container_sas_url(connection_string, CONTAINER, 1))
    path.chmod(0o444)  # a container's user must read it too
    return path


def collected_rows(connection_string: str, env: str) -> tuple[list[str], list[CollectedRow]]:
    """The window files of ``env`` and every row in them, in blob-name order."""
    lake = BlobDataLake(connection_string)
    refs = sorted(lake.list(CONTAINER, f"{COLLECTED_PREFIX}/{env}/"), key=lambda ref: ref.name)
    rows = [
        CollectedRow.from_json(line)
        for ref in refs
        for line in lake.get(CONTAINER, ref.name)[0].decode().splitlines()
    ]
    return [ref.name for ref in refs], rows
