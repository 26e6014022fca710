"""Reading the Bicep templates for the tests: the checkov virtualenv, and a light parser of
the declarations the tests assert (outputs, role assignments, skip comments).

The grammar check itself is pycep-parser (the parser checkov uses), run inside the checkov
virtualenv; the regular expressions here only pick out declarations in files it accepted.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[4]
TEMPLATES = ROOT / "deployments" / "azure"
TOOLS = ROOT / ".tools" / "checkov" / "bin"


def bicep_files(folder: Path = TEMPLATES) -> list[Path]:
    return sorted(folder.rglob("*.bicep"))


def tool(name: str) -> Path:
    """A program of the checkov virtualenv; fails (never skips) when it is missing."""
    path = TOOLS / name
    if not path.exists():
        pytest.fail(f"{path} is missing: run `make setup` (it installs checkov there)")
    return path


_PARSE = """
import json, sys
from pathlib import Path
from pycep import BicepParser
parser = BicepParser()
errors = {}
for name in sys.argv[1:]:
    try:
        parser.parse(file_path=Path(name))
    except Exception as exc:
        errors[name] = f"{type(exc).__name__}: {str(exc)[:300]}"
print(json.dumps(errors))
"""


def parse_errors(files: list[Path]) -> dict[str, str]:
    """pycep-parser's error per file that does not parse (empty: all parse)."""
    done = subprocess.run(
        [str(tool("python")), "-c", _PARSE, *map(str, files)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return dict(json.loads(done.stdout))


_TREE = """
import json, sys
from pathlib import Path
from pycep import BicepParser
print(json.dumps(BicepParser().parse(file_path=Path(sys.argv[1])), default=str))
"""


def parsed(path: Path) -> dict[str, Any]:
    """pycep-parser's tree of one file: parameters, resources (with their ``config``), outputs."""
    done = subprocess.run(
        [str(tool("python")), "-c", _TREE, str(path)],
        capture_output=True,
        text=True,
        timeout=300,
        check=True,
    )
    return dict(json.loads(done.stdout))


def checkov(folder: Path) -> dict[str, Any]:
    """checkov's JSON report on the Bicep files under ``folder`` (offline: no download)."""
    done = subprocess.run(
        [
            str(tool("checkov")),
            "--directory",
            str(folder),
            "--framework",
            "bicep",
            "--output",
            "json",
            "--skip-download",
            "--compact",
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "BC_SKIP_MAPPING": "TRUE"},  # no guideline mapping download
    )
    # 0: no failed check, 1: failed checks; anything else is checkov itself failing.
    assert done.returncode in (0, 1), done.stderr[-2000:]
    report = json.loads(done.stdout)
    reports = report if isinstance(report, list) else [report]
    (bicep,) = [r for r in reports if r.get("check_type") == "bicep"]
    return dict(bicep)


_SKIP = re.compile(r"//\s*checkov:skip=([A-Z0-9_]+)(?::(.*))?")


def skip_comments(files: list[Path]) -> list[tuple[str, str, str]]:
    """(file relative to the templates, check id, reason) of every skip comment."""
    found = []
    for path in files:
        for match in _SKIP.finditer(path.read_text()):
            reason = (match[2] or "").strip()
            found.append((path.relative_to(TEMPLATES).as_posix(), match[1], reason))
    return found


_OUTPUT = re.compile(r"^output\s+([A-Za-z_][A-Za-z0-9_]*)\s", re.MULTILINE)


def outputs(path: Path) -> list[str]:
    return _OUTPUT.findall(path.read_text())


@dataclass(frozen=True)
class RoleAssignment:
    file: str
    name: str  # the Bicep symbol
    role: str  # role definition GUID
    scope: str  # the scope's Bicep symbol, or "resourceGroup" when none is given
    why: str  # the comment above it


_ASSIGNMENT = re.compile(
    r"((?:^//[^\n]*\n)*)^resource\s+(\w+)\s+'Microsoft\.Authorization/roleAssignments@[^']+'"
    r"[^{]*\{(.*?)^\}",
    re.MULTILINE | re.DOTALL,
)
_GUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
_ROLE_ID = re.compile(
    r"roleDefinitionId:\s*subscriptionResourceId\('Microsoft\.Authorization/roleDefinitions',"
    rf"\s*(?:'({_GUID})'|([\w.]+))\)"
)


def _variables(text: str) -> dict[str, str]:
    """Role GUIDs held by Bicep variables: ``var x = GUID`` and ``var role = { k: GUID }``."""
    names = {m[1]: m[2] for m in re.finditer(rf"^var\s+(\w+)\s*=\s*'({_GUID})'", text, re.M)}
    for block in re.finditer(r"^var\s+(\w+)\s*=\s*\{(.*?)^\}", text, re.M | re.S):
        for key, guid in re.findall(rf"^\s*(\w+):\s*'({_GUID})'", block[2], re.M):
            names[f"{block[1]}.{key}"] = guid
    return names


def role_assignments(files: list[Path], root: Path = TEMPLATES) -> list[RoleAssignment]:
    found = []
    for path in files:
        text = path.read_text()
        variables = _variables(text)
        for match in _ASSIGNMENT.finditer(text):
            comment, name, body = match[1], match[2], match[3]
            role_id = _ROLE_ID.search(body)
            assert role_id, f"{path.name}:{name}: no roleDefinitionId"
            role = role_id[1] or variables[role_id[2]]
            scope = re.search(r"^\s*scope:\s*(\S+)", body, re.M)
            why = " ".join(line.lstrip("/ ").strip() for line in comment.splitlines())
            found.append(
                RoleAssignment(
                    path.relative_to(root).as_posix(),
                    name,
                    role,
                    scope[1] if scope else "resourceGroup",
                    why,
                )
            )
    return found


def grantable_roles(path: Path) -> set[str]:
    """The role GUIDs a role-assignment condition lets its holder grant (ci.bicep)."""
    block = re.search(r"^var grantable = join\(\[(.*?)\]", path.read_text(), re.M | re.S)
    assert block, f"{path.name} has no grantable list"
    return set(re.findall(_GUID, block[1]))
