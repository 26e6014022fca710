"""The fault-injection suite for the flows: the real flows, the real model lock (a Prefect
global concurrency limit), in-memory backends wrapped to fail on cue."""

from tests.utils.flow_harness import (  # noqa: F401 (fixtures)
    backends,
    fast_retries,
    flows_prefect,
    settings,
)
