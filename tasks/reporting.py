"""Tasks that publish what a run decided, as Prefect artifacts a person reads in the UI."""

from __future__ import annotations

from typing import Any

from prefect import task
from prefect.artifacts import create_markdown_artifact, create_table_artifact
from prefect.cache_policies import NONE

from core.results import RetrainingSummary
from training.gate_models import Decision


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.4f}"


def _metrics_rows(decision: Decision) -> list[dict[str, Any]]:
    rows = []
    for metric in ("rmse", "mae", "r2"):
        champion = decision.champion
        rows.append(
            {
                "metric": metric + (" (primary)" if metric == decision.primary_metric else ""),
                "challenger": round(getattr(decision.challenger, metric), 4),
                "champion": None if champion is None else round(getattr(champion, metric), 4),
            }
        )
    return rows


@task(name="publish-retraining-report", cache_policy=NONE)
def publish_retraining_report(summary: RetrainingSummary) -> None:
    """A markdown summary of the run and, when a model was trained, a metrics table."""
    decision = summary.decision
    lines = [f"# Retraining: {summary.outcome}", "", summary.message, ""]
    lines += ["| | |", "|---|---|"]
    for key in ("model", "version", "data_fingerprint", "curated_rows", "data_uri", "job_id"):
        value = getattr(summary, key)
        if value is not None:
            lines.append(f"| {key.replace('_', ' ')} | `{value}` |")
    if decision is not None:
        lines += [
            "",
            f"## Decision: **{decision.verdict}**",
            "",
            decision.reason,
            "",
            f"Champion: {decision.champion_version or 'none (first model)'}; "
            f"both scored on the same holdout of {decision.challenger.n} rows.",
            "",
            "| metric | challenger | champion |",
            "|---|---|---|",
        ]
        lines += [
            f"| {r['metric']} | {_fmt(r['challenger'])} | {_fmt(r['champion'])} |"
            for r in _metrics_rows(decision)
        ]
    if summary.files:
        lines += [
            "",
            "## Files",
            "",
            "| file | result | details | Data Docs |",
            "|---|---|---|---|",
        ]
        for f in summary.files:
            docs = f"[report]({f.data_docs})" if f.data_docs else ""
            lines.append(f"| `{f.file}` | {f.result} | {f.details} | {docs} |")
    create_markdown_artifact(
        key="retraining-summary", markdown="\n".join(lines), description=summary.message
    )
    if decision is not None:
        create_table_artifact(
            key="challenger-vs-champion",
            table=_metrics_rows(decision),
            description=f"verdict: {decision.verdict}",
        )
