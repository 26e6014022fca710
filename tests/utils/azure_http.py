"""Azure SDK clients at the HTTP boundary: a credential that never signs in, and an azure-core
transport that records every request and answers it from canned routes (method + URL regex).

Shared by the Azure unit tests (tests/unit/backends/azure) and the release flow through the
Azure fakes (tests/unit/flows/test_release_on_azure.py). Requests nobody routed fail the test.
"""

from __future__ import annotations

import io
import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import requests
import urllib3
from azure.core.credentials import AccessToken
from azure.core.pipeline.transport import RequestsTransport

if TYPE_CHECKING:
    from azure.ai.ml import MLClient

# The fake subscription, resource group and Azure ML workspace of every Azure test.
SUB, RG, WS = "00000000-1111-2222-3333-444444444444", "rg-mlops", "ws-mlops"
PROVIDER = "providers/Microsoft.MachineLearningServices"
ARM = f"/subscriptions/{SUB}/resourceGroups/{RG}/{PROVIDER}/workspaces/{WS}"
# The api-versions the pinned SDKs send (azure-ai-ml 1.35.2, azure-mgmt-containerinstance
# 10.1.0), asserted by the tests: a new pin that changes one must be looked at again against
# that version's REST specification.
AML_ENDPOINT_API_VERSIONS = {"2022-02-01-preview", "2023-04-01-preview"}  # endpoints, lists
AML_DEPLOYMENT_API_VERSION = "2023-04-01-preview"  # deployment and environment writes
ACI_API_VERSION = "2023-05-01"


class FakeCredential:
    """A token credential that never signs in."""

    def get_token(self, *scopes: str, **kwargs: Any) -> AccessToken:
        return AccessToken("fake-token", 4102444800)  # 2100-01-01

    def get_token_info(self, *scopes: str, **kwargs: Any) -> Any:
        from azure.core.credentials import AccessTokenInfo

        return AccessTokenInfo("fake-token", 4102444800)


@dataclass
class Reply:
    status: int = 200
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)


@dataclass
class Recorded:
    method: str
    url: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


Responder = Reply | dict[str, Any] | Callable[[Recorded], Reply | dict[str, Any]]


class _CannedSession(requests.Session):
    def __init__(self, transport: RecordingTransport) -> None:
        super().__init__()
        self._transport = transport

    def request(self, method: str | bytes, url: str | bytes, *args: Any, **kwargs: Any) -> Any:
        data = kwargs.get("data")
        body = data.encode() if isinstance(data, str) else bytes(data or b"")
        headers = {str(k): str(v) for k, v in (kwargs.get("headers") or {}).items()}
        return self._transport.answer(Recorded(str(method), str(url), headers, body))


class RecordingTransport(RequestsTransport):
    """``RequestsTransport`` whose session answers from canned routes; later routes win."""

    Reply = Reply

    def __init__(self) -> None:
        self.requests: list[Recorded] = []
        self.unexpected: list[str] = []
        self._routes: list[tuple[str, re.Pattern[str], Responder]] = []
        super().__init__(session=_CannedSession(self), session_owner=False)

    def route(self, method: str, pattern: str, reply: Responder) -> None:
        self._routes.insert(0, (method, re.compile(pattern), reply))

    def sent(self, method: str, pattern: str) -> list[Recorded]:
        """The recorded requests with this method whose URL matches ``pattern``."""
        return [r for r in self.requests if r.method == method and re.search(pattern, r.url)]

    def answer(self, request: Recorded) -> requests.Response:
        self.requests.append(request)
        for method, pattern, reply in self._routes:
            if method == request.method and pattern.search(request.url):
                made = reply(request) if callable(reply) else reply
                return _response(request, made if isinstance(made, Reply) else Reply(body=made))
        # Recorded too, in case the SDK swallows the error: the fixture checks it at teardown.
        self.unexpected.append(f"{request.method} {request.url}")
        raise AssertionError(f"unexpected request: {request.method} {request.url}")


def _response(request: Recorded, reply: Reply) -> requests.Response:
    if isinstance(reply.body, bytes):  # a blob's content, sent as it is
        data = reply.body
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(len(data))}
    else:
        data = b"" if reply.body is None else json.dumps(reply.body).encode()
        headers = {"Content-Type": "application/json"}
    headers.update(reply.headers)
    response = requests.Response()
    response.status_code = reply.status
    response.url = request.url
    response.headers.update(headers)
    response.raw = urllib3.HTTPResponse(
        body=io.BytesIO(data), headers=headers, status=reply.status, preload_content=False
    )
    return response


def fake_ml_client(transport: RecordingTransport) -> MLClient:
    """The real ``MLClient`` of the fake workspace, on ``transport``, with no progress bars or
    telemetry (as ``backends.azure.client.workspace_client`` builds it)."""
    from azure.ai.ml import MLClient

    return MLClient(
        FakeCredential(),
        SUB,
        RG,
        WS,
        transport=transport,
        show_progress=False,
        enable_telemetry=False,
    )
