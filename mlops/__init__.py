"""The `mlops` command and the settings object."""
