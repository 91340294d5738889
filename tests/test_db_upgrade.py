"""`db.upgrade` on every start: a database already at head is left alone without Alembic."""

from __future__ import annotations

import subprocess
import sys

import pytest

from hashhub import db

_OPEN_TWICE = """
import sys
from hashhub.hub.core import Hub
from hashhub.hub.settings import HubSettings
Hub(HubSettings(db=sys.argv[1])).close()          # a new file: migrated by Alembic
for name in [m for m in sys.modules if m == "alembic" or m.startswith("alembic.")]:
    del sys.modules[name]
Hub(HubSettings(db=sys.argv[1])).close()          # already at head: no Alembic
print("alembic" in sys.modules)
"""


def test_a_database_at_head_opens_without_alembic(tmp_path) -> None:
    done = subprocess.run(
        [sys.executable, "-c", _OPEN_TWICE, str(tmp_path / "hub.db")], capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("migrations", ["hashhub:migrations", "hashhub.agent:migrations"])
def test_head_read_from_the_scripts_is_alembics_head(migrations) -> None:
    from alembic.script import ScriptDirectory

    engine = db.create_engine("sqlite://")
    assert (
        db._head(migrations)
        == ScriptDirectory.from_config(db.alembic_config(engine, migrations)).get_current_head()
    )


def test_an_older_database_is_still_upgraded(tmp_path) -> None:
    engine = db.create_engine(str(tmp_path / "hub.db"))
    try:
        db.upgrade(engine, "hashhub:migrations", "0003")
        assert not db._at_head(engine, "hashhub:migrations")
        db.upgrade(engine, "hashhub:migrations")
        assert db._at_head(engine, "hashhub:migrations")
    finally:
        engine.dispose()
