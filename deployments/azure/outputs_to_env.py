"""Print a deployment's ``MLOPS_*`` outputs as shell ``export`` lines.

    az deployment group show -g "$RG" -n mlops --query properties.outputs -o json \\
      | python3 deployments/azure/outputs_to_env.py > .env.azure

The outputs of main.bicep hold names, URLs and resource ids, never secrets. Standard library
only: it runs before any virtualenv exists.
"""

from __future__ import annotations

import json
import shlex
import sys


def export_lines(outputs: dict[str, dict[str, object]]) -> list[str]:
    """``export NAME=value`` for each output whose name starts with ``MLOPS_``, sorted."""
    lines = []
    for name, output in sorted(outputs.items()):
        if name.startswith("MLOPS_"):
            value = output.get("value")
            lines.append(f"export {name}={shlex.quote('' if value is None else str(value))}")
    return lines


if __name__ == "__main__":
    sys.stdout.write("export MLOPS_PROFILE=azure\n")
    sys.stdout.write("\n".join(export_lines(json.load(sys.stdin))) + "\n")
