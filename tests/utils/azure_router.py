"""What answers a scoring request in Azure, on 127.0.0.1: Azure ML's online-endpoint router in
front of production, and QA's private network in front of the QA container group.

The containers are the real scoring app (``scoring.create_app``) started in this process, one
per deployment, configured from what the deployment or group carries: the model variables,
the keys (Key Vault references resolved as Azure ML's secret injection does; QA's from its
secret volume) and the model folder behind the image digest.

The router follows what Azure ML documents for online endpoints (custom containers and the
troubleshooting guide's status codes):

- only ``POST <scoring uri>`` reaches a container; the liveness and readiness routes of the
  inference config are probed by the platform inside the cluster, never exposed. Any other
  path or method is answered by the router itself: 404 ("your URL isn't correct");
- the router checks the endpoint key (``Authorization: Bearer <primary or secondary>``):
  401 without a valid one, before any container sees the request;
- 404 when no deployment has traffic; otherwise the deployment with the traffic answers;
- a container's 200 passes through (with ``azureml-model-deployment`` naming the deployment);
  any other status becomes 424 with ``ms-azureml-model-error-statuscode`` and
  ``ms-azureml-model-error-reason``. Which body the router sends then is not documented: this
  one sends none of the container's, so nothing may depend on it.

The scoring URI is the Kubernetes router's form (``/api/v1/endpoint/<name>/score``); a managed
endpoint's is ``https://<name>.<region>.inference.ml.azure.com/score``, one host per endpoint,
which a loopback fake cannot give each endpoint.
"""

from __future__ import annotations

import re
import threading
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from pydantic import SecretStr

from scoring.app import create_app
from scoring.settings import ScoringSettings
from tests.utils.azure_aci import FakeAci
from tests.utils.azure_ml_endpoints import KEY, SECONDARY, FakeAmlEndpoints

with warnings.catch_warnings():
    warnings.simplefilter("ignore")
    from starlette.testclient import TestClient

_SCORE = re.compile(r"^/api/v1/endpoint/(?P<name>[^/]+)/score$")
_HOP = {"connection", "content-length", "transfer-encoding", "date", "server"}


@dataclass
class Answer:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)


class Containers:
    """The started scoring apps, one per (group or deployment, release); closed by ``close``.

    Args:
        images: The model folder behind each image reference (the test's image builder).
    """

    def __init__(self, images: dict[str, Path]) -> None:
        self.images = images
        self._started: dict[tuple[str, ...], TestClient] = {}
        self._lock = threading.Lock()

    def answer(
        self, ident: tuple[str, ...], env: dict[str, str], image: str, request: Any
    ) -> Answer:
        """Send ``request`` (method, path, headers, body) to the container ``ident`` runs."""
        client = self._client(ident, env, image)
        method, path, headers, body = request
        with self._lock:  # one request at a time per process: the TestClient's portal
            response = client.request(method, path, headers=headers, content=body)
        kept = {k: v for k, v in response.headers.items() if k.lower() not in _HOP}
        return Answer(response.status_code, response.content, kept)

    def _client(self, ident: tuple[str, ...], env: dict[str, str], image: str) -> TestClient:
        with self._lock:
            client = self._started.get(ident)
            if client is None:
                secondary = env.get("SCORING_SECONDARY_API_KEY")
                settings = ScoringSettings(
                    model_dir=self.images[image],
                    model_name=env["SCORING_MODEL_NAME"],
                    model_version=env["SCORING_MODEL_VERSION"],
                    model_sha256=env["SCORING_MODEL_SHA256"],
                    api_key=SecretStr(env["SCORING_API_KEY"]),
                    secondary_api_key=SecretStr(secondary) if secondary else None,
                )
                client = TestClient(create_app(settings))
                client.__enter__()  # runs the lifespan: the model loads and is verified
                self._started[ident] = client
            return client

    def close(self) -> None:
        with self._lock:
            for client in self._started.values():
                client.__exit__(None, None, None)
            self._started.clear()


class OnlineRouter:
    """Azure ML's router in front of the fake workspace's online endpoints."""

    def __init__(
        self,
        endpoints: FakeAmlEndpoints,
        containers: Containers,
        resolve: Callable[[str], str],
    ) -> None:
        self.endpoints = endpoints
        self.containers = containers
        self.resolve = resolve
        self.seen: list[tuple[str, str, int]] = []  # method, path, status

    def __call__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        found = _SCORE.match(path.split("?")[0])
        answer = self._route(found, method, headers, body)
        self.seen.append((method, path, answer.status))
        return answer

    def _route(
        self, found: re.Match[str] | None, method: str, headers: dict[str, str], body: bytes
    ) -> Answer:
        if found is None or method != "POST" or found["name"] not in self.endpoints.endpoints:
            return Answer(404)
        given = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if given not in (f"Bearer {KEY}", f"Bearer {SECONDARY}"):
            return Answer(401)
        deployment = self.endpoints.live(found["name"])
        if deployment is None:
            return Answer(404)
        variables = deployment["properties"]["environmentVariables"]
        env = {k: self.resolve(v) for k, v in variables.items()}
        ident = ("online", found["name"], str(deployment["name"]))
        image = self.endpoints.image(deployment)
        answer = self.containers.answer(ident, env, image, ("POST", "/score", headers, body))
        if answer.status == 200:
            return Answer(200, answer.body, answer.headers | {"azureml-model-deployment": ident[2]})
        return Answer(
            424,
            headers={
                "ms-azureml-model-error-statuscode": str(answer.status),
                "ms-azureml-model-error-reason": HTTPStatus(answer.status).phrase,
            },
        )


class PrivateNetwork:
    """QA's subnet: every request reaches the container group at its private IP as it is."""

    def __init__(self, aci: FakeAci, group: str, containers: Containers) -> None:
        self.aci = aci
        self.group = group
        self.containers = containers

    def __call__(self, method: str, path: str, headers: dict[str, str], body: bytes) -> Answer:
        stored = self.aci.groups.get(self.group)
        if stored is None:
            return Answer(502)  # nothing listens at that address
        (container,) = stored["properties"]["containers"]
        props = container["properties"]
        env = {v["name"]: v.get("value", "") for v in props.get("environmentVariables", [])}
        env["SCORING_API_KEY"] = self.aci.keys[self.group]  # from the secret volume
        ident = ("aci", self.group, props["image"], env.get("SCORING_MODEL_VERSION", ""))
        return self.containers.answer(ident, env, props["image"], (method, path, headers, body))


Handler = Callable[[str, str, dict[str, str], bytes], Answer]


@contextmanager
def serve(handler: Handler) -> Iterator[int]:
    """Serve ``handler`` over HTTP on a free loopback port; yield the port."""

    class Http(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: Any) -> None:
            pass

        def _any(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            answer = handler(self.command, self.path, dict(self.headers.items()), body)
            self.send_response(answer.status)
            for key, value in answer.headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(answer.body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(answer.body)

        do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = do_PATCH = _any

    server = ThreadingHTTPServer(("127.0.0.1", 0), Http)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield int(server.server_address[1])
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)
