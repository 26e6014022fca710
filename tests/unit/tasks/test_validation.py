"""Which suite a landing file is validated with: by the monitoring flow's blob metadata."""

from __future__ import annotations

from pathlib import Path

from core.interfaces import BlobRef
from core.lake import LocalCopy
from core.provenance import labelled_metadata
from expectations.build_suite import LABELLED_SUITE_PATH, SUITE_PATH
from tasks.validation import suite_for

SHA = "ab" * 32


def copy(name: str, metadata: dict[str, str], sha256: str = SHA) -> LocalCopy:
    ref = BlobRef("landing", name, f"landing/{name}", metadata=metadata)
    return LocalCopy(path=Path(name), ref=ref, sha256=sha256)


def test_labelled_rows_the_monitoring_flow_wrote_get_the_labelled_suite() -> None:
    assert suite_for(copy("labelled-day-1-abababab.csv", labelled_metadata(SHA))) == (
        LABELLED_SUITE_PATH
    )
    # Azure may hand metadata keys back in another case; the name plays no part.
    upper = {key.upper(): value for key, value in labelled_metadata(SHA).items()}
    assert suite_for(copy("rows.csv", upper)) == LABELLED_SUITE_PATH


def test_a_name_or_metadata_alone_gets_the_training_suite() -> None:
    assert suite_for(copy("labelled-day-1-abababab.csv", {})) == SUITE_PATH  # a faked name
    other_bytes = copy("labelled-day-1-abababab.csv", labelled_metadata(SHA), sha256="cd" * 32)
    assert suite_for(other_bytes) == SUITE_PATH  # metadata copied onto other content
    assert suite_for(copy("day-1.csv", {"origin": "upload", "sha256": SHA})) == SUITE_PATH
    assert suite_for(copy("plain.csv", {})) == SUITE_PATH
