"""Print a deployment's ``MLOPS_*`` outputs as shell ``export`` lines.

    az deployment group show -g "$RG" -n mlops --query properties.outputs -o json \\
      | python3 deployments/azure/outputs_to_env.py > .env.azure

``--plain`` prints ``NAME=value`` lines instead (for ``$GITHUB_ENV``, which takes no quoting).

The outputs of main.bicep hold names, URLs and resource ids, never secrets. Standard library
only: it runs before any virtualenv exists.
"""

from __future__ import annotations

import json
import shlex
import sys


def export_lines(outputs: dict[str, dict[str, object]], plain: bool = False) -> list[str]:
    """``export NAME=value`` for ``MLOPS_PROFILE=azure`` and each output whose name starts
    with ``MLOPS_``, sorted; ``NAME=value`` unquoted when ``plain``."""
    values = {"MLOPS_PROFILE": "azure"}
    for name, output in outputs.items():
        if name.startswith("MLOPS_"):
            value = output.get("value")
            values[name] = "" if value is None else str(value)
    if plain:
        return [f"{name}={value}" for name, value in sorted(values.items())]
    return [f"export {name}={shlex.quote(value)}" for name, value in sorted(values.items())]


if __name__ == "__main__":
    lines = export_lines(json.load(sys.stdin), plain="--plain" in sys.argv[1:])
    sys.stdout.write("\n".join(lines) + "\n")
