"""The one way evo writes files: atomically (temporary file, fsync, rename) or appended and synced.

A bottom-layer module (imports nothing of evo) so that the genome, the store and the search can share it.
Every ``OSError`` leaving these functions carries the path it was writing, so a full disk or a read-only
run directory reaches the user as ``PATH: No space left on device`` rather than a library's own words
(``torch.save`` into a full disk says ``unexpected pos 8640 vs 8528``; Python's ``write`` names no file).

Example:
    >>> import tempfile, pathlib
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "a.txt"
    >>> atomic_write_text(path, "one")
    >>> path.read_text()
    'one'
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["append_synced", "atomic_write_bytes", "atomic_write_text", "atomic_write_with", "naming_path", "sha256_hex"]


@contextmanager
def naming_path(path: str | os.PathLike[str]) -> Iterator[None]:
    """Give an ``OSError`` raised inside that names no file the ``path`` being written."""
    try:
        yield
    except OSError as err:
        if err.filename is not None or err.errno is None:
            raise
        raise type(err)(err.errno, err.strerror, str(path)) from err


def atomic_write_with(path: str | os.PathLike[str], write: Callable[[Path], None], suffix: str = ".tmp") -> None:
    """Let ``write`` fill a temporary file beside ``path``, sync it and rename it to ``path``, so readers see the
    old file or the new one, never half of one (nor, after a power cut, an empty one).

    Args:
        suffix: the temporary file's suffix (writers such as ``torch.export.save`` check the one they get).
    """
    path = Path(path)
    with naming_path(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=suffix)
        os.close(fd)
        tmp = Path(name)
        try:
            write(tmp)
            with open(tmp, "rb") as f:
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """:func:`atomic_write_with` of ``data``."""
    atomic_write_with(path, lambda tmp: tmp.write_bytes(data))


def atomic_write_text(path: str | os.PathLike[str], text: str) -> None:
    """:func:`atomic_write_bytes` of UTF-8 text."""
    atomic_write_bytes(path, text.encode())


def append_synced(path: str | os.PathLike[str], text: str, sync: bool = True) -> None:
    """Append ``text`` to ``path`` (synced when ``sync``); a reader must tolerate a torn last line."""
    with naming_path(path), open(path, "a") as f:
        f.write(text)
        f.flush()
        if sync:
            os.fsync(f.fileno())


def sha256_hex(data: bytes) -> str:
    """The checksum stored beside a file's name so a reader can tell a damaged file from an intact one."""
    return hashlib.sha256(data).hexdigest()
