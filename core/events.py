"""Every Prefect event this project sends or listens for: the names and the payload shapes.

``prefect.yaml``'s triggers and ``deployments/automations.yaml`` name these events; tests hold
both files to the constants here. The builders return an ``EventSpec`` (the arguments of
``prefect.events.emit_event``), so this module needs neither Prefect nor a cloud SDK, and a
relay or a test can build the same events.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from core.interfaces import BlobRef, ModelVersion
    from training.gate_models import Decision

# A new blob in a watched container (the blob watcher locally, Event Grid's relay in Azure):
# the retraining deployment's trigger.
BLOB_CREATED = "azure.storage.blob.created"
# A model version was registered with the ``candidate`` alias: the release deployment's trigger.
MODEL_REGISTERED = "mlops.model.registered"
# The gate kept the champion: automations notify.
CHALLENGER_REJECTED = "mlops.challenger.rejected"
# A landing file failed validation and moved to quarantine: automations notify.
DATA_QUARANTINED = "mlops.data.quarantined"
# A landing file crashed its runs too often and moved to the dead-letter container: notify.
DATA_DEAD_LETTERED = "mlops.data.dead-lettered"
# The monitoring flow found drift past the thresholds (payload: the drifted features): the
# retraining deployment's ``retrain-on-drift`` trigger.
DRIFT_DETECTED = "mlops.drift.detected"
# The name of that trigger (prefect.yaml): the automation it becomes, and so the ``created_by``
# of the runs it starts, which is how the demo tells them from the other retraining runs.
RETRAIN_ON_DRIFT = "retrain-on-drift"

ALL_EVENTS = (
    BLOB_CREATED,
    MODEL_REGISTERED,
    CHALLENGER_REJECTED,
    DATA_QUARANTINED,
    DATA_DEAD_LETTERED,
    DRIFT_DETECTED,
)


@dataclass(frozen=True)
class EventSpec:
    """The arguments of ``prefect.events.emit_event`` (or of a ``prefect.events.Event``)."""

    event: str
    resource: dict[str, str]
    related: list[dict[str, str]] = field(default_factory=list)
    payload: dict[str, Any] = field(default_factory=dict)


def model_resource_id(name: str, version: str | None = None) -> str:
    """The resource id of a registered model (``mlops.model.<name>[.<version>]``)."""
    return f"mlops.model.{name}" + (f".{version}" if version is not None else "")


def model_registered(version: ModelVersion, flow_run_id: str, released: bool = False) -> EventSpec:
    """``mlops.model.registered`` for ``version``, related to the run that registered it.
    ``released``: that run released it itself (label ``mlops.model.release`` = ``done``, not
    ``pending``: the release deployment's trigger matches ``pending`` only)."""
    return EventSpec(
        event=MODEL_REGISTERED,
        resource={
            "prefect.resource.id": model_resource_id(version.name, version.version),
            "prefect.resource.name": f"{version.name} v{version.version}",
            "mlops.model.name": version.name,
            "mlops.model.version": version.version,
            "mlops.model.release": "done" if released else "pending",
        },
        related=[
            {
                "prefect.resource.id": f"prefect.flow-run.{flow_run_id}",
                "prefect.resource.role": "flow-run",
            }
        ],
        payload={"name": version.name, "version": version.version, "sha256": version.sha256},
    )


def challenger_rejected(name: str, decision: Decision) -> EventSpec:
    """``mlops.challenger.rejected`` with the gate's decision record (automations notify)."""
    return EventSpec(
        event=CHALLENGER_REJECTED,
        resource={"prefect.resource.id": model_resource_id(name), "prefect.resource.name": name},
        payload={"reason": decision.reason, "decision": decision.model_dump(mode="json")},
    )


def data_quarantined(source: BlobRef, quarantined_as: str, reason: str) -> EventSpec:
    """``mlops.data.quarantined``: the quarantined copy is the resource, the landing blob the
    ``source``."""
    return EventSpec(
        event=DATA_QUARANTINED,
        resource={"prefect.resource.id": quarantined_as, "prefect.resource.name": source.name},
        related=[{"prefect.resource.id": source.uri, "prefect.resource.role": "source"}],
        payload={"file": source.name, "reason": reason, "quarantined_as": quarantined_as},
    )


def data_dead_lettered(
    source: BlobRef, dead_lettered_as: str, reason: str, attempts: int
) -> EventSpec:
    """``mlops.data.dead-lettered``: the dead-lettered copy is the resource, the landing blob
    the ``source``; ``reason`` names the attempts and the last error."""
    return EventSpec(
        event=DATA_DEAD_LETTERED,
        resource={"prefect.resource.id": dead_lettered_as, "prefect.resource.name": source.name},
        related=[{"prefect.resource.id": source.uri, "prefect.resource.role": "source"}],
        payload={
            "file": source.name,
            "reason": reason,
            "attempts": attempts,
            "dead_lettered_as": dead_lettered_as,
        },
    )


def drift_detected(
    model: str,
    environment: str,
    drifted_features: list[str],
    prediction_drift: bool,
    window: tuple[str, str],
    labelled_data: list[str],
) -> EventSpec:
    """``mlops.drift.detected`` for ``model`` as served in ``environment``: what drifted in
    which window, and the labelled landing files written by the same check."""
    return EventSpec(
        event=DRIFT_DETECTED,
        resource={
            "prefect.resource.id": model_resource_id(model),
            "prefect.resource.name": model,
            "mlops.environment": environment,
        },
        payload={
            "drifted_features": drifted_features,
            "prediction_drift": prediction_drift,
            "window_start": window[0],
            "window_end": window[1],
            "labelled_data": labelled_data,
        },
    )
