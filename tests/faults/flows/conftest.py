"""The fault-injection suite for the flows: the real flows, the real model lock (a Prefect
global concurrency limit), in-memory backends wrapped to fail on cue. ``relay``: the
session's full Prefect server behind a fault-injecting relay (tests/utils/api_relay.py)."""

from collections.abc import Iterator
from urllib.parse import urlsplit

import pytest
from prefect.events.worker import EventsWorker
from prefect.logging.handlers import APILogWorker
from prefect.settings import PREFECT_API_URL, temporary_settings

from tests.utils.api_relay import FaultyRelay
from tests.utils.flow_harness import (  # noqa: F401 (fixtures)
    backends,
    fast_retries,
    flows_prefect,
    settings,
)


@pytest.fixture
def relay(prefect_server: str) -> Iterator[FaultyRelay]:
    """The Prefect API behind a fault-injecting relay; this test's client talks to it."""
    upstream = urlsplit(prefect_server)
    faulty = FaultyRelay(upstream.hostname or "127.0.0.1", upstream.port or 80)
    with faulty.running():
        with temporary_settings(updates={PREFECT_API_URL: faulty.url()}):
            yield faulty
            # What this test's runs queued (logs, Prefect's own events) goes out while the
            # relay still answers; afterwards those workers would retry a closed port.
            faulty.blocked.clear()
            for prefix in list(faulty.swallowing):
                faulty.unswallow(prefix)
            APILogWorker.drain_all(timeout=10)
            EventsWorker.drain_all(timeout=10)
