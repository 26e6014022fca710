"""What scoring services collected into a real lake, read the way monitoring reads it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

from backends.blob_datalake import BlobDataLake
from backends.collect_sas import container_sas_url
from core.collected_lake import CollectedLake
from training.collected import CollectedRow
from training.collected import collected_rows as rows_of_lines

CONTAINER = "collected"


def collect_url_file(connection_string: str, folder: Path) -> Path:
    """Make sure the collected container exists; write its SAS URL to a file, as the targets do."""
    BlobDataLake(connection_string).ensure_containers(CONTAINER)
    path = folder / f"collect_url-{uuid.uuid4().hex[:6]}"
    path.write_text(container_sas_url(connection_string, CONTAINER, 1))
    path.chmod(0o444)  # a container's user must read it too
    return path


def collected_rows(connection_string: str, env: str) -> tuple[list[str], list[CollectedRow]]:
    """The window files of ``env`` started in the last hour and every row in them, through
    ``core.collected_lake`` (the monitoring flow's reader)."""
    lake = CollectedLake(BlobDataLake(connection_string), CONTAINER)
    now = datetime.now(UTC)
    refs = lake.window_blobs(env, now - timedelta(hours=1), now + timedelta(minutes=5))
    return [ref.name for ref in refs], rows_of_lines(lake.lines(refs))
