"""The CI files that run what needs Azure: sign-in by OIDC only, what-if on every change,
deploy and `mlops deploy` on main only, and the same stages in Azure Pipelines."""

from __future__ import annotations

from typing import Any

import yaml

from .bicep import ROOT

WORKFLOW = ROOT / ".github" / "workflows" / "azure-infra.yml"
PIPELINES = ROOT / "azure-pipelines.yml"


def steps(job: dict[str, Any]) -> list[dict[str, Any]]:
    return list(job["steps"])


def test_github_signs_in_with_oidc_and_no_secret() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    assert workflow["permissions"] == {"contents": "read", "id-token": "write"}
    (login,) = [
        s for s in steps(workflow["jobs"]["azure"]) if s.get("uses", "").startswith("azure/login@")
    ]
    assert set(login["with"]) == {"client-id", "tenant-id", "subscription-id"}
    assert "client-secret" not in WORKFLOW.read_text() and "creds:" not in WORKFLOW.read_text()


def test_github_runs_what_if_always_and_deploys_only_on_main() -> None:
    workflow = yaml.safe_load(WORKFLOW.read_text())
    job = workflow["jobs"]["azure"]
    assert job["env"]["DEPLOY"] == (
        "${{ github.event_name == 'push' && github.ref == 'refs/heads/main' }}"
    )
    by_name = {s.get("name"): s for s in steps(job)}
    assert "az deployment group what-if" in by_name["What-if"]["run"]
    assert "DEPLOY" not in by_name["What-if"]["if"]
    assert "az deployment group create" in by_name["Deploy"]["run"]
    assert "env.DEPLOY == 'true'" in by_name["Deploy"]["if"]
    publish = by_name["Publish the flows (mlops deploy)"]
    assert "mlops deploy" in publish["run"] and "env.DEPLOY == 'true'" in publish["if"]
    # Without the secrets nothing reaches Azure: every Azure step is guarded.
    for step in steps(job)[1:]:
        assert "env.HAS_AZURE == 'true'" in step["if"], step
    compile_job = workflow["jobs"]["compile"]
    assert "az bicep build" in steps(compile_job)[1]["run"]


def test_azure_pipelines_has_the_same_stages() -> None:
    pipeline = yaml.safe_load(PIPELINES.read_text())
    assert pipeline["stages"][0]["stage"] == "build_validation"
    (guarded,) = [s for s in pipeline["stages"][1:] if isinstance(s, dict)]
    (infra,) = guarded["${{ if eq(parameters.azureInfra, true) }}"]
    task = infra["jobs"][0]["steps"][1]
    assert task["task"] == "AzureCLI@2"
    script = task["inputs"]["inlineScript"]
    assert script.index("az bicep build") < script.index("what-if") < script.index("create")
    assert '"$DEPLOY" = "True"' in script
    assert "mlops deploy" in infra["jobs"][0]["steps"][-1]["script"]
