"""`hashhub hub ...`: run a hub and administer it on its database directly.

Every command opens the database given by `--db` or `HASHHUB_DB` and upgrades its schema first.
User mistakes (unknown organisation, bad name, missing list) exit 2 with a one-line message; a
database that cannot be reached exits 3.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer
from sqlalchemy.exc import OperationalError

from hashhub.hub import audit, orgs
from hashhub.hub.errors import HubError
from hashhub.hub.settings import HubSettings

if TYPE_CHECKING:
    from fastapi import FastAPI

    from hashhub.hub.core import Hub

hub_app = typer.Typer(help="Run and administer a hub.", no_args_is_help=True)
org_app = typer.Typer(help="Organisations.", no_args_is_help=True)
key_app = typer.Typer(help="API keys.", no_args_is_help=True)
list_app = typer.Typer(help="Lists (sharing groups) and who may read or write them.", no_args_is_help=True)
scheme_app = typer.Typer(help="Grading schemes.", no_args_is_help=True)
audit_app = typer.Typer(help="The audit log.", no_args_is_help=True)
for _sub, _name in (
    (org_app, "org"),
    (key_app, "key"),
    (list_app, "list"),
    (scheme_app, "scheme"),
    (audit_app, "audit"),
):
    hub_app.add_typer(_sub, name=_name)

DEFAULT_DB = "sqlite:///hashhub.db"
FORMAT_HELP = "csv, ndjson, ncmec-xml or stopncii-json (auto: from the file name)"
Db = Annotated[str, typer.Option("--db", envvar="HASHHUB_DB", help="SQLAlchemy URL or SQLite file")]
F = TypeVar("F", bound=Callable[..., Any])


def register(app: typer.Typer) -> None:
    app.add_typer(hub_app, name="hub")


def _print(data: object) -> None:
    typer.echo(json.dumps(data, indent=2))


def cli_errors(func: F) -> F:
    """Turn domain errors into exit 2 and database failures into exit 3, with one clear line."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except HubError as exc:
            typer.echo(f"error: {exc.message}", err=True)
            for row in exc.extra.get("rejected", [])[:20]:
                typer.echo(f"  row {row['index']}: {row['error']}", err=True)
            raise typer.Exit(2) from None
        except OperationalError as exc:
            typer.echo(f"error: cannot use the database: {exc.orig}", err=True)
            raise typer.Exit(3) from None

    return wrapper  # type: ignore[return-value]


def _hub(db: str) -> Hub:  # Hub is imported late so `hashhub --help` stays fast
    from hashhub.hub.core import Hub

    return Hub(HubSettings(db=db))


@hub_app.command("serve")
@cli_errors
def serve(
    db: Db = DEFAULT_DB,
    host: Annotated[str, typer.Option(help="interface to listen on")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port")] = 8000,
    workers: Annotated[
        int, typer.Option(min=1, max=64, help="server processes; each follows the database on its own")
    ] = 1,
    backlog: Annotated[int, typer.Option(min=1, help="connections the OS queues before accept")] = 2048,
    keep_alive: Annotated[
        int, typer.Option(min=1, help="seconds an idle keep-alive connection stays open")
    ] = 30,
    log_level: Annotated[str, typer.Option(help="uvicorn's own log level")] = "info",
) -> None:
    """Run the hub's HTTP API (migrations are applied on start; OpenAPI at /openapi.json).

    One process builds the app from the HASHHUB_* environment (the database is passed down that
    way) and loads the match pool; with `--workers N` it then forks N workers that share its
    memory (see hub/prefork.py) and restarts any that dies. uvicorn's access log is off: the hub
    writes one JSON line per request."""
    import uvicorn

    from hashhub.hub import prefork
    from hashhub.hub.app import preload, reopen

    os.environ["HASHHUB_DB"] = db
    app = serve_app()  # opening the hub migrates the schema, once, before any worker exists
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        loop="auto",  # uvloop and httptools when installed (uvicorn[standard] brings them)
        http="auto",
        backlog=backlog,
        timeout_keep_alive=keep_alive,
        access_log=False,
        log_level=log_level,
    )
    preload(app, fork=workers > 1)
    if workers == 1:
        prefork.settle()
        uvicorn.Server(config).run()
        return
    code = prefork.Prefork(config, workers, after_fork=lambda: reopen(app)).run()
    app.state.hub.close()
    if code:
        raise typer.Exit(code)


