"""The file_sd files an environment writes for Prometheus: replaced whole, then withdrawn."""

from __future__ import annotations

import json
from pathlib import Path

from backends.local.scrape_targets import publish, target_file, withdraw
from core.interfaces import ReleaseSpec


def test_publish_replaces_the_targets_and_withdraw_removes_them(tmp_path: Path) -> None:
    release = ReleaseSpec("diabetes-ridge", "5", "0" * 64)
    publish(tmp_path, "docker", "production", [5002, 5001, 5002], release, 9101)
    scoring = json.loads(target_file(tmp_path, "scoring", "docker", "production").read_text())
    assert scoring == [
        {
            "targets": ["127.0.0.1:5001", "127.0.0.1:5002"],
            "labels": {
                "environment": "production",
                "target": "docker",
                "model_name": "diabetes-ridge",
                "model_version": "5",
            },
        }
    ]
    proxy = json.loads(target_file(tmp_path, "haproxy", "docker", "production").read_text())
    assert proxy == [
        {"targets": ["127.0.0.1:9101"], "labels": {"environment": "production", "target": "docker"}}
    ]

    publish(tmp_path, "docker", "production", [5003], release, None)  # the next release
    scoring = json.loads(target_file(tmp_path, "scoring", "docker", "production").read_text())
    assert scoring[0]["targets"] == ["127.0.0.1:5003"]
    proxy = json.loads(target_file(tmp_path, "haproxy", "docker", "production").read_text())
    assert proxy[0]["targets"] == []
    # Prometheus reads scoring-*.json and haproxy-*.json: no temporary file may match.
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "haproxy-docker-production.json",
        "scoring-docker-production.json",
    ]

    withdraw(tmp_path, "docker", "production")
    assert list(tmp_path.iterdir()) == []
    withdraw(tmp_path, "docker", "production")  # twice: nothing left to remove, no error
