"""The ``evo`` command. Thin: parses arguments, validates, calls the library.

User mistakes (bad config, bad file, bad argument) end in one line on stderr and exit code 2.
"""

from __future__ import annotations

import sys
from typing import NoReturn

import typer
from rich.console import Console

import evo

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Neuroevolution with networks that grow and shrink.")
console = Console()
err_console = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """Report a user error in one line and exit with code 2."""
    err_console.print(f"[bold red]error:[/] {message}", highlight=False, soft_wrap=True)
    raise typer.Exit(2)


def _version(value: bool) -> None:
    if value:
        console.print(f"evo {evo.__version__}")
        raise typer.Exit()


@app.callback()
def main(
    version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit."),
) -> None:
    """evo: neuroevolution and architecture search for PyTorch."""


def run() -> None:  # pragma: no cover - console-script entry point
    sys.exit(app())
