"""Our service as a plain host process, one of several sharing a port (``SO_REUSEPORT``).

Exactly what ``python -m scoring`` runs (settings from ``SCORING_*``, JSON request logs on
stdout, ``scoring.app.create_app`` under ``scoring.server.uvicorn_config``), except that it
binds its socket itself with ``SO_REUSEPORT``, so that two such processes serve one port and
the kernel spreads connections between them: "2 direct processes" in ``make bench``.

    SCORING_...=... python bench/serve_direct.py
"""

from __future__ import annotations

import socket

from scoring.logs import configure_logging


def main() -> None:
    """Serve until SIGTERM/SIGINT."""
    import uvicorn

    from scoring.app import create_app
    from scoring.server import uvicorn_config
    from scoring.settings import ScoringSettings

    configure_logging("INFO")
    settings = ScoringSettings()  # type: ignore[call-arg]  # fields come from the env
    configure_logging(settings.log_level)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
    sock.bind((settings.host, settings.port))
    sock.listen(2048)
    uvicorn.Server(uvicorn_config(create_app(settings), settings)).run(sockets=[sock])


if __name__ == "__main__":
    main()
