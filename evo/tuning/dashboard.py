"""optuna-dashboard over evo's storage: searches and mirrored runs, with architecture diagrams.

Bound to 127.0.0.1 (the dashboard has no authentication); reach it from elsewhere through an SSH tunnel.

Example:
    >>> serve_dashboard("sqlite:///runs/evo.db", port=8080)  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from evo.errors import ConfigError
from evo.mirror.storage import open_storage
from evo.paths import DEFAULT_ARTIFACTS

if TYPE_CHECKING:
    from wsgiref.simple_server import WSGIServer

__all__ = ["HOST", "dashboard_server", "dashboard_url", "serve_dashboard"]

HOST = "127.0.0.1"


def dashboard_url(port: int) -> str:
    return f"http://{HOST}:{port}/dashboard/"


def dashboard_server(storage: str | None = None, *, port: int = 8080,
                     artifacts: str | Path = DEFAULT_ARTIFACTS) -> WSGIServer:
    """optuna-dashboard bound to 127.0.0.1:``port``, not serving yet (call ``serve_forever``).

    Binding first lets a caller report a port in use before it announces an address that would not answer.

    Args:
        storage: Optuna storage URL; default ``sqlite:///runs/evo.db``.
        port: TCP port on 127.0.0.1.
        artifacts: folder of the artifact store the runs' diagrams were uploaded to.

    Raises:
        OSError: the port is taken (``errno.EADDRINUSE``) or may not be bound.
    """
    from wsgiref.simple_server import make_server

    import optuna_dashboard
    from optuna.artifacts import FileSystemArtifactStore

    if not 0 < port < 65536:
        raise ConfigError(f"dashboard: port must be in 1..65535, got {port}")
    Path(artifacts).mkdir(parents=True, exist_ok=True)
    app = optuna_dashboard.wsgi(open_storage(storage), artifact_store=FileSystemArtifactStore(str(artifacts)))
    return make_server(HOST, port, app)


def serve_dashboard(storage: str | None = None, *, port: int = 8080, artifacts: str | Path = DEFAULT_ARTIFACTS) -> None:
    """Serve optuna-dashboard until interrupted (arguments as :func:`dashboard_server`)."""
    with dashboard_server(storage, port=port, artifacts=artifacts) as server:
        server.serve_forever()
