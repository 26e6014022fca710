"""The landing-to-production breakdown, computed from recorded run and task times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from core.breakdown import (
    ORCHESTRATION,
    STAGES,
    PipelineTimes,
    RunTimes,
    Span,
    breakdown,
)

T0 = datetime(2026, 12, 2, 12, 0, tzinfo=UTC)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def span(task: str, start: float, end: float) -> Span:
    return Span(task, at(start), at(end))


# One pass, by the second: landed 0, announced 4, retraining created 5, picked up 6,
# running 9, tasks 9.5-18, registered 18; release created 18.5, picked up 19, running 21,
# tasks 21-33.5, production switched at 33.5 (end of the second deploy).
RETRAINING = RunTimes(
    flow="retraining",
    created=at(5),
    pending=at(6),
    running=at(9),
    ended=at(19),
    tasks=(
        span("find-new-data", 9.5, 10),
        span("validate-data", 10, 11),
        span("merge-into-curated", 11.2, 11.5),
        span("train-on-compute", 11.5, 15),
        span("find-champion", 15, 15.5),
        span("judge-challenger", 15.5, 16.5),
        span("register-model", 16.5, 17.5),
        span("announce-model", 17.5, 18),
        span("publish-retraining-report", 18.2, 18.6),  # after registration: off the path
    ),
)
RELEASE = RunTimes(
    flow="release",
    created=at(18.5),
    pending=at(19),
    running=at(21),
    ended=at(40),
    tasks=(
        span("resolve-version", 21, 21.2),
        span("download-model", 21.2, 21.5),
        span("build-image", 21.5, 24),
        span("deploy", 24, 27),  # QA
        span("smoke-test", 27, 29),
        span("deploy", 29.5, 33.5),  # production
        span("smoke-test", 33.5, 35),  # after the switch: off the path
    ),
)


def test_every_second_of_the_path_falls_in_one_stage() -> None:
    result = breakdown(PipelineTimes(RETRAINING, RELEASE, landed=at(0), announced=at(4)))
    assert result.total == pytest.approx(33.5)
    assert result.detection == pytest.approx(4)
    assert result.work == pytest.approx(
        {
            "validation": 1,
            "training": 3.5,
            "gate": 1.5,
            "registration": 1.5,
            "image build": 2.8,
            "QA": 3,
            "smoke": 2,
            "promotion": 4,
            "bookkeeping": 0.5 + 0.3 + 0.2,
        }
    )
    assert list(result.work) == list(STAGES)
    assert result.orchestration == pytest.approx(
        {
            "trigger": 1 + 0.5,  # announced 4 -> created 5; registered 18 -> created 18.5
            "worker pickup": 1 + 0.5,
            "flow start-up": 3 + 2,
            # retraining: 9 -> 9.5 and 11 -> 11.2; release: none (its tasks follow each
            # other but for 29 -> 29.5)
            "task & flow overhead": 0.5 + 0.2 + 0.5,
        }
    )
    assert result.orchestration_total == pytest.approx(9.2)
    assert result.orchestration_share == pytest.approx(9.2 / 33.5)
    assert [kind for _, kind, _ in result.rows()].count("orchestration") == len(ORCHESTRATION)


def test_an_observed_first_answer_ends_the_path_inside_the_production_deploy() -> None:
    result = breakdown(
        PipelineTimes(RETRAINING, RELEASE, landed=at(0), announced=at(4), serving=at(31))
    )
    assert result.total == pytest.approx(31)
    assert result.work["promotion"] == pytest.approx(1.5)


def test_a_release_created_before_announce_model_ended_cuts_registration_there() -> None:
    early = RunTimes("release", created=at(17.8), pending=at(19), running=at(21), ended=at(40),
                     tasks=RELEASE.tasks)  # fmt: skip
    result = breakdown(PipelineTimes(RETRAINING, early, landed=at(0), announced=at(4)))
    assert result.work["registration"] == pytest.approx(1 + 0.3)
    assert result.orchestration["trigger"] == pytest.approx(1)
    assert result.total == pytest.approx(33.5)


def test_without_landing_times_the_path_starts_at_the_retraining_run() -> None:
    result = breakdown(PipelineTimes(RETRAINING, RELEASE))
    assert result.detection == 0 and result.total == pytest.approx(33.5 - 5)


def test_the_verdict_gives_ratios_against_the_targets() -> None:
    fast = breakdown(PipelineTimes(RETRAINING, RELEASE, landed=at(0), announced=at(4)))
    total, share = fast.verdict()
    assert total.startswith("total 33.5 s vs target 30 s: ratio 1.12 (NOT met)")
    assert share.startswith("orchestration 27.5% vs target 15%: ratio 1.83 (NOT met)")
    table = fast.to_markdown()
    assert "| training | work | 3.50 | 10.4% |" in table
    assert "| **total** | | **33.50** | 100% |" in table


def test_a_release_that_never_deployed_production_is_not_a_path() -> None:
    unfinished = RunTimes("release", created=at(18.5), pending=None, running=None, ended=None)
    with pytest.raises(ValueError, match="not serving"):
        breakdown(PipelineTimes(RETRAINING, unfinished))
