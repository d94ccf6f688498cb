"""Prefect flows: recipes that compose ``tasks``."""

import os


def quiet_offline() -> None:
    """For a command run from a shell: the temporary Prefect server it starts sends no usage telemetry
    (offline it only logs a failure) unless the user set the variable; ``make`` sets the same."""
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
