"""How flows end: Completed with their summary, or Failed with an exception carrying it.

Prefect accepts only an exception as the data of a Failed state (a deployed run crashes on
anything else), so the summary of a failed run travels inside ``RunFailed``.
"""

from __future__ import annotations

from typing import Any

from prefect.states import Completed, Failed, State


class RunFailed(Exception):
    """A flow's clean, explained failure; ``summary`` is what the run did before failing."""

    def __init__(self, message: str, summary: dict[str, Any]) -> None:
        super().__init__(message, summary)  # both in args, so it pickles
        self.message = message
        self.summary = summary

    def __str__(self) -> str:
        return self.message


def completed(message: str, summary: dict[str, Any]) -> State[dict[str, Any]]:
    return Completed(message=message, data=summary)


def failed(message: str, summary: dict[str, Any]) -> State[Any]:
    return Failed(message=message, data=RunFailed(message, summary))


def summary_of(state: State[Any]) -> dict[str, Any]:
    """The summary a finished run returned, whether it completed or failed cleanly."""
    result = state.result(raise_on_failure=False)
    if isinstance(result, RunFailed):
        return result.summary
    return result if isinstance(result, dict) else {}
