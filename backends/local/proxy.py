"""The reverse proxy that owns an environment's stable URL (``python -m backends.local.proxy``).

One proxy process per environment listens on the stable port (production: 127.0.0.1:8700)
and forwards each HTTP request to one of the replica upstreams listed in a config file.
Whoever deploys rewrites that file (atomically, with a higher ``generation``); the proxy
polls it every 50 ms and reports back in a status file: the generation it serves and, for
upstreams it no longer routes to, how many requests are still in flight ("draining").

Why HTTP-aware, per-request routing (and not a TCP proxy or SO_REUSEPORT):

- Clients keep connections alive. A TCP proxy pins a client connection to one replica for
  the connection's whole life, so an old replica can only be stopped by cutting
  connections, and a client that sends its next request just as the connection is cut sees
  a failure. Here the client's connection ends at the proxy: every request picks an
  upstream from the current set, so after a switch the very next request on an old
  keep-alive connection already goes to a new replica. Nothing has to be closed.
- The switch is one assignment in the proxy's event loop. A request that picked an old
  upstream was counted before the switch, so the status written at the switch lists every
  request an old replica still owes; the deployer stops old replicas only once that count
  is zero. No request is ever sent to a stopped replica.
- Transport failures are retried: a pooled upstream connection that the replica closed
  while idle is replaced by a fresh one, and a refused or reset connection moves on to the
  next replica (3 attempts). Nothing has reached the client yet (whole messages are
  buffered) and scoring is a pure function of the request, so resending ``POST /score`` is
  safe. Idle upstream connections are dropped after 2 s, before the replicas' own idle
  timeout (uvicorn: 5 s), so that race is rare to begin with. Timeouts are not retried
  (504): the replica may still be working.
- SO_REUSEPORT replicas on one port were considered and rejected: the kernel hands new
  connections to whichever socket it hashes them to, including a replica that has bound
  but not loaded its model; a closing listener resets the connections still queued in its
  backlog; there is no atomic "switch now"; and keep-alive connections stay pinned to the
  old process. Each of these turns into failed requests during a promotion.

It is plain asyncio streams (``httpwire`` frames HTTP/1.1, ``upstream`` pools connections),
not uvicorn + httpx: on this 2-core machine that stack cost ~2 ms of CPU per proxied
request, this one ~0.3 ms.
Scope: HTTP/1.1 and 1.0 on loopback, no TLS, no Upgrade/WebSocket, bodies up to 8 MiB.
On SIGTERM it stops accepting, lets in-flight requests finish (30 s at most), then exits.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

from backends.local.httpwire import (
    MAX_HEAD_BYTES,
    HttpError,
    Message,
    end_to_end,
    error_response,
    has_no_body,
    read_body,
    read_request,
    serialize,
)
from backends.local.jsonfile import read_json, write_json_atomic
from backends.local.upstream import UpstreamPool

log = logging.getLogger(__name__)

POLL_SECONDS = 0.05
ATTEMPTS = 3
MAX_BODY_BYTES = 8 * 1024 * 1024
RESPONSE_SECONDS = 60.0
CLIENT_IDLE_SECONDS = 75.0  # like nginx: longer than any client pool keeps idle connections
SHUTDOWN_SECONDS = 30.0


def write_config(path: Path, generation: int, upstreams: list[str]) -> None:
    """Tell the proxy to route to ``upstreams`` (``http://host:port``) from now on."""
    write_json_atomic(path, {"generation": generation, "upstreams": upstreams})


class ReverseProxy:
    """Routes each request to the next upstream of the current set (round robin)."""

    def __init__(self, config_path: Path, status_path: Path) -> None:
        self.config_path = config_path
        self.status_path = status_path
        self.generation = -1
        self.upstreams: tuple[str, ...] = ()
        self.closing = False
        self.active = 0  # requests being handled, for a graceful shutdown
        self._next = 0
        self._inflight: Counter[str] = Counter()
        self.pool = UpstreamPool(max_body=MAX_BODY_BYTES, timeout=RESPONSE_SECONDS)
        self._config_sig: tuple[int, int, int] | None = None
        self._last_status: dict[str, Any] | None = None

    # ------------------------------------------------------------------ config and status
    def reload(self) -> None:
        """Apply the config file if it changed, then publish the status if it changed."""
        try:
            st = self.config_path.stat()
            sig: tuple[int, int, int] | None = (st.st_ino, st.st_mtime_ns, st.st_size)
        except FileNotFoundError:
            sig = None
        if sig is not None and sig != self._config_sig:
            self._config_sig = sig
            config = read_json(self.config_path) or {}
            try:
                generation = int(config["generation"])
                upstreams = tuple(str(u).rstrip("/") for u in config["upstreams"])
            except (KeyError, TypeError, ValueError):
                log.error("ignoring unreadable config %s", self.config_path)
            else:
                if generation > self.generation:
                    self.generation, self.upstreams = generation, upstreams
                    self.pool.forget(keep=upstreams)
                    log.info("generation %d: routing to %s", generation, ", ".join(upstreams))
        self._publish()

    def _publish(self) -> None:
        draining = {u: n for u, n in self._inflight.items() if n and u not in self.upstreams}
        status = {
            "pid": os.getpid(),
            "generation": self.generation,
            "upstreams": list(self.upstreams),
            "draining": draining,
        }
        if status != self._last_status:
            write_json_atomic(self.status_path, status)
            self._last_status = status

    async def watch(self) -> None:
        """Poll the config file until cancelled."""
        while True:
            try:
                self.reload()
            except OSError:
                log.exception("cannot read config or write status")
            await asyncio.sleep(POLL_SECONDS)

    def _pick(self) -> str | None:
        if not self.upstreams:
            return None
        self._next = (self._next + 1) % len(self.upstreams)
        upstream = self.upstreams[self._next]
        # Counted in the same loop step as the pick, so a switch never misses it.
        self._inflight[upstream] += 1
        return upstream

    def _done(self, upstream: str) -> None:
        self._inflight[upstream] -= 1
        if not self._inflight[upstream]:
            del self._inflight[upstream]

    # ------------------------------------------------------------------ client side
    async def handle_client(
        self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
    ) -> None:
        """Serve one client connection: requests in order, until either side closes."""
        peer = writer.get_extra_info("peername")
        client_ip = str(peer[0]).encode() if peer else b""
        try:
            while not self.closing:
                try:
                    req = await asyncio.wait_for(read_request(reader), CLIENT_IDLE_SECONDS)
                except TimeoutError:
                    break
                if req is None:
                    break
                if req.version == b"HTTP/1.1" and b"100-continue" in req.tokens(b"expect"):
                    writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
                await asyncio.wait_for(read_body(reader, req, MAX_BODY_BYTES), RESPONSE_SECONDS)
                self.active += 1
                try:
                    data, keep = await self._respond(req, client_ip)
                finally:
                    self.active -= 1
                writer.write(data)
                await writer.drain()
                if not keep:
                    break
        except HttpError as exc:
            writer.write(error_response(exc.status))
        except (OSError, asyncio.IncompleteReadError):
            pass  # the client went away (or was too slow): nothing to answer
        finally:
            writer.close()

    async def _respond(self, req: Message, client_ip: bytes) -> tuple[bytes, bool]:
        keep = req.keep_alive and not self.closing
        status = 503  # no upstream configured
        for _ in range(ATTEMPTS):
            upstream = self._pick()
            if upstream is None:
                break
            try:
                resp = await self.pool.exchange(upstream, req, client_ip)
            except TimeoutError:
                log.warning("%s did not answer within %.0f s", upstream, RESPONSE_SECONDS)
                return error_response(504, close=not keep), keep
            except HttpError as exc:
                log.error("%s sent an unusable response: %s", upstream, exc)
                return error_response(502, close=not keep), keep
            except (OSError, asyncio.IncompleteReadError) as exc:
                status = 502
                log.warning("retrying after %s failed: %r", upstream, exc)
                continue
            finally:
                self._done(upstream)
            headers = end_to_end(resp)
            if not has_no_body(req.method, resp.status):
                headers.append((b"content-length", str(len(resp.body)).encode()))
            elif req.method == b"HEAD" and (length := resp.get(b"content-length")) is not None:
                headers.append((b"content-length", length))
            if not keep:
                headers.append((b"connection", b"close"))
            elif req.version == b"HTTP/1.0":
                headers.append((b"connection", b"keep-alive"))
            start = b"HTTP/1.1" + resp.start[len(resp.version) :]
            return serialize(start, headers, resp.body), keep
        log.error("no upstream could answer %s %s", req.method.decode(), req.target.decode())
        return error_response(status, close=not keep), keep


async def serve(host: str, port: int, config_path: Path, status_path: Path) -> None:
    """Bind ``host:port``, then proxy until SIGTERM/SIGINT (in-flight requests finish)."""
    proxy = ReverseProxy(config_path, status_path)
    server = await asyncio.start_server(
        proxy.handle_client, host, port, reuse_address=True, backlog=2048, limit=MAX_HEAD_BYTES
    )
    proxy.reload()  # written after the bind: a status file with our pid means "listening"
    watcher = asyncio.create_task(proxy.watch())
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("stopping: no new connections, waiting for %d request(s)", proxy.active)
    proxy.closing = True
    server.close()
    deadline = time.monotonic() + SHUTDOWN_SECONDS
    while proxy.active and time.monotonic() < deadline:
        await asyncio.sleep(POLL_SECONDS)
    watcher.cancel()


def main(argv: list[str] | None = None) -> None:
    """Command line: ``--port``, ``--config`` and ``--status`` (``--host`` 127.0.0.1)."""
    parser = argparse.ArgumentParser(description="Reverse proxy for a stable environment URL.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--config", type=Path, required=True)
    parser.add_argument("--status", type=Path, required=True)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    asyncio.run(serve(args.host, args.port, args.config, args.status))


if __name__ == "__main__":
    main()
