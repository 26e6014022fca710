"""One ``MLClient`` per workspace, built on first use.

``get_backends`` must not contact Azure, and ``azure.ai.ml`` takes seconds to import; the
compute and registry adapters share one client, created the first time either one needs it.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar, cast

from azure.core.exceptions import AzureError, ResourceNotFoundError

from core.interfaces import BackendError, NotFoundError

T = TypeVar("T")

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

    from core.settings import AzureSettings


class LazyMLClient:
    """Stands in for an ``MLClient``: the first attribute read builds the real one.

    Args:
        factory: Builds the client (called at most once).
    """

    def __init__(self, factory: Callable[[], MLClient]) -> None:
        self._factory = factory
        self._client: MLClient | None = None
        self._lock = threading.Lock()

    @property
    def built(self) -> bool:
        """Whether the real client exists yet."""
        return self._client is not None

    def resolve(self) -> MLClient:
        """The real client (built now if needed)."""
        with self._lock:
            if self._client is None:
                self._client = self._factory()
            return self._client

    def __getattr__(self, name: str) -> Any:
        # Only called for names this class lacks: everything an MLClient offers.
        return getattr(self.resolve(), name)


def workspace_client(settings: AzureSettings, credential: Any = None) -> MLClient:
    """A lazily built ``MLClient`` for the workspace named in ``settings``.

    Args:
        settings: Subscription, resource group and workspace.
        credential: Any ``TokenCredential``; ``DefaultAzureCredential`` (environment,
            managed identity, Azure CLI) when None.

    Returns:
        An object that behaves as the ``MLClient``; nothing is imported or built until used.
    """

    def build() -> MLClient:
        from azure.ai.ml import MLClient

        cred = credential
        if cred is None:
            from azure.identity import DefaultAzureCredential

            cred = DefaultAzureCredential()
        # No progress bars (they go to stderr of flow workers) and no SDK telemetry.
        return MLClient(
            cred,
            settings.subscription_id,
            settings.resource_group,
            settings.workspace,
            show_progress=False,
            enable_telemetry=False,
        )

    return cast("MLClient", LazyMLClient(build))


def call(what: str, fn: Callable[[], T]) -> T:
    """Run an Azure ML SDK call; its failures become ``BackendError``s saying what failed.

    ``NotFoundError`` for a missing resource. The messages are the service's errors, never a
    request body (which may hold keys). The SDK's own ``MlException`` (artifact transfers,
    validation) counts as a failure too; any other exception is a bug and propagates.
    """
    try:
        return fn()
    except ResourceNotFoundError as exc:
        raise NotFoundError(f"cannot {what}: {exc}") from exc
    except AzureError as exc:
        raise BackendError(f"cannot {what}: {exc}") from exc
    except BackendError as exc:  # from a step inside fn (e.g. a wait that timed out)
        raise type(exc)(f"cannot {what}: {exc}") from exc
    except Exception as exc:
        from azure.ai.ml.exceptions import MlException

        if isinstance(exc, MlException):
            raise BackendError(f"cannot {what}: {exc}") from exc
        raise
