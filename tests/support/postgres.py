"""A real, throwaway PostgreSQL server for the tests.

The server runs from the distribution's binaries on a temporary data directory, listening on
127.0.0.1 only, with its socket in that directory. PostgreSQL refuses to run as root, so when the tests
run as root the server runs as the `postgres` system user (created by Debian's package). Set
HASHHUB_TEST_POSTGRES_URL to use an existing server instead (each test still gets its own database).
"""

from __future__ import annotations

import contextlib
import glob
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def _binaries() -> Path | None:
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/pg_ctl"), key=lambda p: int(p.split("/")[4]))
    return Path(candidates[-1]).parent if candidates else None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def unavailable_reason() -> str | None:
    """Why no server can be started here, or None when one can."""
    if os.environ.get("HASHHUB_TEST_POSTGRES_URL"):
        return None
    if _binaries() is None:
        return "PostgreSQL binaries (pg_ctl, initdb) are not installed; .ci/run installs Debian's postgresql"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no 'postgres' user to run the server as"
    return None


@dataclass
class PostgresServer:
    host: str
    port: int
    user: str
    password: str | None = None

    def url(self, database: str = "postgres") -> str:
        auth = self.user if self.password is None else f"{self.user}:{self.password}"
        return f"postgresql+psycopg://{auth}@{self.host}:{self.port}/{database}"

    def _admin(self):
        import psycopg

        return psycopg.connect(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            dbname="postgres",
            autocommit=True,
        )

    def create_database(self) -> str:
        name = f"hashhub_test_{uuid.uuid4().hex[:12]}"
        with self._admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        return name

    def drop_database(self, name: str) -> None:
        with self._admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _external() -> PostgresServer:
    from sqlalchemy.engine import make_url

    url = make_url(os.environ["HASHHUB_TEST_POSTGRES_URL"])
    return PostgresServer(url.host or "127.0.0.1", url.port or 5432, url.username or "postgres", url.password)


@contextlib.contextmanager
def running_server() -> Iterator[PostgresServer]:
    """Start a server on a temporary data directory (or use HASHHUB_TEST_POSTGRES_URL) and stop it after."""
    if os.environ.get("HASHHUB_TEST_POSTGRES_URL"):
        yield _external()
        return
    bindir = _binaries()
    assert bindir is not None, unavailable_reason()
    as_root = os.geteuid() == 0
    run_as = pwd.getpwnam("postgres") if as_root else None
    data = Path(tempfile.mkdtemp(prefix="hashhub-pg-"))
    if run_as is not None:
        os.chown(data, run_as.pw_uid, run_as.pw_gid)
    user_kwargs = {"user": run_as.pw_uid, "group": run_as.pw_gid, "extra_groups": []} if run_as else {}
    port = _free_port()
    db_dir, log = data / "data", data / "server.log"

    def run(*args: str) -> None:
        subprocess.run(
            args, check=True, capture_output=True, cwd=data, env={**os.environ, "LC_ALL": "C"}, **user_kwargs
        )

    try:
        run(
            str(bindir / "initdb"),
            "-D",
            str(db_dir),
            "-U",
            "postgres",
            "-A",
            "trust",
            "--no-sync",
            "-E",
            "UTF8",
        )
        options = (
            f"-p {port} -k {data} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=200"
        )
        run(
            str(bindir / "pg_ctl"),
            "-D",
            str(db_dir),
            "-o",
            options,
            "-l",
            str(log),
            "-w",
            "-t",
            "60",
            "start",
        )
        try:
            yield PostgresServer("127.0.0.1", port, "postgres")
        finally:
            subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(db_dir), "-m", "immediate", "-w", "stop"],
                capture_output=True,
                cwd=data,
                **user_kwargs,
            )
    except subprocess.CalledProcessError as failure:
        detail = (failure.stderr or b"").decode(errors="replace")
        if log.exists():
            detail += log.read_text(errors="replace")
        raise RuntimeError(f"could not start PostgreSQL: {detail[-2000:]}") from failure
    finally:
        shutil.rmtree(data, ignore_errors=True)
