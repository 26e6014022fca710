"""The deployer's side of an environment's proxy: start it, switch its upstreams, drain.

The proxy (``backends.local.proxy``) reads ``proxy.json`` and reports in
``proxy-status.json``; these functions write the one and wait on the other, so they work
the same whether this process, a CLI or a Prefect worker started the proxy.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from backends.local import daemons
from backends.local.envstate import EnvFiles
from backends.local.jsonfile import read_json
from backends.local.proxy import write_config
from core.interfaces import BackendError

logger = logging.getLogger(__name__)

START_SECONDS = 15.0
SWITCH_SECONDS = 10.0


def _status(files: EnvFiles) -> dict[str, Any]:
    return read_json(files.status) or {}


def ensure_proxy(files: EnvFiles, state: dict[str, Any], urls: list[str], python: str) -> None:
    """Start the environment's proxy, routing to ``urls``, unless it already runs.

    Raises:
        BackendError: The proxy exited or did not report within 15 s (its log tail says why,
            e.g. the stable port is taken).
    """
    proxy = state["proxy"]
    if proxy and daemons.alive(proxy):
        if proxy.get("port") == files.port and _status(files).get("pid") == proxy["pid"]:
            return
        daemons.stop(proxy)  # the environment's port changed (or the status file was lost)
    state["generation"] = files.next_generation(state["generation"])
    write_config(files.config, state["generation"], urls)
    argv = [python, "-m", "backends.local.proxy", "--port", str(files.port)]
    argv += ["--config", str(files.config), "--status", str(files.status)]
    proxy = {**daemons.spawn(argv, {}, files.logs / "proxy.log"), "port": files.port}
    deadline = time.monotonic() + START_SECONDS
    # The proxy writes its status (with its PID) only once it listens.
    while _status(files).get("pid") != proxy["pid"]:
        if not daemons.alive(proxy) or time.monotonic() > deadline:
            daemons.stop(proxy)
            tail = daemons.log_tail(files.logs / "proxy.log", 5)
            raise BackendError(f"{files.env}: the proxy on {files.url} did not start:\n{tail}")
        time.sleep(0.02)
    state["proxy"] = proxy
    files.save(state)
    logger.info("%s: proxy listening on %s", files.env, files.url)


def stop_proxy(state: dict[str, Any]) -> None:
    """Stop the proxy (it finishes in-flight requests first)."""
    if state["proxy"]:
        daemons.stop(state["proxy"])
        state["proxy"] = None


def switch(files: EnvFiles, state: dict[str, Any], urls: list[str]) -> None:
    """Point the proxy at ``urls`` and wait until it says it routes to them.

    Raises:
        BackendError: The proxy died or did not acknowledge within 10 s.
    """
    generation = files.next_generation(state["generation"])
    write_config(files.config, generation, urls)
    state["generation"] = generation
    files.save(state)
    deadline = time.monotonic() + SWITCH_SECONDS
    while _status(files).get("generation", -1) < generation:
        if not state["proxy"] or not daemons.alive(state["proxy"]):
            raise BackendError(f"{files.env}: the proxy is not running")
        if time.monotonic() > deadline:
            raise BackendError(f"{files.env}: the proxy did not take the new upstreams")
        time.sleep(0.02)


def drain(files: EnvFiles, state: dict[str, Any], urls: set[str], timeout: float) -> None:
    """Wait (at most ``timeout`` s) until the proxy has no request in flight on ``urls``.

    Only meaningful after ``switch`` took ``urls`` out of the proxy's set: from then on no
    new request goes to them, so once their count is zero they can be stopped.
    """
    deadline = time.monotonic() + timeout
    while state["proxy"] and daemons.alive(state["proxy"]):
        status = _status(files)
        busy = urls & set(status.get("draining", {}))
        if status.get("generation", -1) >= state["generation"] and not busy:
            return
        if time.monotonic() > deadline:
            logger.warning("%s: stopping %s with requests in flight", files.env, sorted(busy))
            return
        time.sleep(0.02)
