"""The `hashhub` command: `hash`, `hub ...`, `agent ...`, `demo`.

Each command group lives in its own module and registers itself on the app here. User mistakes exit
with status 2 and a one-line message; failures outside the user's control exit with status 3.
"""

from __future__ import annotations

import typer

app = typer.Typer(
    name="hashhub",
    help="Open hash-sharing hub and member-side matcher.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


def _register() -> None:
    # Imported here so each group's module stays independent and import order is explicit.
    from hashhub.cli import agent, demo, hash, hub

    for module in (hash, hub, agent, demo):
        module.register(app)


def main() -> None:
    _register()
    app()
