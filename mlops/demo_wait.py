"""What the demo (and the end-to-end test of the whole loop) watches the Prefect server with:
waiting with a deadline, and the runs of a flow that something other than its schedule
started."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")


class DemoError(RuntimeError):
    """A step did not finish in time; the message says which and where to look."""


def wait(what: str, check: Callable[[], T | None], timeout: float, status: Any = None) -> T:
    """``check()``'s first truthy value; ``DemoError`` naming ``what`` after ``timeout`` s.

    Args:
        status: A rich status line to show ``what`` on; None: nothing shown.
    """
    if status is not None:
        status.update(f"[bold]{what}[/bold] …")
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(1.5)
    raise DemoError(f"timed out after {timeout:.0f} s waiting for: {what}")


def runs(client: Any, flow: str, since: float) -> list[Any]:
    """The runs of ``flow`` created since ``since`` (epoch s), oldest first, without the ones
    a schedule put in the future: deployment runs and subflows alike (on the local profile a
    retraining run releases what it registers as a subflow)."""
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName

    found = client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=[flow])))
    mine = [
        r for r in found if not r.auto_scheduled and r.created and r.created.timestamp() >= since
    ]
    return sorted(mine, key=lambda r: r.created)


def finished(found: list[Any]) -> list[Any]:
    return [r for r in found if r.state and r.state.is_final()]


def settled(found: list[Any]) -> list[Any]:
    """``found`` when every run in it has ended; [] while one has not (or there is none)."""
    return found if found == finished(found) else []
