"""``python -m evo`` runs the CLI."""

from evo.cli import cli

cli()
