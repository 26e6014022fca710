"""What the session's ``azurite`` fixture (tests/conftest.py) yields."""

from __future__ import annotations

from dataclasses import dataclass

from backends.local.azurite import AzuriteService


@dataclass(frozen=True)
class AzuriteInstance:
    """A running Azurite blob service."""

    host: str
    port: int
    connection_string: str
    service: AzuriteService

    @property
    def endpoint(self) -> str:
        return self.service.endpoint
