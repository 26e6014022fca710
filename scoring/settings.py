"""The scoring service's own settings: the only place the service reads environment variables.

The service runs alone in a container, so it does not share ``core.settings``: every field
is read from ``SCORING_<FIELD>`` (``SCORING_MODEL_DIR``, ``SCORING_API_KEY``, ...). A secret can
also come from a file (``SCORING_API_KEY_FILE``, ``SCORING_SECONDARY_API_KEY_FILE``,
``SCORING_APPINSIGHTS_CONNECTION_STRING_FILE``): a mounted secret volume keeps it out of the
container's environment.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from scoring.schemas import MAX_ABS_VALUE

# Values people paste from examples. A key found here (or too short to be a real key) is
# refused unless ``allow_insecure_dev_key`` says this is a throwaway development server.
PLACEHOLDER_KEYS = frozenset(
    {
        "changeme",
        "change-me",
        "change_me",
        "secret",
        "password",
        "apikey",
        "api-key",
        "api_key",
        "key",
        "test",
        "dev",
        "default",
        "example",
        "xxx",
        "none",
        "null",
        "your-key",
        "your_key",
        "yourkey",
        "your-api-key",
        "replaceme",
        "replace-me",
        "todo",
    }
)
MIN_KEY_LENGTH = 16


class ScoringSettings(BaseSettings):
    """Typed configuration of one scoring process.

    Attributes:
        model_dir: Folder holding ``model.joblib``, ``run.json`` and friends.
        model_name: Registered model name, echoed in responses.
        model_version: Registered model version, echoed in responses.
        model_sha256: The registry's sha256 of ``model.joblib``; any other file is refused.
        api_key: The key clients send as ``Authorization: Bearer <key>``.
        api_key_file: A file holding ``api_key`` instead (a trailing newline is ignored).
        secondary_api_key: Optional second valid key, for rotation (Azure ML endpoints
            also have a primary and a secondary key).
        secondary_api_key_file: A file holding ``secondary_api_key`` instead.
        allow_insecure_dev_key: Accept placeholder or short keys (development only).
        max_rows: Most rows accepted in one ``/score`` request.
        max_body_bytes: Largest request body accepted, in bytes.
        max_abs_value: Largest magnitude of a feature value (beyond: 422).
        header_timeout: Seconds a client has to send a request's headers (then 408).
        body_timeout: Seconds a client has to send a request's body (then 408).
        keep_alive_timeout: Seconds an idle keep-alive connection stays open.
        max_connections: Most open connections; past it the one waiting longest for a
            request is closed to make room (503 only when all are mid-request).
        host: Interface to bind (``0.0.0.0`` inside a container).
        port: TCP port to bind (5001, like Azure ML's inference server).
        log_payloads: Also log request rows and predictions (never the key).
        log_level: Level of the service's logs.
        log_flush_interval: Longest time a log line waits to be written with others (one
            write per batch; 0: one write per line, see ``scoring.logs.BatchingHandler``).
        collect_url_file: A file holding the ``collected`` container's SAS URL; unset,
            nothing is collected (``scoring.collect``). A file, never a variable: it is a
            secret, and the file is re-read at each upload so a renewed SAS takes effect.
        collect_url: The SAS URL itself, for platforms that inject secrets only as variables
            (Azure ML online endpoints resolve a Key Vault reference into it); anywhere
            else use ``collect_url_file``.
        collect_env: The environment named in collected blob names (``qa``, ``production``).
        collect_sample: Share of requests collected: 1 every one, 0 none.
        collect_window_seconds: Longest a collection window stays open before it is written.
        collect_flush_rows: A window is written as soon as this many rows wait.
        collect_max_rows: Most rows held in memory; past it requests are not collected
            (counted, never slowed).
        collect_upload_attempts: Tries of one window file before it is dropped (logged).
        collect_retry_seconds: Wait between two tries of a window file.
        collect_cpu_share: Most of a core spent writing collected rows, on average; rows
            that come faster are dropped (counted).
        appinsights_connection_string: Application Insights connection string: traces and
            logs go there (``scoring.telemetry``); unset: no telemetry.
        appinsights_connection_string_file: A file holding it instead.
    """

    model_config = SettingsConfigDict(
        env_prefix="SCORING_",
        extra="ignore",
        protected_namespaces=(),
        frozen=True,
        hide_input_in_errors=True,  # an error must never print a key it was given
    )

    model_dir: Path
    model_name: str = Field(min_length=1)
    model_version: str = Field(min_length=1)
    model_sha256: str = Field(pattern=r"^[0-9a-fA-F]{64}$")
    api_key: SecretStr
    api_key_file: Path | None = None
    secondary_api_key: SecretStr | None = None
    secondary_api_key_file: Path | None = None
    allow_insecure_dev_key: bool = False
    max_rows: int = Field(default=1000, ge=1)
    max_body_bytes: int = Field(default=1_000_000, ge=64)
    max_abs_value: float = Field(default=MAX_ABS_VALUE, gt=0, allow_inf_nan=False)
    # Slow or idle clients must not hold the service (slowloris): see scoring.server.
    header_timeout: float = Field(default=10.0, gt=0, le=300)
    body_timeout: float = Field(default=30.0, gt=0, le=600)
    keep_alive_timeout: int = Field(default=5, ge=1, le=300)
    max_connections: int = Field(default=256, ge=1)
    host: str = "127.0.0.1"
    port: int = Field(default=5001, ge=0, le=65535)
    log_payloads: bool = False
    log_level: str = Field(default="INFO", pattern=r"^(?i:debug|info|warning|error|critical)$")
    log_flush_interval: float = Field(default=0.2, ge=0, le=10)
    collect_url_file: Path | None = None
    collect_url: SecretStr | None = None
    collect_env: str = Field(default="local", pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    collect_sample: float = Field(default=1.0, ge=0, le=1)
    collect_window_seconds: float = Field(default=60.0, gt=0, le=3600)
    collect_flush_rows: int = Field(default=10_000, ge=1)
    collect_max_rows: int = Field(default=50_000, ge=1)
    collect_upload_attempts: int = Field(default=5, ge=1, le=100)
    collect_retry_seconds: float = Field(default=5.0, gt=0, le=600)
    collect_cpu_share: float = Field(default=0.03, gt=0, le=1)
    appinsights_connection_string: SecretStr | None = None
    appinsights_connection_string_file: Path | None = None

    @model_validator(mode="before")
    @classmethod
    def _keys_from_files(cls, data: Any) -> Any:
        if not isinstance(data, dict):
            return data
        for field in ("api_key", "secondary_api_key", "appinsights_connection_string"):
            path, name = data.get(f"{field}_file"), f"SCORING_{field.upper()}"
            if path in (None, ""):
                continue
            if data.get(field) not in (None, ""):
                raise ValueError(f"set {name} or {name}_FILE, not both")
            try:
                text = Path(path).read_text(encoding="utf-8")
            except OSError as exc:  # the message names the file, never its content
                raise ValueError(f"{name}_FILE: cannot read {path}: {exc.strerror}") from None
            data = {**data, field: text.rstrip("\r\n")}
        return data

    @field_validator("collect_url_file", mode="before")
    @classmethod
    def _readable_url_file(cls, value: object) -> object:
        if value in (None, ""):
            return None
        if not Path(str(value)).is_file():  # refuse at start rather than fail every upload
            raise ValueError(f"SCORING_COLLECT_URL_FILE: {value} is not a readable file")
        return value

    @field_validator("model_sha256")
    @classmethod
    def _lower_sha(cls, value: str) -> str:
        return value.lower()

    @field_validator(
        "secondary_api_key", "collect_url", "appinsights_connection_string", mode="before"
    )
    @classmethod
    def _unset_when_empty(cls, value: object) -> object:
        return None if value == "" else value  # SCORING_SECONDARY_API_KEY= means "none"

    @model_validator(mode="after")
    def _one_collect_url(self) -> ScoringSettings:
        if self.collect_url_file is not None and self.collect_url is not None:
            raise ValueError("set SCORING_COLLECT_URL_FILE or SCORING_COLLECT_URL, not both")
        return self

    @model_validator(mode="after")
    def _refuse_weak_keys(self) -> ScoringSettings:
        _check_key("SCORING_API_KEY", self.api_key, self.allow_insecure_dev_key)
        if self.secondary_api_key is not None:
            _check_key(
                "SCORING_SECONDARY_API_KEY", self.secondary_api_key, self.allow_insecure_dev_key
            )
        return self

    def api_keys(self) -> tuple[bytes, ...]:
        """Return every accepted key, UTF-8 encoded."""
        keys = (self.api_key, self.secondary_api_key)
        return tuple(key.get_secret_value().encode("utf-8") for key in keys if key is not None)


def _check_key(name: str, secret: SecretStr, allow_insecure: bool) -> None:
    # The messages never quote the key itself.
    key = secret.get_secret_value()
    if not key.strip():
        raise ValueError(f"{name} is empty: set a random key of {MIN_KEY_LENGTH}+ characters")
    if allow_insecure:
        return
    hint = "(or SCORING_ALLOW_INSECURE_DEV_KEY=true for local development)"
    if key.strip().strip("<>{}[]").lower() in PLACEHOLDER_KEYS:
        raise ValueError(f"{name} is a placeholder value: set a random key {hint}")
    if len(key) < MIN_KEY_LENGTH:
        raise ValueError(
            f"{name} is shorter than {MIN_KEY_LENGTH} characters: set a random key {hint}"
        )
