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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

__all__ = ["append_synced", "atomic_write_bytes", "atomic_write_text", "naming_path", "sha256_hex"]


@contextmanager
def naming_path(path: str | os.PathLike[str]) -> Iterator[None]:
    """Give an ``OSError`` raised inside that names no file the ``path`` being written."""
    try:
        yield
    except OSError as err:
        if err.filename is not None or err.errno is None:
            raise
        raise type(err)(err.errno, err.strerror, str(path)) from err


def atomic_write_bytes(path: str | os.PathLike[str], data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old file or the new one, never half of one
    (synced to disk before the rename, so a power cut cannot leave an empty file either)."""
    path = Path(path)
    with naming_path(path):
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)


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
