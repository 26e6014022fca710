"""One retraining per model at a time, whoever started it (a CLI run, a deployed run)."""

from __future__ import annotations

import threading
import time

from tasks.locks import model_lock


def test_two_holders_of_one_model_lock_never_overlap(prefect_server: str) -> None:
    spans: list[tuple[float, float]] = []
    errors: list[BaseException] = []

    def hold() -> None:
        try:
            with model_lock("lock-test"):
                start = time.monotonic()
                time.sleep(0.5)
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


def test_locks_of_two_models_are_independent(prefect_server: str) -> None:
    with model_lock("lock-a"), model_lock("lock-b"):
        pass  # would wait forever if they shared a slot
