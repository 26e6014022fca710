"""Where the time goes from a file landing to its model serving in production.

Pure: computed from the times the Prefect server recorded (the announcing event, the two flow
runs with their state changes and task runs; ``tasks.timeline`` reads them), so the release
run's artifact and ``bench/bench_pipeline.py`` tell the same story. The path is one line:

    landed -> announced (detection) -> retraining run created (trigger) -> picked up by the
    worker -> running (process start-up: Python, Prefect, the flow's imports) -> model
    registered -> release run created -> picked up -> running -> production serves it

Every second of it falls in one of three kinds:

- ``detection``: landing to announcement, i.e. waiting for the watcher's next poll;
- ``work``: inside a task run (validation, training, gate, registration, image build, QA,
  smoke, promotion, and the bookkeeping tasks: attempts, curated set, aliases, locks...);
- ``orchestration``: everything else on the path: the event trigger, the worker's pickup, a
  flow run's start-up, and the gaps around and between task runs (task and flow engine
  overhead, and flow-level calls such as taking the model lock).

The target (issue 11): total <= 30 s, orchestration <= 15 % of it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

TARGET_TOTAL_SECONDS = 30.0
TARGET_ORCHESTRATION_SHARE = 0.15

# Task name -> stage of the pipeline. "deploy" is QA for the first deploy of a release run
# and promotion for the second (tasks.release.deploy is the same task for both).
STAGE_OF_TASK = {
    "validate-data": "validation",
    "train-on-compute": "training",
    "find-champion": "gate",
    "judge-challenger": "gate",  # the job scored both models; this reads its record
    "register-model": "registration",
    "announce-model": "registration",
    "download-model": "image build",
    "build-image": "image build",
    "smoke-test": "smoke",
}
STAGES = (
    "validation", "training", "gate", "registration", "image build", "QA", "smoke", "promotion",
    "bookkeeping",
)  # fmt: skip
ORCHESTRATION = ("trigger", "worker pickup", "flow start-up", "task & flow overhead")


@dataclass(frozen=True)
class Span:
    """One task run: its task's name and when it ran."""

    task: str
    start: datetime
    end: datetime


@dataclass(frozen=True)
class RunTimes:
    """One flow run as the server recorded it."""

    flow: str
    created: datetime  # by the trigger (or a person)
    pending: datetime | None  # a worker took it
    running: datetime | None  # its process started the flow (imports done)
    ended: datetime | None
    tasks: tuple[Span, ...] = ()


@dataclass(frozen=True)
class PipelineTimes:
    """One file's way to production. ``serving``: when production first answered with the
    new version (None: the end of the release's production deploy, which switched it)."""

    retraining: RunTimes
    release: RunTimes
    landed: datetime | None = None
    announced: datetime | None = None
    serving: datetime | None = None


@dataclass
class Breakdown:
    """Seconds per stage, by kind, on the path from landing to serving."""

    detection: float = 0.0
    work: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))
    orchestration: dict[str, float] = field(
        default_factory=lambda: dict.fromkeys(ORCHESTRATION, 0.0)
    )

    @property
    def total(self) -> float:
        return self.detection + sum(self.work.values()) + sum(self.orchestration.values())

    @property
    def orchestration_total(self) -> float:
        return sum(self.orchestration.values())

    @property
    def orchestration_share(self) -> float:
        return self.orchestration_total / self.total if self.total > 0 else 0.0

    def rows(self) -> list[tuple[str, str, float]]:
        """(stage, kind, seconds), in path order within each kind."""
        return [
            ("detection", "detection", self.detection),
            *((stage, "work", s) for stage, s in self.work.items()),
            *((part, "orchestration", s) for part, s in self.orchestration.items()),
        ]

    def verdict(self) -> list[str]:
        """The targets, each with its ratio (measured / target) and whether it is met."""
        total_ratio = self.total / TARGET_TOTAL_SECONDS
        share_ratio = self.orchestration_share / TARGET_ORCHESTRATION_SHARE
        return [
            f"total {self.total:.1f} s vs target {TARGET_TOTAL_SECONDS:.0f} s: "
            f"ratio {total_ratio:.2f} ({'met' if total_ratio <= 1 else 'NOT met'})",
            f"orchestration {self.orchestration_share:.1%} vs target "
            f"{TARGET_ORCHESTRATION_SHARE:.0%}: ratio {share_ratio:.2f} "
            f"({'met' if share_ratio <= 1 else 'NOT met'})",
        ]

    def to_markdown(self) -> str:
        lines = [
            "| stage | kind | seconds | share |",
            "|---|---|---:|---:|",
        ]
        for stage, kind, seconds in self.rows():
            share = seconds / self.total if self.total > 0 else 0.0
            lines.append(f"| {stage} | {kind} | {seconds:.2f} | {share:.1%} |")
        lines.append(f"| **total** | | **{self.total:.2f}** | 100% |")
        work = sum(self.work.values())
        lines += [
            "",
            f"work {work:.2f} s, orchestration {self.orchestration_total:.2f} s, "
            f"detection {self.detection:.2f} s.",
            "",
            *(f"- {line}" for line in self.verdict()),
        ]
        return "\n".join(lines) + "\n"


