"""The error hierarchy and how the CLI reports it: one line and exit 2 for what the user can fix."""

from __future__ import annotations

import errno

import pytest

import evo.cli
from evo.errors import ConfigError, DamagedRunError, EvoError, NotApplicable, RunExistsError


@pytest.mark.parametrize("cls", [ConfigError, DamagedRunError, RunExistsError, NotApplicable])
def test_user_errors_are_evo_errors_and_value_errors(cls: type[EvoError]) -> None:
    err = cls("x")
    assert isinstance(err, EvoError) and isinstance(err, ValueError)


def _raising(exc: BaseException):  # an app that fails the way a command would
    def app(**_: object) -> None:
        raise exc
    return app


def test_cli_prints_an_evo_error_as_one_line(monkeypatch, capsys) -> None:
    monkeypatch.setattr(evo.cli, "app", _raising(DamagedRunError("runs/x/config.yaml: cut short")))
    with pytest.raises(SystemExit) as exit_:
        evo.cli.cli(["run"])
    assert exit_.value.code == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["error: runs/x/config.yaml: cut short"]


def test_cli_names_the_path_of_a_full_disk(monkeypatch, capsys) -> None:
    full = OSError(errno.ENOSPC, "No space left on device", "runs/x/individuals/3.pt")
    monkeypatch.setattr(evo.cli, "app", _raising(full))
    with pytest.raises(SystemExit) as exit_:
        evo.cli.cli(["run"])
    assert exit_.value.code == 2
    assert capsys.readouterr().err.strip() == "error: runs/x/individuals/3.pt: No space left on device"


@pytest.mark.parametrize("bug", [KeyError("bug"), ValueError("bug deep inside torch"), OSError(errno.EBADF, "Bad file descriptor")])
def test_cli_keeps_the_traceback_of_a_bug(monkeypatch, capsys, bug: Exception) -> None:
    monkeypatch.setattr(evo.cli, "app", _raising(bug))
    with pytest.raises(SystemExit) as exit_:
        evo.cli.cli(["run"])
    assert exit_.value.code == 1
    err = capsys.readouterr().err
    assert err.startswith("Traceback (most recent call last):")
    assert f"{type(bug).__name__}: {bug}" in err
    assert err.strip().splitlines()[-1] == (
        "error: internal error — this is a bug in evo; please report it with the traceback above"
    )
