"""The collection benchmark's discard sink (bench/blob_sink.py behind bench/collect.py):
the service's real uploader writes windows to it, and it counts what arrived."""

from __future__ import annotations

from pathlib import Path

import httpx

from bench.collect import discard_sink
from scoring.sas_upload import SasUploader


def test_the_service_uploader_writes_windows_the_discard_sink_counts(tmp_path: Path) -> None:
    with discard_sink(tmp_path) as sink:
        env = sink.env("ours-1-collect", tmp_path)
        url_file = Path(env["SCORING_COLLECT_URL_FILE"])
        upload = SasUploader(url_file.read_text)
        upload("scoring/ours-1-collect/w1.jsonl", b'{"a":1}\n{"a":2}\n')
        upload("scoring/ours-1-collect/w2.jsonl", b'{"a":3}\n')
        assert sink.rows("ours-1-collect") == 3
        stats = httpx.get(str(sink.stats_url), timeout=5).json()
        assert stats == {"puts": 2, "bytes": 24, "lines": 3}
        # Only PUT is a write: anything else is refused, as a SAS with create/write only.
        assert httpx.post(f"{sink.stats_url}/collected/x", content=b"x").status_code == 405
