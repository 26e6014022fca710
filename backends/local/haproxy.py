"""HAProxy in front of an environment's replicas: its config and its runtime API.

One HAProxy process per environment owns the stable URL (production: 127.0.0.1:8700). Its
config (``haproxy.cfg``, rendered from ``TEMPLATE``) declares two empty backends, ``blue``
and ``green``; the frontend routes every request to the one named by the ``active`` key of
a map (``haproxy.map``). Replicas come and go through the runtime API on a unix socket
(``stats socket ... level admin``), never with a reload:

- a release's replicas go into the idle backend (``add server``, ``enable health``,
  ``set server ... state ready``) and HAProxy health-checks them (``GET /``, the scoring
  service's readiness route) until it sees them UP;
- ``set map ... active <backend>`` switches in one step: every request that starts after it
  goes to the new release (a client never sees the old one again), those in flight finish;
- the old replicas are drained, and deleted (``state maint`` + ``del server``) once HAProxy
  reports nothing in flight on them.

HAProxy retries a request that could not connect or got no answer (``retry-on``; scoring is
a pure function of the request, so resending ``POST /score`` is safe) on another replica
(``option redispatch 1``), marks a dead replica down within about a second, and serves
Prometheus metrics on a separate loopback port (``/metrics``, its built-in exporter).

HAProxy 2.6 notes: dynamic servers ignore ``default-server``, so every option is given to
``add server``; their health checks start disabled (hence ``enable health``); they keep no
idle connection unless ``pool-max-conn`` is given (the documented default, unlimited, is
only that of servers in the config file), so without it every request opened a new
connection to a replica and closed it (measured: 1 connect per request, no reuse; the
replica then spent 2-3x its CPU per request on connection set-up); a server can only be
deleted in maintenance with no connection left (idle pooled ones included), so ``remove``
retries ``del server`` until the idle ones are gone (``pool-purge-delay``).
"""

from __future__ import annotations

import csv
import hashlib
import io
import logging
import shutil
import socket
import tempfile
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from backends.local import daemons
from backends.local.envstate import HOST, EnvFiles, free_port
from core.interfaces import BackendError

log = logging.getLogger(__name__)

BACKENDS = ("blue", "green")
# Options of every replica: health checks on the readiness route, quick to mark a dead one
# down (a refused or reset connection counts as a failed check too: observe layer4); idle
# connections to it kept for reuse (keep-alive to the replicas, see the notes above).
SERVER_OPTIONS = (
    "check inter 500ms fastinter 200ms downinter 500ms rise 1 fall 2 "
    "observe layer4 error-limit 1 on-error fastinter pool-max-conn -1 pool-purge-delay 1s"
)

TEMPLATE = """\
# Rendered by backends.local.haproxy for environment {env}: do not edit (rewritten at start).
global
    stats socket {socket} mode 600 level admin
    stats timeout 30s
    log stderr format raw local0 info
    maxconn 4096

defaults
    mode http
    log global
    option dontlognull
    # Only requests that went wrong (errors, retries, redispatches) reach the log.
    option httplog
    option dontlog-normal
    timeout connect 1s
    timeout client 75s
    timeout http-request 10s
    timeout http-keep-alive 75s
    timeout server 60s
    timeout queue 10s
    timeout check 2s
    retries 3
    option redispatch 1
    # Scoring requests are pure: resend one that never reached a replica or got no answer
    # (a refused connection, a replica killed mid-request, a closed idle connection).
    retry-on conn-failure empty-response junk-response 503
    http-reuse safe

frontend stable
    bind {host}:{port}
    # Each replica's /metrics is for Prometheus, which scrapes the replicas one by one.
    http-request deny deny_status 404 if {{ path /metrics }}
    use_backend %[str(active),map({map})]
    default_backend blue

backend blue
    balance roundrobin
    option httpchk GET /
    http-check expect status 200

backend green
    balance roundrobin
    option httpchk GET /
    http-check expect status 200

frontend metrics
    bind {host}:{metrics_port}
    http-request use-service prometheus-exporter if {{ path /metrics }}
    http-request return status 404
"""


class HAProxyError(BackendError):
    """HAProxy did not start, refused a runtime command, or could not be reached."""


def render(
    env: str, host: str, port: int, metrics_port: int, socket_path: Path, map_path: Path
) -> str:
    """The config of one environment's HAProxy."""
    return TEMPLATE.format(
        env=env, host=host, port=port, metrics_port=metrics_port, socket=socket_path,
        map=map_path,
    )  # fmt: skip


def server_name(port: int) -> str:
    """The name of the replica listening on ``port`` in the backend."""
    return f"r{port}"


def find_binary(name: str = "haproxy") -> str:
    """The HAProxy executable (``/usr/sbin`` is not on every user's PATH).

    Raises:
        HAProxyError: It is not installed (``make setup`` installs it).
    """
    found = shutil.which(name) or shutil.which(name, path="/usr/sbin:/usr/local/sbin")
    if not found:
        raise HAProxyError(f"{name} is not installed (make setup installs the Debian package)")
    return found


