"""Pure machine-learning core: no Prefect, no Azure, no Docker."""
