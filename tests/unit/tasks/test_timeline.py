"""The breakdown read back from a real Prefect server: two flow runs whose tasks carry the
pipeline's task names, then ``publish-pipeline-breakdown`` in the second, as a release does."""

from __future__ import annotations

import time
from typing import Any
from uuid import UUID

from prefect import flow, task
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey
from prefect.runtime import flow_run

from core.breakdown import Breakdown
from tasks.timeline import publish_pipeline_breakdown


def _work(name: str, seconds: float) -> Any:
    @task(name=name)
    def step() -> None:
        time.sleep(seconds)

    return step


validate, train, register, announce = (
    _work(name, 0.2)
    for name in ("validate-data", "train-on-compute", "register-model", "announce-model")
)
build, deploy, smoke = (_work(name, 0.2) for name in ("build-image", "deploy", "smoke-test"))


@flow(name="retraining-like")
def retraining_like(data_uri: str | None = None) -> None:
    validate()
    train()
    register()
    announce()


@flow(name="release-like")
def release_like(retraining_run: str) -> Breakdown | None:
    build()
    deploy()  # QA
    smoke()
    deploy()  # production
    result: Breakdown | None = publish_pipeline_breakdown(str(flow_run.id), retraining_run)
    return result


def test_the_release_publishes_the_breakdown_of_its_recorded_runs(prefect_server: str) -> None:
    retraining = retraining_like(return_state=True)
    retraining_id = str(retraining.state_details.flow_run_id)
    released = release_like(retraining_id, return_state=True)
    result = released.result()

    assert isinstance(result, Breakdown)
    for stage in ("validation", "training", "registration", "image build", "QA", "promotion"):
        assert result.work[stage] >= 0.15, (stage, result.work)
    assert result.work["smoke"] >= 0.15
    assert result.detection == 0  # no announcing event: the path starts at the retraining run
    assert result.total >= sum(result.work.values())
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(key=ArtifactFilterKey(any_=["pipeline-breakdown"]))
        )
    mine = [a for a in artifacts if a.flow_run_id == UUID(str(released.state_details.flow_run_id))]
    assert mine and "| promotion | work |" in str(mine[0].data)


def test_no_retraining_run_no_breakdown(prefect_server: str) -> None:
    assert release_like("", return_state=True).result() is None
