"""The Azure ML inference server's entry script: the standard ``init()`` / ``run()`` pair.

Like MLOpsPython's ``score.py``: ``init`` loads the model with joblib from
``AZUREML_MODEL_DIR``, ``run`` parses the JSON body and calls ``model.predict``. It runs
inside the server's own virtualenv (``.tools/aml-server``), never imported by the project.
"""

import json
import os
from typing import Any

import joblib
import numpy as np

model: Any = None


def init():
    """Load the model once per worker."""
    global model
    model = joblib.load(os.path.join(os.environ["AZUREML_MODEL_DIR"], "model.joblib"))


def run(raw_data):
    """Score ``{"data": [[...], ...]}``; return ``{"predictions": [...]}``."""
    data = np.array(json.loads(raw_data)["data"])
    return {"predictions": model.predict(data).tolist()}
