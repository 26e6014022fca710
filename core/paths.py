"""Scratch folders for flow runs, under the project's state folder."""

from __future__ import annotations

import tempfile
from pathlib import Path


def scratch_dir(root: Path, prefix: str) -> Path:
    """A new, empty folder under ``root`` (created with its parents)."""
    root.mkdir(parents=True, exist_ok=True)
    return Path(tempfile.mkdtemp(prefix=prefix, dir=root))
