"""The base job template of the ``mlops-aci`` work pool, generated from prefect-azure's worker.

prefect-azure's Azure Container Instances worker (type ``azure-container-instance``) creates
one container group per flow run through an ARM deployment. Its default template is taken
as it is and changed only where the project needs it:

- the flows' image runs ``/opt/mlops/entrypoint``: it reads the Prefect credential from Key
  Vault as the group's identity, then starts the flow run (deployments/docker/);
- ``env`` sets ``PREFECT_API_KEY`` and ``PREFECT_API_AUTH_STRING`` to "": the worker would
  otherwise copy its own credential into every group (as a "secure" value, still an
  environment variable). ``None`` would not do: prefect-azure merges the worker's variables
  in again after Prefect drops the ``None`` ones;
- a ``location`` variable fills the ARM template's region (the default is the resource
  group's);
- more memory and a longer start timeout than the defaults: the image holds pandas,
  scikit-learn, Great Expectations and the Azure SDKs.

Deployment-specific values (image digest, identity, registry, subscription...) are not in
the versioned file: ``core.deploy.aci_job_template`` fills them from the settings when
``mlops deploy`` creates the pool. Regenerate after upgrading prefect-azure:
``python -m backends.azure.aci_pool > deployments/work-pools/mlops-aci.json``
(a unit test fails while the two differ).
"""

from __future__ import annotations

import copy
import json
import sys
from typing import Any

from prefect_azure.workers.container_instance import AzureContainerWorker

WORKER_TYPE = AzureContainerWorker.type
ENTRYPOINT = "/opt/mlops/entrypoint"
# The credential variables the worker would hand down from its own environment.
CREDENTIAL_ENV = ("PREFECT_API_KEY", "PREFECT_API_AUTH_STRING")
MEMORY_GB = 2.0
START_TIMEOUT_SECONDS = 600


def base_job_template() -> dict[str, Any]:
    """prefect-azure's default template with the project's changes (module docstring)."""
    template = copy.deepcopy(AzureContainerWorker.get_default_base_job_template())
    props = template["variables"]["properties"]
    props["entrypoint"]["default"] = ENTRYPOINT
    props["env"]["default"] = dict.fromkeys(CREDENTIAL_ENV, "")
    props["memory"]["default"] = MEMORY_GB
    props["task_start_timeout_seconds"]["default"] = START_TIMEOUT_SECONDS
    props["location"] = {
        "title": "Location",
        "description": "Azure region of the flow-run container groups.",
        "type": "string",
        "default": "[resourceGroup().location]",
    }
    arm = template["job_configuration"]["arm_template"]
    arm["parameters"]["location"]["defaultValue"] = "{{ location }}"
    return dict(template)


def main() -> None:
    json.dump(base_job_template(), sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
