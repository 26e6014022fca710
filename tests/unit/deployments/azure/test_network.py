"""QA's private network (modules/qa-network.bicep) as the release needs it: QA's group and the
flow runs' groups (MLOPS_WORK_POOL=mlops-aci) in subnets ACI may join, the flow runs able to
reach QA's scoring port and reachable by nothing, and main.bicep handing the flows subnet to
the settings."""

from __future__ import annotations

import ipaddress
from typing import Any

import pytest

from .bicep import TEMPLATES, parsed

ACI = "Microsoft.ContainerInstance/containerGroups"


@pytest.fixture(scope="module")
def network() -> dict[str, Any]:
    return parsed(TEMPLATES / "modules" / "qa-network.bicep")


def subnets(network: dict[str, Any]) -> dict[str, dict[str, Any]]:
    config = network["resources"]["vnet"]["config"]
    return {s["name"]: s["properties"] for s in config["properties"]["subnets"]}


def nsg_of(network: dict[str, Any], subnet: dict[str, Any]) -> list[dict[str, Any]]:
    """The security rules of the subnet's network security group."""
    symbol = subnet["networkSecurityGroup"]["id"]["operator"]["operands"]["operand_1"]
    rules = network["resources"][symbol]["config"]["properties"]["securityRules"]
    return [rule["properties"] for rule in rules]


def delegations(subnet: dict[str, Any]) -> list[str]:
    return [d["properties"]["serviceName"] for d in subnet.get("delegations", [])]


def test_container_groups_join_delegated_subnets_and_a_vm_worker_has_its_own(
    network: dict[str, Any],
) -> None:
    found = subnets(network)
    assert set(found) == {"qa", "flows", "workers"}
    assert delegations(found["qa"]) == delegations(found["flows"]) == [ACI]
    assert delegations(found["workers"]) == []  # a delegated subnet takes only container groups


def test_the_subnets_fit_the_network_and_do_not_overlap(network: dict[str, Any]) -> None:
    defaults = {name: p["default"] for name, p in network["parameters"].items() if p["default"]}
    space = ipaddress.IPv4Network(defaults["addressPrefix"])
    prefixes = [defaults[p["addressPrefix"]] for p in subnets(network).values()]
    ranges = [ipaddress.IPv4Network(prefix) for prefix in prefixes]
    assert all(r.subnet_of(space) for r in ranges)
    assert not [(a, b) for a in ranges for b in ranges if a is not b and a.overlaps(b)]


def test_flow_runs_accept_nothing_inbound_and_call_out_freely(network: dict[str, Any]) -> None:
    rules = nsg_of(network, subnets(network)["flows"])
    assert [r for r in rules if r["access"] == "Allow"] == []
    assert [r for r in rules if r["direction"] == "Outbound"] == []  # the default: open
    (deny,) = rules
    assert deny["direction"] == "Inbound" and deny["access"] == "Deny"
    assert deny["sourceAddressPrefix"] == deny["destinationPortRange"] == deny["protocol"] == "*"


def test_qa_takes_its_scoring_port_from_the_network_only(network: dict[str, Any]) -> None:
    allowed = [r for r in nsg_of(network, subnets(network)["qa"]) if r["access"] == "Allow"]
    # VirtualNetwork covers the flows and workers subnets: the release flow's smoke test.
    assert allowed == [
        {
            "priority": 100,
            "direction": "Inbound",
            "access": "Allow",
            "protocol": "Tcp",
            "sourceAddressPrefix": "VirtualNetwork",
            "sourcePortRange": "*",
            "destinationAddressPrefix": "qaSubnetPrefix",
            "destinationPortRange": "5001",
        }
    ]


def test_main_hands_the_flows_subnet_to_the_settings() -> None:
    main = parsed(TEMPLATES / "main.bicep")
    value = main["outputs"]["MLOPS_AZURE__FLOW_SUBNET_ID"]["value"]["operator"]["operands"]
    assert value["operand_1"] == "qaNetwork"  # qaNetwork.outputs.flowsSubnetId
    assert value["operand_2"]["operator"]["operands"]["operand_2"] == "flowsSubnetId"
    network = parsed(TEMPLATES / "modules" / "qa-network.bicep")
    assert network["outputs"]["flowsSubnetId"]["value"] == "${vnet.id}/subnets/flows"
