"""The Azure ML parallel step's entry script: ``init()`` once per worker, ``run(mini_batch)``
per mini-batch of input files (``backends.azure.batch`` sends one file, one mini-batch).

Each file goes through ``training.batch_score.run``, the program the local backend runs as a
process: same checks, same chunking, same outputs (predictions, then ``lineage.json``) in the
step's output folder. The step's own arguments (``--model``, ``--model-sha256``, ...) come
from its program arguments; Azure ML appends arguments of its own, which are ignored.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from training.batch_score import build_parser
from training.batch_score import run as score_file

# Azure ML's entry-script contract keeps state between init() and run(): the parsed arguments.
_state: dict[str, argparse.Namespace] = {}


def init() -> None:
    """Parse the step's program arguments (Azure ML's own are left alone)."""
    parser = build_parser()
    for action in parser._actions:
        if action.dest == "data":
            action.required = False  # each file of a mini-batch is the data in turn
    _state["args"], _ = parser.parse_known_args()


def run(mini_batch: list[str]) -> list[str]:
    """Score each file of the mini-batch; one result line per file (Azure ML's summary)."""
    if "args" not in _state:
        raise RuntimeError("init() was not called")
    results: list[str] = []
    for path in mini_batch:
        args = argparse.Namespace(**{**vars(_state["args"]), "data": Path(path)})
        lineage: dict[str, Any] = score_file(args)
        results.append(f"{Path(path).name}: {lineage['input']['rows']} rows")
    return results
