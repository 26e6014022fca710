"""Azure adapters: Azure ML jobs (``compute``), the Azure ML model registry (``registry``),
the workspace client they share (``client``) and the ACI release target (``aci``).

Each module imports its SDK at the top: import them only on the Azure profile (as
``backends.get_backends`` does), never from code that runs locally.
"""
