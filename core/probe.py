"""How the release flow checks a scoring service: the protocol, and its HTTP implementation."""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import httpx

from core.interfaces import Endpoint
from core.smoke import SmokeConfig, SmokeReport, run_smoke_test
from training.schema import N_FEATURES


@runtime_checkable
class ServiceProbe(Protocol):
    """How the release flow checks a scoring service: ``HttpProbe`` for real services, a
    stand-in for the in-memory target of the flow unit tests."""

    def smoke_test(
        self, endpoint: Endpoint, golden: dict[str, Any], expected_version: str, config: SmokeConfig
    ) -> SmokeReport: ...

    def served_version(self, endpoint: Endpoint) -> str:
        """The model version the service says it serves (raises when it does not answer)."""
        ...


class HttpProbe:
    """The scoring service's own HTTP contract, through ``POST /score`` only (Azure ML's
    online-endpoint router exposes no other path): ``run_smoke_test``, and the model identity
    every scoring response carries."""

    def smoke_test(
        self, endpoint: Endpoint, golden: dict[str, Any], expected_version: str, config: SmokeConfig
    ) -> SmokeReport:
        return run_smoke_test(endpoint, golden, expected_version, config)

    def served_version(self, endpoint: Endpoint) -> str:
        response = httpx.post(
            f"{endpoint.url.rstrip('/')}/score",
            json={"data": [[0.0] * N_FEATURES]},  # the features are centred: 0 is a valid row
            headers={"Authorization": f"Bearer {endpoint.key}"},
            timeout=10,
        )
        response.raise_for_status()
        return str(response.json()["model"]["version"])
