"""The one settings object: the profile switch, names, paths and endpoints.

No other module reads environment variables. Every field can be set as
``MLOPS_<FIELD>`` (nested: ``MLOPS_AZURE__SUBSCRIPTION_ID``) or in a ``.env`` file.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationError, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# Azurite's documented development account: public, identical on every machine.
AZURITE_ACCOUNT = "devstoreaccount1"
AZURITE_KEY = (
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
)


# Every setting naming a data lake container: no two may name the same one.
CONTAINER_ROLES = (
    "landing_container",
    "curated_container",
    "quarantine_container",
    "dead_letter_container",
    "code_container",
    "collected_container",
    "batch_container",
)


class AzureSettings(BaseModel):
    """Where the Azure profile points. Only read when ``profile == "azure"``.

    Every field is an output of ``deployments/azure/main.bicep`` (``MLOPS_AZURE__<FIELD>``)
    or a documented input (``deployments/azure/README.md``); a unit test holds them together.
    Nothing here is a secret: secrets stay in Key Vault and settings name them.
    """

    subscription_id: str = ""
    resource_group: str = ""
    workspace: str = ""
    compute_name: str = "cpu-cluster"
    # The training environment's name: the compute adapter registers it, versioned by the hash
    # of constraints.txt, when that version is missing. "name:version" or "name@label" pins one.
    environment: str = "diabetes-train-env"
    storage_account_url: str = ""  # https://<account>.blob.core.windows.net
    job_poll_seconds: float = 15.0
    # Nodes per training job (command job ``resources.instanceCount``), for estimators that
    # train on several nodes; the scikit-learn ones use one.
    instance_count: int = Field(default=1, ge=1)
    # Batch scoring's outputs: the Azure ML datastore registered over the batch container.
    batch_datastore: str = "batch"

    # Release (read only by the release): images in Azure Container Registry, QA on Azure
    # Container Instances in a private subnet, production on an Azure ML online endpoint:
    # ``kubernetes`` (an AKS cluster attached to the workspace) or ``managed`` (Azure ML runs
    # the instances); the same interface either way.
    registry: str = ""  # the ACR login server, <name>.azurecr.io
    location: str = ""  # the region of the QA container group, e.g. westeurope
    production_target: Literal["kubernetes", "managed"] = "kubernetes"
    # Where the scoring image is built: "docker" on this machine's engine, then pushed
    # (AcrImageBuilder: the pushed bytes are the ones built here); "acr-task" in the registry
    # itself, from the same context (AcrTaskImageBuilder: no engine needed). "auto" is
    # "acr-task" when MLOPS_WORK_POOL is mlops-aci, whose flow runs are container groups with
    # no Docker engine, and "docker" otherwise: the one setting a release on ACI needs is the
    # work pool it already has.
    image_build: Literal["auto", "docker", "acr-task"] = "auto"
    kubernetes_compute: str = "aks-production"  # the workspace's attached AKS compute
    online_instance_type: str = ""  # managed endpoint VM size; on AKS: the compute's default
    # Resource id of the subnet (delegated to Microsoft.ContainerInstance/containerGroups) the
    # QA group gets its private IP in: the QA key never crosses a public network in clear.
    qa_subnet_id: str = ""
    # Production autoscale on Kubernetes endpoints (Azure ML's TargetUtilizationScaleSettings):
    # between min and max instances, aiming at this CPU use, re-evaluated every polling period.
    # Managed deployments accept only a fixed count (azure-ai-ml refuses other scale settings;
    # their autoscale is an Azure Monitor autoscale resource): they run min_instances.
    autoscale_min_instances: int = Field(default=2, ge=1)
    autoscale_max_instances: int = Field(default=4, ge=1)
    autoscale_target_utilization: int = Field(default=70, ge=1, le=100)
    autoscale_polling_seconds: int = Field(default=10, ge=1)
    endpoint_prefix: str = "diabetes-scoring"  # endpoints and QA group: <prefix>-<environment>
    # The project's Key Vault (https://<vault>.vault.azure.net/) and the secret holding the QA
    # service's key (created there on the first release). Production's keys are the endpoint's.
    key_vault_url: str = ""
    qa_api_key_secret: str = "scoring-qa-api-key"
    # Resource ids of user-assigned identities: the QA group pulls its image as ``qa_identity``
    # (AcrPull, no registry password); the production endpoint reads its keys from Key Vault as
    # ``endpoint_identity`` (Key Vault Secrets User).
    qa_identity: str = ""
    endpoint_identity: str = ""

    # Flow runs on Azure Container Instances (``MLOPS_WORK_POOL=mlops-aci``, see
    # deployments/README.md "Flow runs in Azure"): each run is a container group of
    # ``flow_image`` (pinned by digest) running as ``worker_identity`` (a resource id; its
    # ``worker_client_id`` tells DefaultAzureCredential which identity to use), in
    # ``flow_subnet_id`` (QA's network, subnet ``flows``: the release flow reaches QA's private
    # IP from there). The Prefect credential is the Key Vault secret
    # ``prefect_credential_secret``, read at start into ``prefect_credential_env``.
    worker_identity: str = ""
    worker_client_id: str = ""
    flow_image: str = ""  # <registry>/mlops-flows@sha256:<digest>
    flow_subnet_id: str = ""
    prefect_credential_secret: str = "prefect-api-credential"
    prefect_credential_env: Literal["PREFECT_API_KEY", "PREFECT_API_AUTH_STRING"] = (
        "PREFECT_API_KEY"
    )

    @model_validator(mode="after")
    def _autoscale_bounds(self) -> AzureSettings:
        if self.autoscale_min_instances > self.autoscale_max_instances:
            raise ValueError(
                f"MLOPS_AZURE__AUTOSCALE_MIN_INSTANCES ({self.autoscale_min_instances}) is more "
                f"than MLOPS_AZURE__AUTOSCALE_MAX_INSTANCES ({self.autoscale_max_instances})"
            )
        return self

    def release_missing(self) -> list[str]:
        """The ``MLOPS_AZURE__*`` variables a release in Azure needs and lacks."""
        needed = {
            "registry": self.registry,
            "location": self.location,
            "key_vault_url": self.key_vault_url,
            "qa_identity": self.qa_identity,
            "qa_subnet_id": self.qa_subnet_id,
            "endpoint_identity": self.endpoint_identity,
        }
        if self.production_target == "kubernetes":
            needed["kubernetes_compute"] = self.kubernetes_compute
        else:
            needed["online_instance_type"] = self.online_instance_type
        return [f"MLOPS_AZURE__{name.upper()}" for name, value in needed.items() if not value]


class Settings(BaseSettings):
    """Typed configuration for every part of the system."""

    model_config = SettingsConfigDict(
        env_prefix="MLOPS_", env_nested_delimiter="__", env_file=".env", extra="ignore"
    )

    profile: Literal["local", "azure"] = "local"
    model_name: str = Field(default="diabetes-ridge", pattern=r"^[a-z0-9][a-z0-9-]{1,62}$")
    state_dir: Path = Path(".mlops")

    # Data lake (Azure Blob Storage; Azurite locally)
    azurite_host: str = "127.0.0.1"
    azurite_port: int = Field(default=10000, ge=1, le=65535)
    blob_connection_string: SecretStr | None = None
    landing_container: str = "landing"
    curated_container: str = "curated"
    quarantine_container: str = "quarantine"
    # Files that crashed their runs ``max_file_attempts`` times (and their error); shared with
    # Event Grid's failed deliveries, under other prefixes (deployments/azure/modules/lake.bicep).
    dead_letter_container: str = "dead-letter"
    max_file_attempts: int = Field(default=3, ge=1)
    # What the scoring service collects (training/collected.py), the labels that arrive later
    # and the monitoring flow's reports (flows/monitoring.py). The replicas write their rows
    # themselves, through a write-only container SAS (backends/collect_sas.py).
    collected_container: str = "collected"
    # Days the SAS given to scoring replicas stays valid; each release issues a new one.
    collect_sas_days: float = Field(default=30.0, gt=0, le=365)
    # Share of scoring requests whose rows are collected: 0 collects nothing, 1 every one.
    collect_sample: float = Field(default=1.0, ge=0, le=1)
    # Longest a replica keeps collected rows before writing them (its window); None: the
    # service's own default (``SCORING_COLLECT_WINDOW_SECONDS``, 60 s). Shorter: rows reach the
    # lake sooner, in more files.
    collect_window_seconds: float | None = Field(default=None, gt=0, le=3600)
    # Larger landing files are quarantined unread. Files are streamed to disk and validated
    # and merged chunk by chunk (memory does not grow with them), so this bounds the disk
    # and time one file may take: 4 GiB is ~20M diabetes rows as CSV.
    max_file_bytes: int = Field(default=4 * 1024**3, ge=1)

    # Where prefect.yaml's deployments run: a process worker (flow code from this checkout)
    # or prefect-azure's Azure Container Instances worker (flow code in ``code_container``).
    work_pool: Literal["mlops-local", "mlops-aci"] = "mlops-local"
    code_container: str = "flow-code"

    # How often the blob watcher lists the landing container: locally (Azurite has no Event
    # Grid) the longest a new file waits before it is announced. A poll is two small calls
    # (the watcher's marks, one listing); the watcher is a long-running run that polls at this
    # interval (flows/blob_watcher.py says why), so a short one costs no process per poll.
    # In Azure, Event Grid announces blobs and the watcher is only a safety net.
    watch_interval_seconds: float = Field(default=5.0, ge=1, le=3600)
    # A retraining *deployment run* that registers a version releases it itself, as a
    # subflow, instead of leaving it to the release deployment's trigger: that trigger, a
    # worker pickup and a second flow process (~6 s here) leave the way from landing to
    # production. ``mlops.model.registered`` still goes out, after the release, labelled so
    # the release trigger skips it. None: on for the local profile; the azure profile keeps
    # the release deployment (a container group of its own).
    release_in_retraining: bool | None = None

    # Prefect: the local server ``mlops up`` starts, and the API every Prefect client of the
    # project talks to (publishing, automations, the code-storage block, workers started here).
    prefect_host: str = "127.0.0.1"
    prefect_port: int = Field(default=4200, ge=1, le=65535)
    # Empty: the local server above. The azure profile may name another one (Prefect Cloud, a
    # self-hosted server) as MLOPS_PREFECT_API_URL. Prefect's own PREFECT_API_URL is not read on
    # purpose: a shell or a Prefect profile often points it at some other server, and the local
    # stack must keep talking to the server it started; no other tool sets a project-named
    # variable. The project's Prefect commands get PREFECT_API_URL from this one.
    prefect_api_url: str = ""
    # The model locks' lease (tasks/locks.py): renewed while held, frees the slot this long
    # after a holder on another machine died. Prefect's server accepts 60 s to one day.
    lock_lease_seconds: float = Field(default=300.0, ge=60, le=86_400)

    worker_port: int = Field(default=8660, ge=1, le=65535)  # the worker's health endpoint
    docs_port: int = Field(default=8680, ge=1, le=65535)  # serves Data Docs on loopback
    # Prometheus (the Debian package), started with the local stack: scrapes the replicas
    # and HAProxy of every environment (mlops/prometheus.py)
    prometheus_port: int = Field(default=9090, ge=1, le=65535)
    # Traces and logs of the flows and the scoring service go to Application Insights when
    # set (core/telemetry.py); empty: telemetry is off and costs nothing.
    appinsights_connection_string: SecretStr | None = None

    # Notifications: the local stand-in for Teams/Slack (python -m mlops.notify)
    notify_port: int = Field(default=8650, ge=1, le=65535)

    # Compute
    compute_timeout_seconds: float = Field(default=900.0, gt=0)

    # Data validation
    min_rows: int = Field(default=50, ge=1)

    # Monitoring (flows/monitoring.py): every ``monitoring_interval_minutes`` the deployment
    # checks the last ``monitoring_window_minutes`` of ``monitoring_environment``'s collected
    # rows. A feature drifts when the KS test rejects "same distribution" at
    # ``drift_p_value`` AND its PSI is at least ``drift_psi`` (with thousands of rows KS alone
    # flags differences too small to matter; PSI alone has no notion of sample size).
    # Fewer than ``drift_min_rows`` rows: no verdict at all. Labels are joined to rows
    # collected in the last ``label_lookback_hours``.
    monitoring_environment: str = "production"
    monitoring_interval_minutes: int = Field(default=10, ge=1, le=1440)
    monitoring_window_minutes: int = Field(default=60, ge=1, le=10_080)
    drift_p_value: float = Field(default=0.01, gt=0, lt=1)
    drift_psi: float = Field(default=0.2, gt=0)
    drift_min_rows: int = Field(default=200, ge=10)
    label_lookback_hours: int = Field(default=24, ge=1, le=24 * 31)

    # Release: where scoring services run locally (auto = Docker when an engine can run)
    release_target: Literal["auto", "docker", "process"] = "auto"
    docker_host: str | None = None  # an engine to use instead of starting our own
    base_image: str | None = None  # scoring image base; default: pull python:3.11-slim or build
    qa_port: int = Field(default=8600, ge=1, le=65535)
    production_port: int = Field(default=8700, ge=1, le=65535)
    production_replicas: int = Field(default=2, ge=2)
    smoke_requests: int = Field(default=200, ge=1, le=10_000)
    smoke_p95_budget_ms: float = Field(default=250.0, gt=0)

    # Batch scoring (flows/batch_scoring.py): where `mlops batch-score FILE` uploads a local
    # file, rows read and scored at a time (memory grows with this, never with the file),
    # and how long one job may run.
    batch_container: str = "batch"
    batch_chunk_rows: int = Field(default=100_000, ge=1)
    batch_timeout_seconds: float = Field(default=3600.0, gt=0)

    azure: AzureSettings = AzureSettings()

    @model_validator(mode="after")
    def _containers_are_distinct(self) -> Settings:
        # One container in two roles: a move would delete what it just wrote (a retrain on
        # "landing" = curated would take the curated manifest as a new file and delete it).
        roles: dict[str, list[str]] = {}
        for field_name in CONTAINER_ROLES:
            roles.setdefault(getattr(self, field_name), []).append(f"MLOPS_{field_name.upper()}")
        shared = [f"{' and '.join(v)} are both {k!r}" for k, v in roles.items() if len(v) > 1]
        if shared:
            raise ValueError("each container must have one role: " + "; ".join(shared))
        return self

    @model_validator(mode="after")
    def _one_prefect_api(self) -> Settings:
        if not self.prefect_api_url:
            self.prefect_api_url = self.local_prefect_api_url
        elif self.profile == "local" and self.prefect_api_url != self.local_prefect_api_url:
            raise ValueError(
                "MLOPS_PREFECT_API_URL names another Prefect API, but profile 'local' runs its "
                "own server (MLOPS_PREFECT_HOST, MLOPS_PREFECT_PORT): unset it, or use profile "
                "'azure'"
            )
        self.prefect_api_url = self.prefect_api_url.rstrip("/")
        return self

    @model_validator(mode="after")
    def _azure_needs_workspace(self) -> Settings:
        if self.profile == "azure":
            missing = [
                f"MLOPS_AZURE__{name.upper()}"
                for name in ("subscription_id", "resource_group", "workspace")
                if not getattr(self.azure, name)
            ]
            if not self.blob_connection_string and not self.azure.storage_account_url:
                missing.append("MLOPS_AZURE__STORAGE_ACCOUNT_URL (or MLOPS_BLOB_CONNECTION_STRING)")
            if missing:
                raise ValueError("profile 'azure' needs: " + ", ".join(missing))
        return self

    def to_env(self) -> dict[str, str]:
        """These settings as ``MLOPS_*`` variables, for processes this one starts (workers)."""
        env: dict[str, str] = {}
        for name, value in self.model_dump(mode="json", exclude={"azure"}).items():
            if value is not None:
                env[f"MLOPS_{name.upper()}"] = str(value)
        if self.blob_connection_string is not None:
            env["MLOPS_BLOB_CONNECTION_STRING"] = self.blob_connection_string.get_secret_value()
        if self.appinsights_connection_string is not None:
            secret = self.appinsights_connection_string.get_secret_value()
            env["MLOPS_APPINSIGHTS_CONNECTION_STRING"] = secret
        for name, value in self.azure.model_dump(mode="json").items():
            env[f"MLOPS_AZURE__{name.upper()}"] = str(value)
        env["MLOPS_STATE_DIR"] = str(self.state_path)  # absolute: workers run elsewhere
        if self.prefect_api_is_local:  # derived: a child given another port derives it again
            del env["MLOPS_PREFECT_API_URL"]
        return env

    # Derived locations -------------------------------------------------------------
    @property
    def releases_in_retraining(self) -> bool:
        """Whether a retraining deployment run releases what it registers (see the field)."""
        if self.release_in_retraining is not None:
            return self.release_in_retraining
        return self.profile == "local"

    @property
    def state_path(self) -> Path:
        """The state folder, absolute. A relative ``MLOPS_STATE_DIR`` is relative to the
        project root, not to the current directory: ``mlops down`` run from elsewhere must
        find the stack ``mlops up`` started."""
        return (PROJECT_ROOT / self.state_dir).resolve()

    @property
    def blob_connection(self) -> str:
        """Connection string for the data lake (Azurite's well-known account by default)."""
        if self.blob_connection_string is not None:
            return self.blob_connection_string.get_secret_value()
        return (
            f"DefaultEndpointsProtocol=http;AccountName={AZURITE_ACCOUNT};"
            f"AccountKey={AZURITE_KEY};"
            f"BlobEndpoint=http://{self.azurite_host}:{self.azurite_port}/{AZURITE_ACCOUNT};"
        )

    @property
    def local_prefect_api_url(self) -> str:
        """The API of the server ``mlops up`` starts (``prefect_api_url`` unless another is set)."""
        return f"http://{self.prefect_host}:{self.prefect_port}/api"

    @property
    def prefect_api_is_local(self) -> bool:
        return self.prefect_api_url == self.local_prefect_api_url

    @property
    def prefect_ui_url(self) -> str:
        """The UI of ``prefect_api_url``'s server: a self-hosted one serves it at the API's root
        (Prefect Cloud's is on another host: Prefect derives it itself, see core.deploy)."""
        return self.prefect_api_url.removesuffix("/api")

    def data_docs_link(self, page: str | None) -> str | None:
        """A clickable URL for a Data Docs page (served by ``mlops up``); else the path."""
        if page is None:
            return None
        try:
            relative = Path(page).resolve().relative_to(self.data_docs_path.resolve())
        except ValueError:
            return page
        return f"http://127.0.0.1:{self.docs_port}/{relative.as_posix()}"

    @property
    def notify_url(self) -> str:
        """Where the ``mlops-notify`` Webhook block POSTs (the local receiver)."""
        return f"http://127.0.0.1:{self.notify_port}/notify"

    @property
    def notifications_path(self) -> Path:
        """The JSON-lines file the local receiver appends notifications to."""
        return self.state_path / "notifications.jsonl"

    @property
    def registry_path(self) -> Path:
        return self.state_path / "registry"

    @property
    def jobs_path(self) -> Path:
        return self.state_path / "jobs"

    @property
    def data_docs_path(self) -> Path:
        return self.state_path / "data_docs"

    @property
    def docker_path(self) -> Path:
        """The project's own Docker engine (data root, socket, log) and image build caches."""
        return self.state_path / "docker"

    @property
    def targets_path(self) -> Path:
        """State of the local QA and production environments."""
        return self.state_path / "targets"

    @property
    def prometheus_path(self) -> Path:
        """Prometheus' config, its data and the file_sd targets the environments write."""
        return self.state_path / "prometheus"

    @property
    def scrape_targets_path(self) -> Path:
        """The file_sd folder: one file per environment and job (backends/local/scrape_targets)."""
        return self.prometheus_path / "targets"

    @property
    def prometheus_url(self) -> str:
        """The local Prometheus: its UI, and its HTTP API under ``/api/v1``."""
        return f"http://127.0.0.1:{self.prometheus_port}"

    @property
    def run_path(self) -> Path:
        """PID files and service logs."""
        return self.state_path / "run"


class SettingsError(RuntimeError):
    """Invalid configuration, with a message that names the offending setting."""


def load_settings(**overrides: object) -> Settings:
    """Build settings from the environment, turning validation errors into one clear message."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        lines = []
        for err in exc.errors():
            loc = "__".join(str(p) for p in err["loc"]).upper()
            name = f"MLOPS_{loc}" if loc else "settings"
            lines.append(f"{name}: {err['msg']}")
        raise SettingsError("invalid settings:\n  " + "\n  ".join(lines)) from None


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """Settings for this process, read once (tests call ``get_settings.cache_clear()``)."""
    return load_settings()
