"""`hashhub agent ...` commands."""

from __future__ import annotations

import typer

agent_app = typer.Typer(help="The agent.", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(agent_app, name="agent")


@agent_app.command("serve")
def serve() -> None:
    """Run the agent server."""
    typer.echo("agent not built yet")