@dataclass(frozen=True)
class Server:
    """One server of the backend as ``show stat`` reports it."""

    backend: str
    name: str
    status: str  # "UP", "UP 1/2" (going down), "DOWN", "MAINT", "DRAIN", ...
    current: int  # requests being served (scur)
    queued: int  # requests waiting for it (qcur)


class Runtime:
    """A client of one HAProxy's runtime API (one command per connection).

    Server names are ``r<port>``: unique across both backends, so a replica is found by its
    port alone.

    Args:
        socket_path: The ``stats socket`` of the config.
        map_path: The map whose ``active`` key names the backend that serves.
        timeout: Seconds to wait for an answer.
    """

    def __init__(self, socket_path: Path, map_path: Path, timeout: float = 5.0) -> None:
        self.socket_path = socket_path
        self.map_path = map_path
        self.timeout = timeout

    def command(self, line: str) -> str:
        """Send one command; returns HAProxy's answer as is."""
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
                sock.settimeout(self.timeout)
                sock.connect(str(self.socket_path))
                sock.sendall(line.encode() + b"\n")
                chunks = []
                while chunk := sock.recv(65536):
                    chunks.append(chunk)
        except OSError as exc:
            raise HAProxyError(f"HAProxy runtime API {self.socket_path}: {exc}") from exc
        return b"".join(chunks).decode(errors="replace")

    def _do(self, line: str, success: str = "") -> None:
        """Run a command whose only successful answer is ``success``."""
        answer = self.command(line).strip()
        if answer != success:
            raise HAProxyError(f"HAProxy refused {line!r}: {answer}")

    def pid(self) -> int | None:
        """HAProxy's PID, or None if it does not answer."""
        try:
            info = self.command("show info")
        except HAProxyError:
            return None
        for row in info.splitlines():
            if row.startswith("Pid:"):
                return int(row.split(":", 1)[1])
        return None

    def active(self) -> str:
        """The backend that serves (``blue`` or ``green``)."""
        for row in self.command(f"show map {self.map_path}").splitlines():
            parts = row.split()
            if len(parts) == 3 and parts[1] == "active" and parts[2] in BACKENDS:
                return parts[2]
        raise HAProxyError(f"no active backend in {self.map_path}")

    def switch(self, backend: str) -> None:
        """Route every request from now on to ``backend`` (one atomic map update)."""
        self._do(f"set map {self.map_path} active {backend}")

    def servers(self) -> dict[int, Server]:
        """Every replica of both backends, by port."""
        text = self.command("show stat")
        if not text.startswith("# pxname"):
            raise HAProxyError(f"unexpected answer to 'show stat': {text[:200]!r}")
        found = {}
        for row in csv.DictReader(io.StringIO(text[2:])):
            name = row["svname"]
            if row["pxname"] in BACKENDS and name.startswith("r") and name[1:].isdigit():
                found[int(name[1:])] = Server(
                    row["pxname"], name, row["status"], int(row["scur"] or 0),
                    int(row["qcur"] or 0),
                )  # fmt: skip
        return found

    def wait_idle(self, backend: str, timeout: float) -> bool:
        """After a ``switch`` away from ``backend``: wait until no request is on it.

        A request that chose ``backend`` just before the switch may not have a server yet
        (so no server's count shows it): the backend's own count does. It is read twice in a
        row at zero, since a request picks the backend and is counted a moment apart.

        Returns:
            False if requests were still on it after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        zeros = 0
        while zeros < 2:
            current, queued = self._backend_load(backend)
            zeros = zeros + 1 if current == queued == 0 else 0
            if zeros < 2 and time.monotonic() > deadline:
                log.warning("backend %s still has %d request(s) in flight", backend, current)
                return False
            time.sleep(0.02)
        return True

    def _backend_load(self, backend: str) -> tuple[int, int]:
        text = self.command("show stat")
        for row in csv.DictReader(io.StringIO(text[2:])):
            if row["pxname"] == backend and row["svname"] == "BACKEND":
                return int(row["scur"] or 0), int(row["qcur"] or 0)
        raise HAProxyError(f"no backend {backend} in 'show stat'")

    def add(self, backend: str, host: str, port: int) -> None:
        """Put the replica on ``host:port`` into ``backend``, health-checked, ready to serve."""
        server = self.servers().get(port)
        if server is not None and server.backend != backend:
            self.remove(port, timeout=0.0)
            server = None
        name = f"{backend}/{server_name(port)}"
        if server is None:
            self._do(f"add server {name} {host}:{port} {SERVER_OPTIONS}", "New server registered.")
        self._do(f"enable health {name}")
        # Out of maintenance (where new servers start) or drain (a rolled-back switch).
        self._do(f"set server {name} state ready")

    def wait_up(self, ports: Iterable[int], timeout: float) -> None:
        """Wait until HAProxy's own health checks say every replica on ``ports`` is UP.

        Raises:
            HAProxyError: Some were not UP after ``timeout`` seconds.
        """
        deadline = time.monotonic() + timeout
        while True:
            servers = self.servers()
            states = {p: servers[p].status if p in servers else "absent" for p in ports}
            pending = {p: s for p, s in states.items() if s != "UP"}
            if not pending:
                return
            if time.monotonic() > deadline:
                raise HAProxyError(f"HAProxy does not see {pending} as UP after {timeout:.0f} s")
            time.sleep(0.05)

    def drain(self, port: int) -> None:
        """No new request goes to the replica on ``port``; those in flight finish."""
        server = self.servers().get(port)
        if server is not None:
            self._do(f"set server {server.backend}/{server.name} state drain")

    def prune(self, keep: Iterable[int], timeout: float) -> None:
        """Drain and remove every replica but those on ``keep`` (what a crash left behind)."""
        for port in set(self.servers()) - set(keep):
            self.drain(port)
            self.remove(port, timeout)

    def remove(self, port: int, timeout: float) -> bool:
        """Wait until the (drained) replica has nothing in flight, then delete it.

        Returns:
            False if it still had requests in flight or connections after ``timeout``
            seconds; it is then left in maintenance (no traffic) for a later ``prune``.
        """
        deadline = time.monotonic() + timeout
        while (server := self.servers().get(port)) is not None:
            if server.current == 0 and server.queued == 0:
                break
            if time.monotonic() > deadline:
                log.warning("%s still has %d request(s) in flight", server.name, server.current)
                break
            time.sleep(0.02)
        if server is None:
            return True
        name = f"{server.backend}/{server.name}"
        self._do(f"set server {name} state maint")
        while True:
            try:
                self._do(f"del server {name}", "Server deleted.")
                return True
            except HAProxyError as exc:  # idle pooled connections go within pool-purge-delay
                if time.monotonic() > deadline:
                    log.warning("cannot delete %s yet: %s", name, exc)
                    return False
            time.sleep(0.05)


# ---------------------------------------------------------------------- the deployer's side
START_SECONDS = 15.0
MAX_SOCKET_PATH = 97  # HAProxy 2.6: "socket path ... too long (max 97)"


def _socket_path(files: EnvFiles) -> Path:
    """The runtime API socket: in the environment's folder unless that path is longer than
    HAProxy takes (97 bytes), then in the temp folder under a name derived from it."""
    path = files.dir.resolve() / "haproxy.sock"
    if len(str(path)) <= MAX_SOCKET_PATH:
        return path
    digest = hashlib.sha256(str(path).encode()).hexdigest()[:16]
    return Path(tempfile.gettempdir()) / f"mlops-haproxy-{digest}.sock"


def _map_path(files: EnvFiles) -> Path:
    return files.dir.resolve() / "haproxy.map"


def runtime(files: EnvFiles) -> Runtime:
    """The runtime API client of the environment's HAProxy."""
    return Runtime(_socket_path(files), _map_path(files))