def serve_app() -> FastAPI:
    """The app `hashhub hub serve` runs in each worker: the hub API and the browser UI."""
    from hashhub.hub.app import create_app
    from hashhub.web import hub_views

    app = create_app(HubSettings())
    hub_views.mount(app)  # the browser UI on the same server (web builds on hub, never the reverse)
    return app


@org_app.command("create")
@cli_errors
def org_create(
    name: str,
    role: Annotated[list[str], typer.Option("--role", help="admin, contributor or member (repeatable)")],
    kind: Annotated[str, typer.Option(help="free text, e.g. hotline, platform")] = "",
    db: Db = DEFAULT_DB,
) -> None:
    """Create an organisation; prints JSON with its first API key (shown only this once)."""
    _print(orgs.create_org(_hub(db).engine, name, role, kind))


@org_app.command("list")
@cli_errors
def org_list(db: Db = DEFAULT_DB) -> None:
    """Organisations and their roles."""
    _print(orgs.list_orgs(_hub(db).engine))


@key_app.command("create")
@cli_errors
def key_create(
    org: str,
    scope: Annotated[list[str] | None, typer.Option("--scope", help="limit the key to these roles")] = None,
    label: Annotated[str, typer.Option(help="a note to recognise the key by")] = "",
    db: Db = DEFAULT_DB,
) -> None:
    """Issue another key for an organisation (shown only this once)."""
    _print(orgs.create_key(_hub(db).engine, org, scope, label))


@key_app.command("revoke")
@cli_errors
def key_revoke(
    key: Annotated[str, typer.Argument(help="the key id, or the whole key")], db: Db = DEFAULT_DB
) -> None:
    """Revoke a key (running servers stop accepting it within seconds)."""
    _print(orgs.revoke_key(_hub(db).engine, key))


@key_app.command("rotate")
@cli_errors
def key_rotate(
    key: Annotated[str, typer.Argument(help="the key id, or the whole key, to replace")],
    grace: Annotated[float, typer.Option(min=0, help="seconds the old key keeps working")] = 0.0,
    db: Db = DEFAULT_DB,
) -> None:
    """Issue a replacement key (same organisation and scopes, shown once); the old one is revoked
    after the grace period."""
    _print(orgs.rotate_key(_hub(db).engine, key, grace))


@hub_app.command("backup")
@cli_errors
def backup(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="where to write the copy")],
    db: Db = DEFAULT_DB,
) -> None:
    """Copy a SQLite hub database consistently while it is in use (PostgreSQL: use pg_dump)."""
    from hashhub.ops.backup import BackupError, backup_sqlite

    try:
        _print(backup_sqlite(db, file))
    except BackupError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from None


@list_app.command("create")
@cli_errors
def list_create(
    name: str,
    read: Annotated[list[str] | None, typer.Option("--read", help="organisation that may read")] = None,
    write: Annotated[list[str] | None, typer.Option("--write", help="organisation that may write")] = None,
    description: str = "",
    db: Db = DEFAULT_DB,
) -> None:
    """Create a list with read and write grants."""
    _print(orgs.create_list(_hub(db).engine, name, read or [], write or [], description))


@list_app.command("grant")
@cli_errors
def list_grant(
    name: str,
    org: str,
    read: Annotated[bool, typer.Option("--read", help="may read the list")] = False,
    write: Annotated[bool, typer.Option("--write", help="may write to the list")] = False,
    db: Db = DEFAULT_DB,
) -> None:
    """Set an organisation's access to a list (no flags: remove its access)."""
    _print(orgs.grant(_hub(db).engine, name, org, read, write))


@list_app.command("show")
@cli_errors
def list_show(db: Db = DEFAULT_DB) -> None:
    """Every list and its grants."""
    _print(orgs.all_lists(_hub(db).engine))


@scheme_app.command("add")
@cli_errors
def scheme_add(
    name: str,
    value: Annotated[list[str], typer.Option("--value", help="a grade of this scheme (repeatable)")],
    description: str = "",
    db: Db = DEFAULT_DB,
) -> None:
    """Add a grading scheme."""
    _print(orgs.add_scheme(_hub(db).engine, name, {"description": description, "values": value}))


