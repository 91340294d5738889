"""`hashhub demo`: a hub and an agent on SQLite with demo data."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo() -> None:
    """Start a demo hub and agent on SQLite with a demo list built from benign photos."""
    typer.echo("hub not built yet")
