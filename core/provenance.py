"""Where a landing file came from, as its blob metadata says.

The monitoring flow writes labelled rows (collected inputs joined to late ground truth) to
landing with ``origin=labels`` and the sha256 of the bytes it wrote. The retraining flow
validates those with the ``labelled_rows`` suite (no distribution bounds: the rows come
from traffic that may have drifted, which is why they are wanted) and every other file with
the training suite.

Why metadata and not the ``labelled-`` name prefix: a name is whatever an uploader typed,
so any CSV named ``labelled-*.csv`` would skip the mean and spread checks. Metadata has to
be set on purpose, is dropped when the blob is overwritten (a re-upload under the same
name without it loses the label), and the recorded sha256 must match the bytes read, so
metadata copied onto other content does not carry over. It is not an authentication:
whoever may write landing with metadata could forge it; the gate's row-level rules
(schema, types, missing values, value ranges) still apply to such a file.
"""

from __future__ import annotations

from core.interfaces import BlobRef

ORIGIN = "origin"
LABELS = "labels"
SHA256 = "sha256"


def labelled_metadata(sha256: str) -> dict[str, str]:
    """The metadata the monitoring flow sets on the labelled rows it writes to landing."""
    return {ORIGIN: LABELS, SHA256: sha256}


def written_by_monitoring(ref: BlobRef, sha256: str) -> bool:
    """Whether ``ref`` is labelled rows the monitoring flow wrote: ``origin=labels`` and the
    sha256 it recorded equal to that of the bytes read (``sha256``)."""
    metadata = {key.lower(): value for key, value in ref.metadata.items()}
    return metadata.get(ORIGIN) == LABELS and metadata.get(SHA256) == sha256
