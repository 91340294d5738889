"""`hashhub hash PATH...`: fingerprint files and folders."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    app.command("hash")(hash_command)


def hash_command(paths: list[str]) -> None:
    """Fingerprint files and folders."""
    typer.echo("not built yet")
