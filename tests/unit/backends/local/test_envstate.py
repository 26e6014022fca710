"""EnvFiles' API key: created once, whole, private; an empty file left by a crash is no key."""

from __future__ import annotations

import stat
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from backends.local.envstate import EnvFiles


def test_key_is_created_once_and_private(tmp_path: Path) -> None:
    files = EnvFiles(tmp_path / "qa", "qa", 8600)
    key = files.ensure_key()
    assert len(key) >= 32 and files.ensure_key() == key
    assert stat.S_IMODE(files.key.stat().st_mode) == 0o600
    assert [p.name for p in files.dir.iterdir()] == ["api_key"]  # no temporary file left


def test_an_empty_key_file_is_replaced(tmp_path: Path) -> None:
    files = EnvFiles(tmp_path / "production", "production", 8700)
    files.dir.mkdir()
    files.key.write_text("")  # what a crash between create and write used to leave
    key = files.ensure_key()
    assert len(key) >= 32 and files.key.read_text() == key


def test_concurrent_creators_agree_on_one_key(tmp_path: Path) -> None:
    def make(_: int) -> str:
        return EnvFiles(tmp_path / "qa", "qa", 8600).ensure_key()

    with ThreadPoolExecutor(8) as pool:
        keys = set(pool.map(make, range(32)))
    assert len(keys) == 1


def test_forget_leaves_no_secret_behind_but_keeps_the_logs(tmp_path: Path) -> None:
    files = EnvFiles(tmp_path / "production", "production", 8700)
    files.ensure_key()
    files.save({"current": None})
    for secret in (files.collect_url, files.appinsights):
        secret.write_text("secret")
    files.secrets.mkdir()
    for name in ("api_key", "collect_url", "appinsights_connection_string"):
        (files.secrets / name).write_text("secret")
    files.logs.mkdir()
    (files.logs / "replica.log").write_text("kept")

    files.forget()

    assert sorted(p.relative_to(files.dir).as_posix() for p in files.dir.rglob("*")) == [
        "logs",
        "logs/replica.log",
    ]
