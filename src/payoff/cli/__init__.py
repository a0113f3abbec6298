"""The `payoff` command line (Typer + Rich). Imports everything; nothing imports it."""

from payoff.cli.app import app, main

__all__ = ["app", "main"]
