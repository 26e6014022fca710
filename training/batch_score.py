"""The batch-scoring job: ``python -m training.batch_score --data FILE --model DIR --output DIR``.

What every batch backend runs (a local process; the Azure ML job's entry script): checks the
model folder is the registered file, scores the data file chunk by chunk into
``OUTPUT/predictions.parquet`` (or ``.csv``), then writes ``OUTPUT/lineage.json`` last: the
model (name, version, sha256, the fingerprint of its training data), the input (URI, etag,
sha256, rows), the output, the times and the job's peak memory. A lineage file therefore
means a complete predictions file beside it.

Exit codes: 0 done, 2 bad input or model (nothing written, the input untouched).
"""

from __future__ import annotations

import argparse
import logging
import resource
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from training.artifacts import sha256_file
from training.batch import (
    LINEAGE_FILE,
    BatchModel,
    load_batch_model,
    score_file,
    write_lineage,
)
from training.chunks import CHUNK_ROWS

logger = logging.getLogger("training.batch_score")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training.batch_score")
    parser.add_argument("--data", type=Path, required=True, help="CSV or Parquet features")
    parser.add_argument("--model", type=Path, required=True, help="the model folder")
    parser.add_argument("--model-name", required=True)
    parser.add_argument("--model-version", required=True)
    parser.add_argument("--model-sha256", required=True, help="the registry's model digest")
    parser.add_argument("--output", type=Path, required=True, help="folder for the outputs")
    parser.add_argument("--format", choices=("parquet", "csv"), default="parquet")
    parser.add_argument("--chunk-rows", type=int, default=CHUNK_ROWS)
    parser.add_argument("--input-uri", default="", help="where the data came from (lineage)")
    parser.add_argument("--input-etag", default="", help="the version read (lineage)")
    parser.add_argument("--output-uri", default="", help="where the outputs go (lineage)")
    return parser


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Score ``args.data`` and write the predictions and their lineage; returns the lineage."""
    if args.chunk_rows < 1:
        raise ValueError(f"--chunk-rows must be at least 1, not {args.chunk_rows}")
    started = datetime.now(UTC)
    model: BatchModel = load_batch_model(args.model, args.model_sha256)
    input_sha256 = sha256_file(args.data)
    dest = args.output / f"predictions.{args.format}"
    # A lineage file marks a complete output: an older one goes first, so a run that fails
    # half way never leaves a lineage beside predictions it did not describe.
    (args.output / LINEAGE_FILE).unlink(missing_ok=True)
    scored = score_file(args.data, args.data.name, model.estimator, dest, args.chunk_rows)
    lineage = {
        "model": {
            "name": args.model_name,
            "version": args.model_version,
            "sha256": model.sha256,
            "data_fingerprint": model.data_fingerprint,
            "estimator": model.estimator_name,
        },
        "input": {
            "uri": args.input_uri or str(args.data),
            "etag": args.input_etag or None,
            "sha256": input_sha256,
            "rows": scored.rows,
        },
        "output": {
            "uri": args.output_uri or str(args.output),
            "file": dest.name,
            "format": args.format,
            "sha256": scored.sha256,
            "rows": scored.rows,
            "columns": ["row", "prediction"],
        },
        "chunk_rows": args.chunk_rows,
        "chunks": scored.chunks,
        "started_at": started.isoformat(),
        "finished_at": datetime.now(UTC).isoformat(),
        # The job's high-water mark: the proof that memory stayed flat.
        "peak_rss_bytes": peak_rss_bytes(),
    }
    write_lineage(args.output, lineage)
    return lineage


def peak_rss_bytes() -> int:
    """This process's peak resident memory. Linux's ``VmHWM`` belongs to this program alone;
    ``getrusage``'s maximum also counts the parent's before ``exec`` (the fallback)."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def main(argv: list[str] | None = None) -> int:
    """Run the command line; 0 on success, 2 on bad input, model or usage."""
    logging.basicConfig(
        level=logging.INFO, stream=sys.stderr, format="%(asctime)s %(levelname)s %(message)s"
    )
    try:
        args = build_parser().parse_args(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2
    try:
        lineage = run(args)
    except OSError as exc:
        sys.stderr.write(f"batch scoring: error: cannot read {exc.filename}: {exc.strerror}\n")
        return 2
    except ValueError as exc:  # DataFormatError, ModelFileError, bad arguments
        sys.stderr.write(f"batch scoring: error: {exc}\n")
        return 2
    logger.info(
        "scored %d rows in %d chunks with %s v%s into %s",
        lineage["input"]["rows"],
        lineage["chunks"],
        lineage["model"]["name"],
        lineage["model"]["version"],
        args.output,
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
