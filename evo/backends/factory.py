"""The backend a validated ``backend`` section describes.

Apart from :mod:`evo.backends.config` because the backends read that section themselves (``from_config``):
the model sits below them, this factory above.

Example:
    >>> make_backend(BackendConfig(kind="serial"))  # doctest: +ELLIPSIS
    <evo.backends.serial.SerialBackend object at ...>
"""

from __future__ import annotations

from evo.backends._base import Backend
from evo.backends.config import BackendConfig
from evo.backends.serial import SerialBackend

__all__ = ["make_backend"]


def make_backend(cfg: BackendConfig) -> Backend:
    """The backend ``cfg`` describes; Ray is imported (and started, lazily) only for ``kind: ray``."""
    if cfg.kind == "serial":
        return SerialBackend.from_config(cfg)
    from evo.backends.ray import RayBackend  # Ray's import alone takes seconds: only for a Ray run

    return RayBackend.from_config(cfg)
