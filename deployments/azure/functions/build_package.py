"""Build the Event Grid relay Function's package: a zip for zip deploy
(``az functionapp deployment source config-zip --src <zip>``, remote build installs
``requirements.txt``).

The Function needs its own folder plus the three Prefect-free modules that define the
event (``core.events``, ``core.blob_events``, ``core.interfaces``): nothing else of the
project goes in. ``make relay-package`` runs this.
"""

from __future__ import annotations

import argparse
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[3]
FUNCTION = Path(__file__).resolve().parent / "blob_relay"
FUNCTION_FILES = ("function_app.py", "relay.py", "host.json", "requirements.txt")
CORE_FILES = ("__init__.py", "events.py", "blob_events.py", "interfaces.py")
DEFAULT_OUT = ROOT / ".mlops" / "dist" / "blob-relay.zip"


def build(out: Path = DEFAULT_OUT) -> Path:
    """Write the zip to ``out`` (replacing it) and return its path."""
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_suffix(".partial")
    with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
        for name in FUNCTION_FILES:
            archive.write(FUNCTION / name, name)
        for name in CORE_FILES:
            archive.write(ROOT / "core" / name, f"core/{name}")
    partial.replace(out)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    print(build(parser.parse_args().out))  # noqa: T201 (a command's output)


if __name__ == "__main__":
    main()