def breakdown(times: PipelineTimes) -> Breakdown:
    """The breakdown of ``times`` (see the module docstring for the path and the kinds)."""
    out = Breakdown()
    retraining, release = times.retraining, times.release
    serving = times.serving or _production_switch(release) or release.ended
    if serving is None:
        raise ValueError("the release run has no production deploy and no end: not serving yet")
    registered = _registered(retraining, release)
    start = times.announced or retraining.created
    if times.landed is not None and times.announced is not None:
        out.detection = _seconds(times.landed, times.announced)
    out.orchestration["trigger"] += _seconds(start, retraining.created)
    _run(out, retraining, registered)
    out.orchestration["trigger"] += _seconds(registered, release.created)
    _run(out, release, serving)
    return out


def _run(out: Breakdown, run: RunTimes, until: datetime) -> None:
    """Add ``run``'s part of the path, from its creation to ``until``."""
    pending = _clip(run.pending or run.running or until, run.created, until)
    running = _clip(run.running or pending, pending, until)
    out.orchestration["worker pickup"] += _seconds(run.created, pending)
    out.orchestration["flow start-up"] += _seconds(pending, running)
    deploys = 0
    covered = running
    for span in sorted(run.tasks, key=lambda s: s.start):
        begin, end = max(span.start, covered), min(span.end, until)
        if span.task == "deploy":
            deploys += 1
        if end <= begin:  # inside an earlier task (none nest here) or after the path's end
            continue
        out.orchestration["task & flow overhead"] += _seconds(covered, begin)
        out.work[_stage(span.task, deploys)] += _seconds(begin, end)
        covered = end
    out.orchestration["task & flow overhead"] += _seconds(covered, until)


def _stage(task: str, deploys: int) -> str:
    if task == "deploy":
        return "QA" if deploys == 1 else "promotion"
    return STAGE_OF_TASK.get(task, "bookkeeping")


def _production_switch(release: RunTimes) -> datetime | None:
    """The end of the release's second deploy (production; the first is QA)."""
    deploys = sorted((s for s in release.tasks if s.task == "deploy"), key=lambda s: s.start)
    return deploys[1].end if len(deploys) > 1 else None


def _registered(retraining: RunTimes, release: RunTimes) -> datetime:
    """When the model was announced: the end of ``announce-model``, or the release's
    creation if that came first (the event goes out before the task tags the version)."""
    announced = [s.end for s in retraining.tasks if s.task == "announce-model"]
    ends = [t for t in (*announced, retraining.ended) if t is not None]
    when = min(ends) if ends else release.created
    return min(when, release.created)


def _clip(value: datetime, low: datetime, high: datetime) -> datetime:
    return max(low, min(value, high))


def _seconds(start: datetime, end: datetime) -> float:
    return max(0.0, (end - start).total_seconds())