def ensure(files: EnvFiles, state: dict[str, Any], binary: str) -> Runtime:
    """Start the environment's HAProxy (no replica yet) unless it already runs.

    Raises:
        HAProxyError: HAProxy exited or did not answer within 15 s (its log tail says why,
            e.g. the stable port is taken).
    """
    api = runtime(files)
    proxy = state.get("proxy")
    if proxy and daemons.alive(proxy):
        if proxy.get("port") == files.port and api.pid() == proxy["pid"]:
            return api
        daemons.stop(proxy)  # the environment's port changed (or its socket was lost)
    metrics_port = free_port({files.port})
    sock = _socket_path(files)
    sock.unlink(missing_ok=True)
    files.dir.mkdir(parents=True, exist_ok=True, mode=0o700)
    config = files.dir / "haproxy.cfg"
    _map_path(files).write_text("active blue\n")
    config.write_text(render(files.env, HOST, files.port, metrics_port, sock, _map_path(files)))
    log_path = files.logs / "haproxy.log"
    argv = [binary, "-f", str(config.resolve()), "-db"]  # -db: foreground, stopped by PID
    proxy = {**daemons.spawn(argv, {}, log_path), "port": files.port}
    proxy["metrics_port"] = metrics_port
    deadline = time.monotonic() + START_SECONDS
    while api.pid() != proxy["pid"]:  # the socket answers once the listeners are bound
        if not daemons.alive(proxy) or time.monotonic() > deadline:
            daemons.stop(proxy)
            tail = daemons.log_tail(log_path, 5)
            raise HAProxyError(f"{files.env}: HAProxy on {files.url} did not start:\n{tail}")
        time.sleep(0.02)
    state["proxy"] = proxy
    files.save(state)
    log.info(
        "%s: HAProxy %d on %s (metrics: http://%s:%d/metrics)",
        files.env, proxy["pid"], files.url, HOST, metrics_port,
    )  # fmt: skip
    return api


def stop(files: EnvFiles, state: dict[str, Any]) -> None:
    """Stop the environment's HAProxy and forget its files."""
    if state.get("proxy"):
        daemons.stop(state["proxy"])
        state["proxy"] = None
    _socket_path(files).unlink(missing_ok=True)
    (files.dir / "haproxy.cfg").unlink(missing_ok=True)
    _map_path(files).unlink(missing_ok=True)
