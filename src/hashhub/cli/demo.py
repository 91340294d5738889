"""`hashhub demo`: a hub and an agent on SQLite with demo organisations and a demo list."""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Annotated

import typer


def register(app: typer.Typer) -> None:
    app.command("demo")(demo)


def demo(
    workdir: Annotated[
        Path | None,
        typer.Option("--dir", help="Folder for the demo's databases and logs (default: a new temp folder)."),
    ] = None,
    hub_port: Annotated[int, typer.Option(help="Hub port (another free one if taken).")] = 8000,
    agent_port: Annotated[int, typer.Option(help="Agent port (another free one if taken).")] = 8100,
    check: Annotated[
        bool, typer.Option("--check", help="Run the printed scan once, print the answer and stop.")
    ] = False,
) -> None:
    """Start a demo hub and agent on SQLite with a demo list built from benign photos (Ctrl-C stops)."""
    from hashhub.demo import DemoError, run_demo

    folder = workdir or Path(tempfile.mkdtemp(prefix="hashhub-demo-"))
    try:
        answer = run_demo(folder, hub_port=hub_port, agent_port=agent_port, check=check, out=typer.echo)
    except DemoError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(3) from None
    if check and not (answer and answer.get("matched")):
        typer.echo("error: the demo scan did not match its own list", err=True)
        raise typer.Exit(1)