@scheme_app.command("list")
@cli_errors
def scheme_list(db: Db = DEFAULT_DB) -> None:
    """Grading schemes and their values."""
    _print(orgs.list_schemes(_hub(db).engine))


@hub_app.command("import")
@cli_errors
def import_(
    file: Annotated[
        Path,
        typer.Argument(
            exists=True, dir_okay=False, help="CSV, NDJSON, NCMEC XML or StopNCII JSON, optionally .gz"
        ),
    ],
    org: Annotated[str, typer.Option("--org", help="the contributing organisation")],
    list_name: Annotated[
        str | None, typer.Option("--list", help="target list (default: its only one)")
    ] = None,
    batch_size: Annotated[int, typer.Option(min=1, max=10_000)] = 10_000,
    strict: Annotated[bool, typer.Option(help="stop at the first batch with an invalid row")] = False,
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "auto",
    classification: Annotated[
        str | None,
        typer.Option(help="scheme:value for records that carry none (StopNCII JSON, NCMEC XML)"),
    ] = None,
    save_pool: Annotated[
        bool,
        typer.Option(help="then save the match pool's files, so the next `serve` starts in seconds"),
    ] = False,
    db: Db = DEFAULT_DB,
) -> None:
    """Bulk-load items in batches with a progress bar; invalid rows are listed, valid ones written."""
    from rich.progress import BarColumn, DownloadColumn, Progress, TimeRemainingColumn, TransferSpeedColumn

    from hashhub.interchange import import_file

    hub = _hub(db)
    columns = (BarColumn(), DownloadColumn(), TransferSpeedColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True, disable=not sys.stderr.isatty()) as bar:
        task = bar.add_task("import", total=file.stat().st_size)
        report = import_file(
            hub,
            file,
            org,
            list_name,
            batch_size=batch_size,
            strict=strict,
            progress=lambda done: bar.update(task, completed=done),
            fmt=fmt,
            classification=classification,
        )
    for row in report.rejected:
        typer.echo(f"rejected row {row['row']}: {row['error']}", err=True)
    summary: dict[str, object] = {
        "rows": report.rows,
        "created": report.created,
        "updated": report.updated,
        "unchanged": report.unchanged,
        "rejected": report.rejected_count,
        "cursor": report.cursor,
    }
    if save_pool:
        from hashhub.hub.poolfile import save_pool as save

        saved = save(hub)
        summary["pool_files"] = None if saved is None else str(saved)
    _print(summary)
    if report.rejected_count:
        raise typer.Exit(1)


@hub_app.command("export")
@cli_errors
def export(
    file: Annotated[Path, typer.Argument(dir_okay=False, help="where to write; '-' for standard output")],
    org: Annotated[str, typer.Option("--org", help="the member organisation whose lists are exported")],
    lists: Annotated[
        list[str] | None, typer.Option("--list", help="only this list (repeatable; default: all it reads)")
    ] = None,
    fmt: Annotated[str, typer.Option("--format", help=FORMAT_HELP)] = "auto",
    db: Db = DEFAULT_DB,
) -> None:
    """Write the live items a member may read to a file (the read is audited like a snapshot)."""
    from hashhub.interchange import detect, export_list

    stdout = str(file) == "-"
    kind = detect(file, "ndjson" if stdout and fmt == "auto" else fmt)
    hub = _hub(db)
    if stdout:
        count = export_list(hub, org, sys.stdout.buffer, kind, lists)
        sys.stdout.buffer.flush()
    else:
        part = file.with_name(file.name + ".part")  # a failed export leaves no half-written file
        try:
            with part.open("wb") as out:
                count = export_list(hub, org, out, kind, lists)
            part.replace(file)
        finally:
            part.unlink(missing_ok=True)
    typer.echo(json.dumps({"format": kind, "written": count}), err=stdout)


@audit_app.command("verify")
@cli_errors
def audit_verify(db: Db = DEFAULT_DB) -> None:
    """Recompute the audit chain; exit 1 and name each broken record if it was tampered with."""
    result = audit.verify(_hub(db).engine)
    for problem in result.problems:
        typer.echo(f"TAMPERED: {problem}", err=True)
    _print({"ok": result.ok, "records": result.records})
    if not result.ok:
        raise typer.Exit(1)
