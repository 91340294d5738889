"""`hashhub agent ...`: follow hubs, serve the scan API, scan folders, work the review queue.

Every command opens the store named by `--db` / `HASHHUB_DB` (schema brought up to date first).
User mistakes (bad path, bad policy file, bad URL) exit 2 with one line; a hub that cannot be
synced exits 3 after the other hubs were synced.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Annotated, Any

import typer

from hashhub.agent.db import DEFAULT_DB, StoreError, StoreUnavailable
from hashhub.agent.policy import DEFAULT_POLICY_TOML, PolicyError

agent_app = typer.Typer(
    help="The member agent: sync from hubs, scan uploads and backlogs.", no_args_is_help=True
)
review_app = typer.Typer(help="The review queue: matches a person must look at.", no_args_is_help=True)
reports_app = typer.Typer(
    help="Report drafts for confirmed matches (never sent automatically).", no_args_is_help=True
)
policy_app = typer.Typer(help="The policy that maps matches to actions.", no_args_is_help=True)
agent_app.add_typer(review_app, name="review")
agent_app.add_typer(reports_app, name="reports")
agent_app.add_typer(policy_app, name="policy")

DbOption = Annotated[
    str, typer.Option("--db", envvar="HASHHUB_DB", help="Agent database URL or SQLite path.")
]
PolicyOption = Annotated[
    Path | None,
    typer.Option(
        "--policy", envvar="HASHHUB_POLICY", help="Policy TOML file (default: the built-in policy)."
    ),
]
HubOption = Annotated[
    list[str] | None, typer.Option("--hub", help="Hub URL to follow (repeat for several hubs).")
]
KeyOption = Annotated[
    list[str] | None,
    typer.Option("--key", help="Member API key for the --hub at the same position (or HASHHUB_KEY)."),
]


def register(app: typer.Typer) -> None:
    app.add_typer(agent_app, name="agent")


def _echo_json(value: Any) -> None:
    typer.echo(json.dumps(value, ensure_ascii=False, default=str))


def _fail(message: str, code: int = 2) -> None:
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def _runtime(db: str, policy: Path | None = None, **settings: Any) -> Iterator[Any]:
    """An AgentRuntime for one command; user mistakes become one-line errors (exit 2)."""
    from hashhub.agent.runtime import AgentRuntime
    from hashhub.agent.settings import make_settings

    try:
        runtime = AgentRuntime(make_settings(db=db, policy=policy, **settings))
    except StoreUnavailable as exc:
        _fail(str(exc), code=3)
    except (StoreError, PolicyError) as exc:
        _fail(str(exc))
    try:
        yield runtime
    finally:
        runtime.close()


def _follow(runtime: Any, hubs: list[str] | None, keys: list[str] | None) -> None:
    import os

    hubs, keys = hubs or [], keys or []
    if len(keys) > len(hubs):
        _fail("More --key than --hub options: give one key per hub, in the same order.")
    env_key = os.environ.get("HASHHUB_KEY")
    for position, url in enumerate(hubs):
        key = keys[position] if position < len(keys) else env_key
        if not key:
            try:
                key = runtime.store.hub(url).api_key  # already followed: keep its key
            except (LookupError, ValueError):
                _fail(f"No key for {url}: pass --key KEY (one per --hub) or set HASHHUB_KEY.")
        try:
            runtime.store.follow(url, key)
        except ValueError as exc:
            _fail(str(exc))


@agent_app.command("sync")
def sync(hub: HubOption = None, key: KeyOption = None, db: DbOption = DEFAULT_DB) -> None:
    """Follow hubs (given with --hub/--key, or all already followed) and sync them once.

    Prints one JSON line per hub; exits 3 when any hub could not be synced (its error is kept).
    """
    with _runtime(db) as runtime:
        _follow(runtime, hub, key)
        if not runtime.store.hubs():
            _fail("The agent follows no hub yet: pass --hub URL --key KEY.")
        results = runtime.sync_once()
        for result in results:
            _echo_json(result.as_dict())
        if not all(r.ok for r in results):
            raise typer.Exit(3)


@agent_app.command("serve")
def serve(
    hub: HubOption = None,
    key: KeyOption = None,
    db: DbOption = DEFAULT_DB,
    policy: PolicyOption = None,
    host: Annotated[str, typer.Option(help="Address to listen on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="Port to listen on.")] = 8100,
    api_key: Annotated[
        str | None,
        typer.Option(
            "--api-key", envvar="HASHHUB_AGENT_KEY", help="Key clients must send (default: a new one)."
        ),
    ] = None,
    sync_interval: Annotated[
        float, typer.Option(envvar="HASHHUB_SYNC_INTERVAL", help="Seconds between syncs (0: never).")
    ] = 60.0,
    state_dir: Annotated[
        Path | None,
        typer.Option(
            envvar="HASHHUB_STATE_DIR",
            help="Folder for the matcher's saved files (default: beside a SQLite store; none on PostgreSQL).",
        ),
    ] = None,
) -> None:
    """Serve `POST /api/v1/scan` and the review API, syncing every followed hub in the background."""
    import uvicorn

    from hashhub.agent.app import create_app
    from hashhub.web import agent_views

    with _runtime(db, policy, agent_key=api_key, sync_interval=sync_interval, state_dir=state_dir) as runtime:
        _follow(runtime, hub, key)
        app = create_app(runtime)
        agent_views.mount(app)  # the browser UI (status, review queue, reports, policy) on the same server
        typer.echo(f"agent: http://{host}:{port}  (OpenAPI: http://{host}:{port}/docs)", err=True)
        typer.echo(f"agent key: {runtime.settings.agent_key}", err=True)
        uvicorn.run(app, host=host, port=port, log_level="warning")


@agent_app.command("scan")
def scan(
    paths: Annotated[list[Path], typer.Argument(help="Files and folders to scan.")],
    db: DbOption = DEFAULT_DB,
    policy: PolicyOption = None,
    output_format: Annotated[str, typer.Option("--format", help="Output format (jsonl).")] = "jsonl",
    workers: Annotated[
        int | None, typer.Option(help="Hashing processes (default: every core).", min=1)
    ] = None,
    dask: Annotated[
        str | None, typer.Option("--dask", help="Dask scheduler address: hash on that cluster instead.")
    ] = None,
    progress: Annotated[
        bool | None, typer.Option(help="Progress bar on stderr (default: when a terminal).")
    ] = None,
) -> None:
    """Scan files and folders against the local copy; one JSON line per file on stdout.

    Exits 0 when every file was scanned, whatever matched.
    """
    from hashhub.agent.backlog import scan_dask, scan_local

    if output_format != "jsonl":
        _fail(f"--format must be jsonl, got {output_format!r}.")
    missing = [str(p) for p in paths if not p.exists()]
    if missing:
        _fail(f"No such file or folder: {', '.join(missing)}")
    with _runtime(db, policy) as runtime:
        runtime.load()
        scanner = runtime.scanner
        results = scan_dask(scanner, paths, dask) if dask else scan_local(scanner, paths, workers=workers)
        show = sys.stderr.isatty() if progress is None else progress
        counts = {"files": 0, "matched": 0, "errors": 0}
        with _progress(show) as tick:
            for result in results:
                counts["files"] += 1
                counts["matched"] += result.matched
                counts["errors"] += bool(result.error)
                line = result.as_dict()
                line.pop("quality", None)
                _echo_json(line)
                tick()
        typer.echo(
            f"scanned {counts['files']} files: {counts['matched']} matched, {counts['errors']} not decodable",
            err=True,
        )


@contextmanager
def _progress(show: bool) -> Iterator[Any]:
    if not show:
        yield lambda: None
        return
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TimeElapsedColumn

    columns = (SpinnerColumn(), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=Console(stderr=True), transient=True) as bar:
        task = bar.add_task("scanning", total=None)
        yield lambda: bar.advance(task)


@agent_app.command("status")
def status(db: DbOption = DEFAULT_DB) -> None:
    """The hubs followed, their cursors and last errors, and how many items are held."""
    with _runtime(db) as runtime:
        _echo_json({"items": runtime.store.count_items(), "hubs": [h.public() for h in runtime.store.hubs()]})


@review_app.command("list")
def review_list(
    db: DbOption = DEFAULT_DB,
    state: Annotated[str, typer.Option("--status", help="pending, confirmed, rejected or all.")] = "pending",
) -> None:
    """One JSON line per review entry."""
    from hashhub.agent import review

    with _runtime(db) as runtime:
        try:
            entries = review.list_reviews(runtime.store, None if state == "all" else state, limit=10_000)
        except review.ReviewError as exc:
            _fail(str(exc))
        for entry in entries:
            _echo_json(entry)


@review_app.command("confirm")
def review_confirm(
    review_id: int,
    db: DbOption = DEFAULT_DB,
    reviewer: Annotated[str | None, typer.Option(help="Who reviewed it.")] = None,
    viewed: Annotated[bool, typer.Option(help="Whether the reviewer viewed the file.")] = True,
) -> None:
    """The match is real: confirm it and create a report draft."""
    from hashhub.agent import review

    with _runtime(db) as runtime:
        try:
            _echo_json(review.confirm(runtime.store, review_id, reviewer=reviewer, viewed=viewed))
        except review.ReviewError as exc:
            _fail(str(exc))


@review_app.command("reject")
def review_reject(
    review_id: int,
    reason: Annotated[
        str,
        typer.Option(help="Why the match is wrong, a short code: not_csam, wrong_grade, wrong_match, other."),
    ],
    note: Annotated[str, typer.Option(help="Free text sent with the feedback.")] = "",
    db: DbOption = DEFAULT_DB,
    reviewer: Annotated[str | None, typer.Option(help="Who reviewed it.")] = None,
) -> None:
    """The match is wrong: reject it; negative feedback goes to the hub on the next sync."""
    from hashhub.agent import review

    with _runtime(db) as runtime:
        try:
            _echo_json(review.reject(runtime.store, review_id, reason, note=note, reviewer=reviewer))
        except review.ReviewError as exc:
            _fail(str(exc))


@reports_app.command("list")
def reports_list(db: DbOption = DEFAULT_DB) -> None:
    """One JSON line per report draft."""
    from hashhub.agent import reports

    with _runtime(db) as runtime:
        for report in reports.list_reports(runtime.store):
            _echo_json(report)


@reports_app.command("export")
def reports_export(
    db: DbOption = DEFAULT_DB,
    out: Annotated[Path | None, typer.Option(help="Write the JSON array here instead of stdout.")] = None,
    unexported: Annotated[bool, typer.Option(help="Only drafts not exported before.")] = False,
) -> None:
    """Export report drafts as a JSON array (nothing is sent anywhere)."""
    from hashhub.agent import reports

    with _runtime(db) as runtime:
        drafts = reports.export(runtime.store, unexported_only=unexported)
    text = json.dumps(drafts, indent=2, ensure_ascii=False, default=str)
    if out is None:
        typer.echo(text)
    else:
        out.write_text(text + "\n", encoding="utf-8")
        typer.echo(f"wrote {len(drafts)} report drafts to {out}", err=True)


@policy_app.command("show")
def policy_show(policy: PolicyOption = None) -> None:
    """Print the policy in effect (the built-in default when no file is given) after checking it."""
    from hashhub.agent.policy import Policy

    try:
        loaded = Policy.load(policy)
    except PolicyError as exc:
        _fail(str(exc))
    typer.echo(policy.read_text(encoding="utf-8") if policy else DEFAULT_POLICY_TOML, nl=False)
    typer.echo(f"# {len(loaded.rules)} rules, default action {loaded.default_action}", err=True)
