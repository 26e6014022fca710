"""The scoring fixtures (a model folder, its sha256, the API key), shared from tests/utils."""

from tests.utils.scoring import (  # noqa: F401  (fixtures are found by name)
    _no_scoring_env,
    api_key,
    model_dir,
    model_sha,
)
