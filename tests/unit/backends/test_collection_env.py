"""What a deployment target hands scoring replicas so they collect (backends/collect_sas.py)."""

from __future__ import annotations

from backends import _local_collection
from backends.collect_sas import Collection
from core.settings import Settings


def test_the_window_reaches_replicas_only_when_set() -> None:
    default = Collection(lambda: "sas", 0.5).env("qa", "/secrets/collect_url")
    assert default == {
        "SCORING_COLLECT_ENV": "qa",
        "SCORING_COLLECT_SAMPLE": "0.5",
        "SCORING_COLLECT_URL_FILE": "/secrets/collect_url",
    }
    short = Collection(lambda: "sas", 1.0, 5.0).env("production", None)
    assert short["SCORING_COLLECT_WINDOW_SECONDS"] == "5.0"
    assert "SCORING_COLLECT_URL_FILE" not in short


def test_the_local_profile_passes_the_setting_on() -> None:
    collection = _local_collection(Settings(collect_window_seconds=5))
    assert collection is not None and collection.window_seconds == 5
    assert _local_collection(Settings()).window_seconds is None  # type: ignore[union-attr]
    assert _local_collection(Settings(collect_sample=0)) is None
