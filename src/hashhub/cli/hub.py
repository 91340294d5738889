"""`hashhub hub ...` commands."""

from __future__ import annotations

import typer

hub_app = typer.Typer(help="The hub.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(hub_app, name="hub")


@hub_app.command("serve")
def serve() -> None:
    """Run the hub server."""
    typer.echo("hub not built yet")
