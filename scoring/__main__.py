"""``python -m scoring``: read ``SCORING_*`` settings and serve with uvicorn.

Exit codes: 0 after a clean shutdown, 2 for invalid settings, 3 when the model cannot be
served (uvicorn's startup-failure code: wrong sha256, scikit-learn mismatch, ...).
"""

from __future__ import annotations

import logging
import signal
import sys
from types import FrameType

from pydantic import ValidationError

from scoring.logs import configure_logging

logger = logging.getLogger("scoring")
EXIT_BAD_SETTINGS = 2


def main() -> int:
    """Run the service until it is stopped.

    Returns:
        The process exit code.
    """
    configure_logging("INFO")
    from scoring.settings import ScoringSettings

    try:
        settings = ScoringSettings()  # type: ignore[call-arg]  # fields come from the env
    except ValidationError as exc:
        # errors() without the input: a rejected key must not reach the logs.
        for error in exc.errors(include_input=False, include_url=False):
            field = ".".join(str(part) for part in error["loc"]) or "settings"
            name = f"SCORING_{field.upper()}" if error["loc"] else field
            logger.error("invalid setting %s: %s", name, error["msg"])
        return EXIT_BAD_SETTINGS
    configure_logging(settings.log_level, settings.log_flush_interval)

    import uvicorn

    from scoring.app import create_app
    from scoring.server import uvicorn_config
    from scoring.telemetry import configure

    secret = settings.appinsights_connection_string
    tracer = configure(
        secret.get_secret_value() if secret else None,
        role=f"scoring-{settings.model_name}",
        instance=f"{settings.host}:{settings.port}",
    )
    config = uvicorn_config(create_app(settings, tracer=tracer), settings)
    # uvicorn handles SIGINT/SIGTERM (graceful shutdown), then re-raises the signal once it
    # is done; these make that re-raise a clean exit 0 instead of a death by signal.
    signal.signal(signal.SIGTERM, _exit_cleanly)
    try:
        uvicorn.Server(config).run()  # exits with status 3 itself when startup fails
    except KeyboardInterrupt:
        pass
    logger.info("stopped")
    return 0


def _exit_cleanly(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(0)


if __name__ == "__main__":
    sys.exit(main())
