"""The Docker Registry HTTP API v2 side of the fake registry (``tests/utils/oci_registry.py``).

What the registry holds (``RegistryState``: blobs, their links to repositories, manifests,
tags, uploads in progress, every request seen) and the request handler that serves the
distribution spec over it: the ``/v2/`` version check, blob existence, chunked and
monolithic uploads (with sha256 verification), cross-repository mounts, manifests by tag or
digest and tag lists, behind the Bearer-token check of ``tests/utils/oci_auth.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qs, urlsplit

if TYPE_CHECKING:
    from tests.utils.oci_registry import FakeRegistry

MANIFEST_V2 = "application/vnd.docker.distribution.manifest.v2+json"
_NAME = r"(?P<name>[a-z0-9]+(?:[._-][a-z0-9]+)*(?:/[a-z0-9]+(?:[._-][a-z0-9]+)*)*)"
_ROUTES = [
    ("blob", re.compile(rf"^/v2/{_NAME}/blobs/(?P<digest>sha256:[0-9a-f]{{64}})$")),
    ("uploads", re.compile(rf"^/v2/{_NAME}/blobs/uploads/?$")),
    ("upload", re.compile(rf"^/v2/{_NAME}/blobs/uploads/(?P<upload>[0-9a-f-]+)$")),
    ("manifest", re.compile(rf"^/v2/{_NAME}/manifests/(?P<ref>[A-Za-z0-9_.:+-]+)$")),
    ("tags", re.compile(rf"^/v2/{_NAME}/tags/list$")),
]


def sha256_digest(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass(frozen=True)
class ReceivedRequest:
    """One request as the registry saw it (``user`` is the Basic user, if any)."""

    method: str
    path: str
    status: int
    user: str = ""


@dataclass
class Manifest:
    media_type: str
    body: bytes

    @property
    def digest(self) -> str:
        return sha256_digest(self.body)

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class RegistryState:
    """What the registry holds; guarded by ``lock``."""

    blobs: dict[str, bytes] = field(default_factory=dict)  # digest -> bytes (all repos)
    links: dict[str, set[str]] = field(default_factory=dict)  # repo -> blob digests
    manifests: dict[str, dict[str, Manifest]] = field(default_factory=dict)  # repo -> digest
    tags: dict[str, dict[str, str]] = field(default_factory=dict)  # repo -> tag -> digest
    locked: set[tuple[str, str]] = field(default_factory=set)  # (repo, tag): no writes
    uploads: dict[str, tuple[str, bytearray]] = field(default_factory=dict)  # uuid -> repo
    requests: list[ReceivedRequest] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)


class RegistryApi(BaseHTTPRequestHandler):
    """The v2 API over ``registry``'s state: one instance per request (``http.server``)."""

    registry: FakeRegistry  # set on the subclass made by FakeRegistry.start
    protocol_version = "HTTP/1.1"
    server_version = "fake-registry/0.1"

    def log_message(self, format: str, *args: Any) -> None:
        pass  # recorded in RegistryState.requests instead

    # ------------------------------------------------------------ plumbing
    def _body(self) -> bytes:
        if "chunked" in self.headers.get("Transfer-Encoding", "").lower():
            data = bytearray()
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline().strip():  # trailers up to the blank line
                        pass
                    return bytes(data)
                data += self.rfile.read(size)
                self.rfile.readline()  # the CRLF after each chunk
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def _reply(
        self,
        status: int,
        body: bytes | dict[str, Any] = b"",
        headers: dict[str, str] | None = None,
        user: str = "",
        send_body: bool = True,
    ) -> None:
        data = json.dumps(body).encode() if isinstance(body, dict) else body
        path = urlsplit(self.path).path
        with self.registry.state.lock:
            self.registry.state.requests.append(ReceivedRequest(self.command, path, status, user))
        self.send_response(status)
        headers = {"Docker-Distribution-API-Version": "registry/2.0", **(headers or {})}
        if isinstance(body, dict):
            headers.setdefault("Content-Type", "application/json")
        headers.setdefault("Content-Length", str(len(data)))
        for key, value in headers.items():
            self.send_header(key, value)
        self.end_headers()
        if send_body and data:
            self.wfile.write(data)

    def _error(self, status: int, code: str, message: str, user: str = "") -> None:
        body = {"errors": [{"code": code, "message": message, "detail": None}]}
        self._reply(status, body, user=user, send_body=self.command != "HEAD")

    def _authorized(self, path: str) -> tuple[bool, str, str]:
        """Whether the Bearer token covers this request, the user it stands for, and the
        scope to name in a challenge. An open registry (no user) lets everything through."""
        tokens = self.registry.tokens
        if tokens is None:
            return True, "", ""
        name = next((m["name"] for _, pattern in _ROUTES if (m := pattern.match(path))), "")
        action = "pull" if self.command in ("GET", "HEAD") else "push"
        scope = f"repository:{name}:{'pull' if action == 'pull' else 'pull,push'}" if name else ""
        user = tokens.allowed(self.headers.get("Authorization", ""), name, action)
        return user is not None, user or "", scope

    def _dispatch(self) -> None:
        body = self._body() if self.command in ("PUT", "PATCH", "POST") else b""
        split = urlsplit(self.path)
        tokens = self.registry.tokens
        if tokens is not None and split.path in ("/oauth2/token", "/oauth2/exchange"):
            authorization = self.headers.get("Authorization", "")
            user = ""
            if split.path == "/oauth2/token" and self.command in ("GET", "POST"):
                status, answer, user = tokens.token(self.command, split.query, authorization, body)
            elif split.path == "/oauth2/exchange" and self.command == "POST":
                status, answer = tokens.exchange(body)
            else:
                status, answer = 405, {"error": "method not allowed"}
            self._reply(status, answer, user=user)
            return
        ok, user, scope = self._authorized(split.path)
        if not ok:
            self._reply(
                401,
                {"errors": [{"code": "UNAUTHORIZED", "message": "authentication required"}]},
                {"WWW-Authenticate": tokens.challenge(scope) if tokens else ""},
                send_body=self.command != "HEAD",
            )
            return
        query = {k: v[0] for k, v in parse_qs(split.query).items()}
        if split.path in ("/v2", "/v2/"):
            self._reply(200, {}, user=user, send_body=self.command != "HEAD")
            return
        for kind, pattern in _ROUTES:
            match = pattern.match(split.path)
            if match:
                handler = getattr(self, f"_{kind}_{self.command.lower()}", None)
                if handler is None:
                    break
                handler(user=user, body=body, query=query, **match.groupdict())
                return
        self._error(404, "NOT_FOUND", f"{self.command} {split.path} is not served", user)

    do_GET = do_HEAD = do_POST = do_PATCH = do_PUT = do_DELETE = _dispatch

    # ------------------------------------------------------------ blobs
    def _blob_head(self, name: str, digest: str, user: str, **_: Any) -> None:
        self._blob_get(name, digest, user, send_body=False)

    def _blob_get(
        self, name: str, digest: str, user: str, send_body: bool = True, **_: Any
    ) -> None:
        state = self.registry.state
        with state.lock:
            data = state.blobs.get(digest) if digest in state.links.get(name, set()) else None
        if data is None:
            self._error(404, "BLOB_UNKNOWN", f"blob {digest} unknown", user)
            return
        headers = {
            "Content-Type": "application/octet-stream",
            "Docker-Content-Digest": digest,
            "Content-Length": str(len(data)),
        }
        self._reply(200, data, headers, user=user, send_body=send_body)

    def _uploads_post(
        self, name: str, user: str, body: bytes, query: dict[str, str], **_: Any
    ) -> None:
        state = self.registry.state
        mount = query.get("mount", "")
        with state.lock:
            if mount and mount in state.blobs:
                state.links.setdefault(name, set()).add(mount)
                mounted = True
            else:
                mounted = False
        if mounted:
            headers = {"Location": f"/v2/{name}/blobs/{mount}", "Docker-Content-Digest": mount}
            self._reply(201, b"", headers, user=user)
            return
        if "digest" in query:  # a monolithic upload in one POST
            self._finish(name, query["digest"], bytearray(body), user)
            return
        upload = str(uuid.uuid4())
        with state.lock:
            state.uploads[upload] = (name, bytearray(body))
        self._reply(202, b"", self._upload_headers(name, upload, len(body)), user=user)

    def _upload_patch(self, name: str, upload: str, user: str, body: bytes, **_: Any) -> None:
        state = self.registry.state
        with state.lock:
            held = state.uploads.get(upload)
            if held is not None and held[0] == name:
                held[1].extend(body)
        if held is None or held[0] != name:
            self._error(404, "BLOB_UPLOAD_UNKNOWN", f"upload {upload} unknown", user)
            return
        self._reply(202, b"", self._upload_headers(name, upload, len(held[1])), user=user)

    def _upload_put(
        self, name: str, upload: str, user: str, body: bytes, query: dict[str, str], **_: Any
    ) -> None:
        with self.registry.state.lock:
            held = self.registry.state.uploads.pop(upload, None)
        if held is None or held[0] != name:
            self._error(404, "BLOB_UPLOAD_UNKNOWN", f"upload {upload} unknown", user)
            return
        held[1].extend(body)
        self._finish(name, query.get("digest", ""), held[1], user)

    def _finish(self, name: str, digest: str, data: bytearray, user: str) -> None:
        actual = sha256_digest(bytes(data))
        if digest != actual:
            self._error(400, "DIGEST_INVALID", f"got {actual}, expected {digest!r}", user)
            return
        with self.registry.state.lock:
            self.registry.state.blobs[digest] = bytes(data)
            self.registry.state.links.setdefault(name, set()).add(digest)
        headers = {"Location": f"/v2/{name}/blobs/{digest}", "Docker-Content-Digest": digest}
        self._reply(201, b"", headers, user=user)

    @staticmethod
    def _upload_headers(name: str, upload: str, size: int) -> dict[str, str]:
        return {
            "Location": f"/v2/{name}/blobs/uploads/{upload}",
            "Docker-Upload-UUID": upload,
            "Range": f"0-{max(size - 1, 0)}",
        }

    # ------------------------------------------------------------ manifests
    def _manifest_put(self, name: str, ref: str, user: str, body: bytes, **_: Any) -> None:
        with self.registry.state.lock:
            locked = (name, ref) in self.registry.state.locked
        if locked:
            self._error(403, "DENIED", f"{name}:{ref} is locked: writes are disabled", user)
            return
        media_type = self.headers.get("Content-Type", MANIFEST_V2)
        manifest = Manifest(media_type, body)
        try:
            parsed = manifest.json()
        except ValueError:
            self._error(400, "MANIFEST_INVALID", "not JSON", user)
            return
        referenced = [parsed.get("config", {}).get("digest")]
        referenced += [layer.get("digest") for layer in parsed.get("layers", [])]
        state = self.registry.state
        with state.lock:
            missing = [d for d in referenced if d and d not in state.links.get(name, set())]
            if not missing:
                state.manifests.setdefault(name, {})[manifest.digest] = manifest
                if not ref.startswith("sha256:"):
                    state.tags.setdefault(name, {})[ref] = manifest.digest
        if missing:
            self._error(400, "MANIFEST_BLOB_UNKNOWN", f"blob {missing[0]} unknown", user)
            return
        if ref.startswith("sha256:") and ref != manifest.digest:
            self._error(400, "DIGEST_INVALID", f"manifest digest is {manifest.digest}", user)
            return
        headers = {
            "Location": f"/v2/{name}/manifests/{manifest.digest}",
            "Docker-Content-Digest": manifest.digest,
        }
        self._reply(201, b"", headers, user=user)

    def _manifest_get(
        self, name: str, ref: str, user: str, send_body: bool = True, **_: Any
    ) -> None:
        manifest = self.registry.manifest(name, ref)
        if manifest is None:
            self._error(404, "MANIFEST_UNKNOWN", f"manifest {ref} unknown", user)
            return
        headers = {
            "Content-Type": manifest.media_type,
            "Docker-Content-Digest": manifest.digest,
            "Content-Length": str(len(manifest.body)),
        }
        self._reply(200, manifest.body, headers, user=user, send_body=send_body)

    def _manifest_head(self, name: str, ref: str, user: str, **_: Any) -> None:
        self._manifest_get(name, ref, user, send_body=False)

    def _tags_get(self, name: str, user: str, **_: Any) -> None:
        with self.registry.state.lock:
            tags = sorted(self.registry.state.tags.get(name, {}))
        self._reply(200, {"name": name, "tags": tags}, user=user)
