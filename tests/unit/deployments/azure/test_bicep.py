"""The Bicep templates of deployments/azure, checked offline: every file parses, checkov finds
no failed check and every skip says why, and the role assignments are exactly the reviewed
least-privilege list. (Compiling and what-if need the Bicep CLI and Azure: CI does that,
.github/workflows/azure-infra.yml.)"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from .bicep import (
    TEMPLATES,
    RoleAssignment,
    bicep_files,
    checkov,
    grantable_roles,
    parse_errors,
    role_assignments,
    skip_comments,
)

FILES = bicep_files()
INSECURE = Path(__file__).parent / "fixtures" / "insecure"

# Built-in roles by id (the same in every tenant).
DATA_SCIENTIST = "f6c7c914-8db3-469d-8ca1-694a8f32e121"  # AzureML Data Scientist
BLOB_CONTRIBUTOR = "ba92f5b4-2d11-453d-a403-e96b0029c9fe"  # Storage Blob Data Contributor
BLOB_OWNER = "b7e6dc6d-f1e8-4753-8033-0f276bb0955b"  # Storage Blob Data Owner
ACR_PUSH = "8311e382-0749-4cb8-b61a-304f252e45ec"
ACR_TASKS_CONTRIBUTOR = "fb382eab-e894-4461-af04-94435c366c3f"
ACR_PULL = "7f951dda-4ed3-4680-a7ca-43fe172d538d"
ACI_CONTRIBUTOR = "5d977122-f97e-4b4d-a52f-6b43003ddb4d"  # Azure Container Instances Contributor
MI_OPERATOR = "f1a07417-d97a-45cb-824c-7a7467783830"  # Managed Identity Operator
KV_SECRETS_OFFICER = "b86a8fe4-44ce-4948-aee5-eccb2c155cd7"
KV_SECRETS_USER = "4633458b-17de-408a-b874-0445c86b69e6"
NETWORK_CONTRIBUTOR = "4d97b98b-1d4f-4787-a291-c67834d212e7"
CONTRIBUTOR = "b24988ac-6180-42a0-ab88-20f7382dd24c"
RBAC_ADMIN = "f58310d9-a9f6-439a-9e8d-f62e7b41a168"  # Role Based Access Control Administrator
OWNER = "8e3af657-a8ff-443c-a75c-2fe8c4bcb635"
USER_ACCESS_ADMIN = "18d7d88d-d35e-4fb5-a5c3-7773c20a72d9"

# (file, symbol) -> (role, scope symbol): the reviewed list. A new or changed assignment must
# be added here on purpose.
EXPECTED = {
    ("modules/roles.bicep", "workerOnWorkspace"): (DATA_SCIENTIST, "workspace"),
    ("modules/roles.bicep", "workerOnLake"): (BLOB_CONTRIBUTOR, "lake"),
    ("modules/roles.bicep", "workerOnWorkspaceStore"): (BLOB_CONTRIBUTOR, "workspaceStore"),
    ("modules/roles.bicep", "workerPushes"): (ACR_PUSH, "registry"),
    ("modules/roles.bicep", "workerBuildsInRegistry"): (ACR_TASKS_CONTRIBUTOR, "registry"),
    ("modules/roles.bicep", "workerRunsQa"): (ACI_CONTRIBUTOR, "resourceGroup"),
    ("modules/roles.bicep", "workerAssignsQaIdentity"): (MI_OPERATOR, "qaIdentity"),
    ("modules/roles.bicep", "workerAssignsEndpointIdentity"): (MI_OPERATOR, "endpointIdentity"),
    ("modules/roles.bicep", "workerAssignsItself"): (MI_OPERATOR, "workerIdentity"),
    ("modules/roles.bicep", "workerWritesSecrets"): (KV_SECRETS_OFFICER, "appVault"),
    # subnets/join/action, one subnet each, never the network or the group
    ("modules/roles.bicep", "workerJoinsQaSubnet"): (NETWORK_CONTRIBUTOR, "qaSubnet"),
    ("modules/roles.bicep", "workerJoinsFlowsSubnet"): (NETWORK_CONTRIBUTOR, "flowsSubnet"),
    ("modules/roles.bicep", "computeOnLake"): (BLOB_CONTRIBUTOR, "lake"),
    ("modules/roles.bicep", "computeOnWorkspaceStore"): (BLOB_CONTRIBUTOR, "workspaceStore"),
    ("modules/roles.bicep", "computePulls"): (ACR_PULL, "registry"),
    ("modules/roles.bicep", "endpointPulls"): (ACR_PULL, "registry"),
    ("modules/roles.bicep", "endpointReadsSecrets"): (KV_SECRETS_USER, "appVault"),
    ("modules/roles.bicep", "qaPulls"): (ACR_PULL, "registry"),
    ("modules/aks.bicep", "controlAssignsKubelet"): (MI_OPERATOR, "kubelet"),
    ("modules/events.bicep", "topicWritesDeadLetters"): (BLOB_CONTRIBUTOR, "deadLetter"),
    ("modules/relay.bicep", "relayOwnsItsStorage"): (BLOB_OWNER, "storage"),
    ("modules/relay.bicep", "relayReadsSecrets"): (KV_SECRETS_USER, "vault"),
    ("ci.bicep", "ciDeploys"): (CONTRIBUTOR, "resourceGroup"),
    ("ci.bicep", "ciGrantsTheseRolesOnly"): (RBAC_ADMIN, "resourceGroup"),
}


# ---------------------------------------------------------------------------- parsing
def test_the_estate_is_one_main_template_of_small_modules() -> None:
    names = {p.relative_to(TEMPLATES).as_posix() for p in FILES}
    assert {"main.bicep", "ci.bicep"} <= names
    assert len([n for n in names if n.startswith("modules/")]) >= 8
    main = (TEMPLATES / "main.bicep").read_text()
    for module in (n for n in names if n.startswith("modules/")):
        assert f"'{module}'" in main, f"{module} is not used by main.bicep"
    for path in FILES:
        assert len(path.read_text().splitlines()) <= 300, f"{path.name} is too long"


def test_every_bicep_file_parses() -> None:
    assert parse_errors(FILES) == {}


def test_the_parser_rejects_broken_bicep(tmp_path: Path) -> None:
    broken = tmp_path / "broken.bicep"
    broken.write_text("resource x 'Microsoft.Storage/storageAccounts@2023-05-01' = {\n  name: \n")
    assert set(parse_errors([broken])) == {str(broken)}


# ---------------------------------------------------------------------------- checkov
@pytest.fixture(scope="module")
def report() -> dict[str, Any]:
    return checkov(TEMPLATES)


def test_checkov_finds_no_failed_check(report: dict[str, Any]) -> None:
    summary = report["summary"]
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in report["results"]["failed_checks"]
    ]
    assert failed == []
    assert summary["parsing_errors"] == 0
    # It really scanned the estate: storage, Key Vault, ACR and AKS checks all ran.
    assert summary["passed"] >= 20 and summary["resource_count"] >= 50
    ran = {c["check_id"] for c in report["results"]["passed_checks"]}
    assert {"CKV_AZURE_3", "CKV_AZURE_44", "CKV_AZURE_42", "CKV_AZURE_137", "CKV_AZURE_8"} <= ran


def test_every_skip_gives_a_reason_and_is_used(report: dict[str, Any]) -> None:
    comments = skip_comments(FILES)
    assert all(len(reason) >= 20 for _, _, reason in comments), comments
    # The skips checkov applied are exactly the skip comments: none is stale or misplaced.
    applied = {
        (c["file_path"].lstrip("/"), c["check_id"]) for c in report["results"]["skipped_checks"]
    }
    assert applied == {(file, check) for file, check, _ in comments}


def test_checkov_fails_a_template_that_breaks_policy() -> None:
    insecure = checkov(INSECURE)
    failed = {c["check_id"] for c in insecure["results"]["failed_checks"]}
    # TLS 1.0, HTTP allowed, open network, no replication
    assert {"CKV_AZURE_44", "CKV_AZURE_3", "CKV_AZURE_35", "CKV_AZURE_206"} <= failed


# ---------------------------------------------------------------------------- roles
def test_role_assignments_are_the_reviewed_list() -> None:
    found = role_assignments(FILES)
    assert {(a.file, a.name): (a.role, a.scope) for a in found} == EXPECTED
    for assignment in found:
        assert len(assignment.why) >= 30, f"{assignment.name} does not say why"


def test_no_owner_and_nothing_at_subscription_scope() -> None:
    for path in FILES:
        text = path.read_text()
        assert "targetScope = 'subscription'" not in text and "scope: subscription()" not in text
        assert OWNER not in text and USER_ACCESS_ADMIN not in text, path.name
    # Contributor only for CI, on its resource group.
    broad = [a for a in role_assignments(FILES) if a.role in (CONTRIBUTOR, RBAC_ADMIN)]
    assert {(a.file, a.scope) for a in broad} == {("ci.bicep", "resourceGroup")}


def test_ci_may_grant_exactly_the_roles_main_grants() -> None:
    granted_by_main = {a.role for a in role_assignments(FILES) if a.file != "ci.bicep"}
    assert grantable_roles(TEMPLATES / "ci.bicep") == granted_by_main


def test_the_role_parser_sees_a_bad_assignment(tmp_path: Path) -> None:
    bad = tmp_path / "bad.bicep"
    bad.write_text(
        "resource everything 'Microsoft.Authorization/roleAssignments@2022-04-01' = {\n"
        "  name: guid('x')\n"
        "  properties: {\n"
        "    roleDefinitionId: subscriptionResourceId('Microsoft.Authorization/roleDefinitions',"
        f" '{OWNER}')\n"
        "  }\n"
        "}\n"
    )
    (found,) = role_assignments([bad], root=tmp_path)
    assert found == RoleAssignment("bad.bicep", "everything", OWNER, "resourceGroup", "")
