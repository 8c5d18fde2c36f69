"""``python -m evo`` runs the CLI."""

from evo.cli import app

app(prog_name="evo")
