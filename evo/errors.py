"""Errors the user can fix, in one hierarchy (the bottom layer: imports nothing of evo).

``EvoError`` means "the user can fix this": the CLI prints it as one line and exits with code 2.
Anything else that escapes is a bug and keeps its traceback. Each subclass also derives from the
built-in exception that callers caught before it existed (``ValueError`` mostly), so code written
against those keeps working. Modelled in spirit on Optuna's ``optuna/exceptions.py``.

Example:
    >>> try:
    ...     raise DamagedRunError("runs/x/checkpoints/gen_0003.json: not JSON")
    ... except EvoError as err:
    ...     print(err)
    runs/x/checkpoints/gen_0003.json: not JSON
"""

from __future__ import annotations

__all__ = [
    "ConfigError",
    "DamagedRunError",
    "DamagedRunWarning",
    "DataError",
    "EvoError",
    "NotApplicable",
    "RunExistsError",
    "RunFailedError",
    "RunLockedError",
    "StorageError",
    "UntrustedFileError",
]


class EvoError(Exception):
    """A problem the user can fix; its message is one line saying what and where."""


class ConfigError(EvoError, ValueError):
    """A configuration, search space or argument the user wrote is invalid; the message names the source and field."""


class DataError(EvoError, ValueError):
    """A data file or data set cannot be used as given (missing, unreadable, wrong shape, NaN...)."""


class RunExistsError(EvoError, ValueError):
    """A run directory already holds a run (start another name, or resume it)."""


class RunLockedError(EvoError):
    """Another process is running, resuming or extending this run directory right now."""


class DamagedRunError(EvoError, ValueError):
    """A run directory's files are missing, cut short or inconsistent; the message names the file."""


class DamagedRunWarning(UserWarning):
    """A damaged file was passed over for an intact older one (e.g. the newest checkpoint); the run goes on."""


class RunFailedError(EvoError, RuntimeError):
    """No evaluation of a run succeeded (e.g. a NaN in the data): the message carries the first error."""


class StorageError(EvoError, ValueError):
    """An Optuna storage cannot be used (bad URL, unreachable, a study of another search)."""


class UntrustedFileError(EvoError, ValueError):
    """A file would need code execution to load and the caller did not say it is trusted."""


class NotApplicable(EvoError, ValueError):
    """An operator does not apply to this genome (e.g. no layer to remove); evolution draws another.

    Raised by operators only; anything else an operator raises is a bug and surfaces.
    """
