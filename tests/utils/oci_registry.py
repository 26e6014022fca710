"""A minimal Docker Registry HTTP API v2 server, for pushing real images in tests.

Enough of the distribution spec for ``docker push`` and a manifest lookup
(``images.get_registry_data``): the ``/v2/`` version check, blob existence, chunked and
monolithic uploads (with sha256 verification), cross-repository mounts, and manifests by
tag or digest (``tests/utils/oci_api.py``). Everything is kept in memory and every request
is recorded; this module is what a test starts and inspects.

It speaks plain HTTP on 127.0.0.1: Docker treats 127.0.0.0/8 registries as insecure and
falls back to HTTP after its HTTPS attempt fails. With credentials set it authenticates as
Azure Container Registry does (``tests/utils/oci_auth.py``): a request without a valid
access token gets 401 with ``WWW-Authenticate: Bearer realm=".../oauth2/token"``, the client
fetches a token for the repository's scope there, and sends it as ``Bearer``; the recorded
``user`` of a request is whom its token was issued to.
"""

from __future__ import annotations

import re
import threading
from http.server import ThreadingHTTPServer

from tests.utils.net import free_port
from tests.utils.oci_api import Manifest, ReceivedRequest, RegistryApi, RegistryState
from tests.utils.oci_auth import TokenService


class FakeRegistry:
    """A registry on ``127.0.0.1:<free port>``; ``start``/``stop`` or use as a context.

    Args:
        username: The admin user (``tests/utils/oci_auth.py``: the Bearer-token flow); empty
            for an open registry.
        password: Its password.
        aad_tokens: Entra ID tokens ``/oauth2/exchange`` accepts, and whose they are.
    """

    def __init__(
        self, username: str = "", password: str = "", aad_tokens: dict[str, str] | None = None
    ) -> None:
        self.username = username
        self.password = password
        self.state = RegistryState()
        self.port = free_port()
        self.tokens = (
            TokenService(self.host, username, password, dict(aad_tokens or {}))
            if username or aad_tokens
            else None
        )
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``: the registry part of image references."""
        return f"127.0.0.1:{self.port}"

    def start(self) -> FakeRegistry:
        handler = type("Handler", (RegistryApi,), {"registry": self})
        self._server = ThreadingHTTPServer(("127.0.0.1", self.port), handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, name=f"fake-registry-{self.port}", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None

    def __enter__(self) -> FakeRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def lock_tag(self, repository: str, tag: str) -> None:
        """Refuse manifest writes to ``repository:tag`` with 403 ``DENIED`` (a stand-in for
        a tag locked against writes); blob uploads are still accepted."""
        with self.state.lock:
            self.state.locked.add((repository, tag))

    # ------------------------------------------------------------ inspection
    def manifest(self, repository: str, reference: str) -> Manifest | None:
        """The manifest a tag or digest names in ``repository``, or None."""
        with self.state.lock:
            digest = self.state.tags.get(repository, {}).get(reference, reference)
            return self.state.manifests.get(repository, {}).get(digest)

    def has_blob(self, repository: str, digest: str) -> bool:
        with self.state.lock:
            return digest in self.state.links.get(repository, set())

    def received(self, method: str, pattern: str = "") -> list[ReceivedRequest]:
        """Recorded requests with ``method`` whose path matches ``pattern``."""
        with self.state.lock:
            return [
                r for r in self.state.requests if r.method == method and re.search(pattern, r.path)
            ]
