"""ScoringSettings: read from SCORING_* variables, refuse weak keys."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import ValidationError

from scoring.settings import ScoringSettings

Settings = Callable[..., ScoringSettings]


def test_reads_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    env = {
        "SCORING_MODEL_DIR": str(tmp_path),
        "SCORING_MODEL_NAME": "diabetes-ridge",
        "SCORING_MODEL_VERSION": "3",
        "SCORING_MODEL_SHA256": "AB" * 32,
        "SCORING_API_KEY": "a-long-random-key-123456",
        "SCORING_MAX_ROWS": "50",
        "SCORING_LOG_PAYLOADS": "true",
    }
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    settings = ScoringSettings()  # type: ignore[call-arg]
    assert settings.model_dir == tmp_path
    assert settings.model_sha256 == "ab" * 32  # normalised to lower case
    assert settings.max_rows == 50
    assert settings.log_payloads is True
    assert (settings.max_body_bytes, settings.host, settings.port) == (1_000_000, "127.0.0.1", 5001)
    assert "a-long-random-key" not in repr(settings)


def test_api_key_is_required(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="api_key"):
        ScoringSettings(  # type: ignore[call-arg]
            model_dir=tmp_path, model_name="m", model_version="1", model_sha256="0" * 64
        )


@pytest.mark.parametrize(
    "key", ["", "   ", "changeme", "CHANGEME", "<your-key>", "secret", "k3y-9x"]
)
def test_weak_keys_are_refused(make_settings: Settings, key: str) -> None:
    with pytest.raises(ValidationError, match="SCORING_API_KEY") as caught:
        make_settings(api_key=key)
    if key.strip():
        message = str(caught.value.errors(include_input=False)[0]["msg"])
        assert key not in message


def test_dev_flag_allows_placeholder_but_not_empty(make_settings: Settings) -> None:
    assert make_settings(api_key="changeme", allow_insecure_dev_key=True)
    with pytest.raises(ValidationError, match="empty"):
        make_settings(api_key="", allow_insecure_dev_key=True)


@pytest.mark.parametrize(
    ("field", "value"),
    [("model_sha256", "abc"), ("max_rows", 0), ("port", 70000), ("log_level", "LOUD")],
)
def test_invalid_values(make_settings: Settings, field: str, value: object) -> None:
    with pytest.raises(ValidationError, match=field):
        make_settings(**{field: value})


def test_secondary_key(make_settings: Settings) -> None:
    settings = make_settings(secondary_api_key="another-random-key-42")
    assert len(settings.api_keys()) == 2
    assert make_settings(secondary_api_key="").secondary_api_key is None
    with pytest.raises(ValidationError, match="SCORING_SECONDARY_API_KEY is a placeholder"):
        make_settings(secondary_api_key="changeme")


def _model_env(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setenv("SCORING_MODEL_DIR", str(folder))
    monkeypatch.setenv("SCORING_MODEL_NAME", "diabetes-ridge")
    monkeypatch.setenv("SCORING_MODEL_VERSION", "3")
    monkeypatch.setenv("SCORING_MODEL_SHA256", "ab" * 32)


def test_keys_can_come_from_files(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # A mounted secret volume (ACI) holds the keys: nothing secret in the environment.
    _model_env(monkeypatch, tmp_path)
    (tmp_path / "api-key").write_text("key-from-a-file-0123456789\n")
    (tmp_path / "secondary").write_text("second-key-from-a-file-0123")
    monkeypatch.setenv("SCORING_API_KEY_FILE", str(tmp_path / "api-key"))
    monkeypatch.setenv("SCORING_SECONDARY_API_KEY_FILE", str(tmp_path / "secondary"))

    settings = ScoringSettings()  # type: ignore[call-arg]

    assert settings.api_keys() == (b"key-from-a-file-0123456789", b"second-key-from-a-file-0123")
    assert "key-from-a-file" not in repr(settings)


def test_the_telemetry_connection_string_can_come_from_a_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _model_env(monkeypatch, tmp_path)
    monkeypatch.setenv("SCORING_API_KEY", "a-long-random-key-123456")
    secret = "InstrumentationKey=0000;IngestionEndpoint=http://127.0.0.1:1/"
    (tmp_path / "appinsights").write_text(secret + "\n")
    monkeypatch.setenv("SCORING_APPINSIGHTS_CONNECTION_STRING_FILE", str(tmp_path / "appinsights"))

    settings = ScoringSettings()  # type: ignore[call-arg]

    assert settings.appinsights_connection_string is not None
    assert settings.appinsights_connection_string.get_secret_value() == secret
    assert "InstrumentationKey" not in repr(settings)
    (tmp_path / "appinsights").write_text("")  # an empty file: telemetry off
    assert ScoringSettings().appinsights_connection_string is None  # type: ignore[call-arg]
    monkeypatch.setenv("SCORING_APPINSIGHTS_CONNECTION_STRING", secret)
    with pytest.raises(ValidationError, match="not both"):
        ScoringSettings()  # type: ignore[call-arg]


def test_a_key_file_is_checked_like_a_key(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _model_env(monkeypatch, tmp_path)
    (tmp_path / "api-key").write_text("changeme\n")
    monkeypatch.setenv("SCORING_API_KEY_FILE", str(tmp_path / "api-key"))
    with pytest.raises(ValidationError, match="placeholder"):
        ScoringSettings()  # type: ignore[call-arg]


def test_a_missing_key_file_is_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    _model_env(monkeypatch, tmp_path)
    monkeypatch.setenv("SCORING_API_KEY_FILE", str(tmp_path / "nope"))
    with pytest.raises(ValidationError, match=r"SCORING_API_KEY_FILE: cannot read .*nope"):
        ScoringSettings()  # type: ignore[call-arg]


def test_a_key_and_its_file_together_are_refused_without_showing_the_key(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    _model_env(monkeypatch, tmp_path)
    (tmp_path / "api-key").write_text("key-from-a-file-0123456789")
    monkeypatch.setenv("SCORING_API_KEY_FILE", str(tmp_path / "api-key"))
    monkeypatch.setenv("SCORING_API_KEY", "key-from-the-env-0123456789")
    with pytest.raises(ValidationError, match="not both") as caught:
        ScoringSettings()  # type: ignore[call-arg]
    assert "key-from-the-env" not in str(caught.value)
