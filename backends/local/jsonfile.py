"""JSON state files shared between processes: written atomically, read forgivingly."""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Any


def write_json_atomic(path: Path, data: dict[str, Any], mode: int = 0o600) -> None:
    """Write ``data`` as JSON so that readers see either the old or the new file, never half.

    Args:
        path: Destination; its folder must exist.
        data: A JSON-able mapping.
        mode: Permissions of the new file (the default keeps it private to the owner).
    """
    write_text_atomic(path, json.dumps(data, indent=1, sort_keys=True), mode)


def write_text_atomic(path: Path, text: str, mode: int = 0o600, owner: int | None = None) -> None:
    """Write ``text`` so that readers see either the old or the new file, never half.

    Args:
        path: Destination; its folder must exist.
        text: The new content.
        mode: Permissions of the new file (the default keeps it private to the owner).
        owner: Give the file to this uid (and gid) before it gets its name (root only).
    """
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        if owner is not None:
            os.fchown(fd, owner, owner)
        with os.fdopen(fd, "w") as fh:
            fh.write(text)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in ``path``, or None if the file is missing or unreadable."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
