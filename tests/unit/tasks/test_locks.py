"""One retraining and one release per model at a time, whoever started it (a CLI run, a
deployed run); a holder killed on this machine does not block the next run for a lease."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from pydantic import ValidationError

from core.settings import Settings, get_settings
from tasks.locks import lock_name, model_lock

ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MLOPS_STATE_DIR", str(tmp_path / "state"))
    monkeypatch.setenv("MLOPS_LOCK_LEASE_SECONDS", "60")  # the server's minimum
    get_settings.cache_clear()


def test_two_holders_of_one_model_lock_never_overlap(prefect_server: str) -> None:
    spans: list[tuple[float, float]] = []
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            with model_lock("lock-test", "release"):
                start = time.monotonic()
                time.sleep(0.5)  # the work under the lock: the other holder must wait it out
                spans.append((start, time.monotonic()))
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    threads = [threading.Thread(target=hold) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert not errors and len(spans) == 2
    first, second = sorted(spans)
    assert second[0] >= first[1]  # the second began after the first ended


def test_locks_of_two_models_or_purposes_are_independent(prefect_server: str) -> None:
    with model_lock("lock-a"), model_lock("lock-b"), model_lock("lock-a", "release"):
        pass  # would wait forever if they shared a slot
    assert lock_name("m", "release") != lock_name("m", "retraining")


def test_a_holder_killed_on_this_host_does_not_block_the_next_run_for_a_lease(
    prefect_server: str, tmp_path: Path
) -> None:
    """SIGKILL leaves the lease on the server for up to a minute; the next run sees from the
    holder's record that its process is gone and releases the lease at once."""
    ready = tmp_path / "held"
    holder = (
        "import sys, time, pathlib\n"
        "from tasks.locks import model_lock\n"
        "with model_lock('lock-killed', 'release'):\n"
        "    pathlib.Path(sys.argv[1]).write_text('held')\n"
        "    time.sleep(600)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_API_URL": prefect_server}
    proc = subprocess.Popen(
        [sys.executable, "-c", holder, str(ready)], env=env, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while not ready.exists():  # the holder announces itself by this file
            assert proc.poll() is None, "the holder died before taking the lock"
            assert time.monotonic() < deadline, "the holder never took the lock"
            time.sleep(0.1)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    start = time.monotonic()
    with model_lock("lock-killed", "release"):
        waited = time.monotonic() - start
    assert waited < 20, f"waited {waited:.0f} s for a dead holder's lease (lease: 60 s)"


def test_the_lease_must_be_one_the_server_accepts() -> None:
    assert Settings.model_fields["lock_lease_seconds"].default == 300
    with pytest.raises(ValidationError):
        Settings(lock_lease_seconds=30)  # Prefect refuses leases under 60 s
