"""How flows end: Completed with their result, or Failed with an exception carrying it.

Prefect accepts only an exception as the data of a Failed state (a deployed run crashes on
anything else), so the result of a failed run travels inside ``RunFailed``.
"""

from __future__ import annotations

from typing import Any, TypeVar

from prefect.states import Completed, Failed, State
from pydantic import BaseModel

R = TypeVar("R", bound=BaseModel)


class RunFailed(Exception):
    """A flow's clean, explained failure; ``result`` is what the run concluded."""

    def __init__(self, message: str, result: BaseModel) -> None:
        super().__init__(message, result)  # both in args, so it pickles
        self.message = message
        self.result = result

    def __str__(self) -> str:
        return self.message


def completed(message: str, result: R) -> State[R]:
    return Completed(message=message, data=result)


def failed(message: str, result: BaseModel) -> State[Any]:
    return Failed(message=message, data=RunFailed(message, result))


def result_of(state: State[Any], kind: type[R]) -> R | None:
    """The typed result a finished run returned, whether it completed or failed cleanly;
    None when it crashed or returned something else."""
    value = state.result(raise_on_failure=False)
    if isinstance(value, RunFailed):
        value = value.result
    return value if isinstance(value, kind) else None
