"""The `azure` profile's settings and main.bicep's outputs, checked both ways: every
``MLOPS_AZURE__*`` setting is an output of main.bicep or a documented input
(deployments/azure/README.md), and every ``MLOPS_AZURE__*`` output is a setting."""

from __future__ import annotations

import json
import re
import subprocess
import sys

from core.settings import AzureSettings, Settings

from .bicep import TEMPLATES, outputs

README = TEMPLATES / "README.md"


def setting_names() -> set[str]:
    return {f"MLOPS_AZURE__{name.upper()}" for name in AzureSettings.model_fields}


def bicep_outputs() -> set[str]:
    return {name for name in outputs(TEMPLATES / "main.bicep") if name.startswith("MLOPS_")}


def documented_inputs() -> set[str]:
    return set(re.findall(r"^\| `(MLOPS_AZURE__\w+)` \|", README.read_text(), re.MULTILINE))


def mismatches(settings: set[str], outs: set[str], inputs: set[str]) -> list[str]:
    """What breaks the rule; empty when settings, outputs and documented inputs agree."""
    problems = [f"{name}: neither an output nor a documented input" for name in settings]
    problems = [p for p in problems if p.split(":")[0] not in outs | inputs]
    problems += [f"{name}: an output that is no setting" for name in sorted(outs - settings)]
    problems += [f"{name}: a documented input that is no setting" for name in inputs - settings]
    problems += [f"{name}: both an output and an input" for name in sorted(outs & inputs)]
    return sorted(problems)


def test_settings_and_outputs_agree_both_ways() -> None:
    assert bicep_outputs() and documented_inputs()
    assert mismatches(setting_names(), bicep_outputs(), documented_inputs()) == []


def test_a_setting_without_an_output_is_found() -> None:
    settings = setting_names() | {"MLOPS_AZURE__NEW_THING"}
    assert mismatches(settings, bicep_outputs(), documented_inputs()) == [
        "MLOPS_AZURE__NEW_THING: neither an output nor a documented input"
    ]


def test_an_output_without_a_setting_is_found() -> None:
    outs = bicep_outputs() | {"MLOPS_AZURE__STALE"}
    assert mismatches(setting_names(), outs, documented_inputs()) == [
        "MLOPS_AZURE__STALE: an output that is no setting"
    ]


def test_an_output_that_is_also_an_input_is_found() -> None:
    inputs = documented_inputs() | {"MLOPS_AZURE__WORKSPACE"}
    assert mismatches(setting_names(), bicep_outputs(), inputs) == [
        "MLOPS_AZURE__WORKSPACE: both an output and an input"
    ]


def test_the_printed_outputs_load_as_the_azure_profile() -> None:
    """outputs_to_env.py's lines, as `az deployment group show` would feed it, make valid
    settings of the azure profile."""
    values = {name: f"value-of-{name.lower()}" for name in bicep_outputs()}
    values["MLOPS_AZURE__STORAGE_ACCOUNT_URL"] = "https://stlake.blob.core.windows.net/"
    values["MLOPS_AZURE__PRODUCTION_TARGET"] = "managed"  # one of its two values
    payload = json.dumps({name: {"type": "String", "value": v} for name, v in values.items()})
    payload = payload[:-1] + ', "workerClientId": {"type": "String", "value": "c"}}'
    done = subprocess.run(
        [sys.executable, str(TEMPLATES / "outputs_to_env.py")],
        input=payload,
        capture_output=True,
        text=True,
        check=True,
    )
    lines = done.stdout.splitlines()
    assert "export MLOPS_PROFILE=azure" in lines
    assert not any("workerClientId" in line for line in lines)
    env = dict(line.removeprefix("export ").split("=", 1) for line in lines)
    fields = {k.removeprefix("MLOPS_AZURE__").lower(): v for k, v in env.items() if "__" in k}
    settings = Settings(profile="azure", azure=AzureSettings.model_validate(fields))
    assert settings.azure.workspace == "value-of-mlops_azure__workspace"
