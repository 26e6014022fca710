"""The holdout metrics to MLflow, for Azure ML's sweep jobs.

A sweep job compares its trials by the primary metric each trial's run logged to MLflow (in
an Azure ML job, ``MLFLOW_TRACKING_URI`` and ``MLFLOW_RUN_ID`` name the job's own run, and
the environment's azureml-mlflow plugin serves the ``azureml://`` store). Only a run started
with ``--mlflow`` logs: mlflow is imported then and only then, so local runs need none of it.
"""

from __future__ import annotations

from training.gate_models import Metrics

# The gate's primary metrics, under the names the sweep's objective uses.
LOGGED = ("rmse", "mae", "r2")


def log_metrics(metrics: Metrics) -> None:
    """Log ``rmse``, ``mae`` and ``r2`` to the active MLflow run (the job's own in Azure ML,
    a new run of the tracking URI's default experiment elsewhere).

    Raises:
        ImportError: mlflow is not installed.
    """
    import mlflow

    with mlflow.start_run():
        mlflow.log_metrics({name: float(getattr(metrics, name)) for name in LOGGED})
