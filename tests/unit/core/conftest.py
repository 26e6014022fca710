"""The scoring fixtures (a model folder, settings, an app client), shared from tests/utils."""

from tests.utils.scoring import (  # noqa: F401  (fixtures are found by name)
    _no_scoring_env,
    api_key,
    client,
    make_settings,
    model_dir,
    model_folder_factory,
    model_sha,
    settings,
)
