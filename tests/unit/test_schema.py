"""The one schema (`store/schema.py`): versions, migrations of old roots, one owner per table."""

from __future__ import annotations

import importlib
import re
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

import strata
from strata.errors import StoreError
from strata.store import schema
from strata.store.root import StateRoot

FIXTURE = Path(__file__).parent.parent / "fixtures" / "old-root-v0"
SRC = Path(strata.__file__).parent.parent

# Files allowed to write SQL naming a table they do not own, each with its reason. Keep
# it short; the test fails when an entry is no longer needed.
NOT_OWNER_BUT_ALLOWED: dict[tuple[str, str], str] = {}


def open_root(path: Path) -> Iterator[StateRoot]:
    root = StateRoot.open(path)
    try:
        yield root
    finally:
        root.close()


def old_root(path: Path, sql: str | None = None) -> Path:
    """A state root whose metadata.db holds `sql` (default: the v0 fixture's dump)."""
    path.mkdir(parents=True)
    db = sqlite3.connect(path / "metadata.db")
    db.executescript(sql if sql is not None else (FIXTURE / "metadata.sql").read_text())
    db.close()
    return path


def tables_of(db: sqlite3.Connection) -> set[str]:
    rows = db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
    return {str(r[0]) for r in rows} - {"sqlite_sequence"}


def schema_text(db: sqlite3.Connection) -> dict[str, str]:
    """name -> DDL (whitespace normalised) of every table and index."""
    rows = db.execute("SELECT name, sql FROM sqlite_master WHERE sql IS NOT NULL")
    return {str(n): " ".join(str(s).split()) for n, s in rows}


def columns_of(db: sqlite3.Connection, table: str) -> list[str]:
    return [str(r[1]) for r in db.execute(f"PRAGMA table_info({table})")]


# -- versions ---------------------------------------------------------------------------------


def test_a_new_root_has_every_table_at_the_current_version(tmp_path: Path) -> None:
    for root in open_root(tmp_path / "root"):
        db = root.connect()
        assert tables_of(db) == {t.name for t in schema.TABLES}
        assert schema.schema_version(db) == schema.SCHEMA_VERSION
        applied = db.execute("SELECT version, strata FROM schema_migrations").fetchall()
        assert applied == [(m.version, schema.strata_version()) for m in schema.MIGRATIONS]


def test_the_old_release_root_is_migrated_keeping_every_row(tmp_path: Path) -> None:
    path = old_root(tmp_path / "root")
    before = sqlite3.connect(path / "metadata.db")
    counts = {
        t: before.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables_of(before)
    }
    assert schema.schema_version(before) == 0
    before.close()
    for root in open_root(path):
        db = root.connect()
        assert schema.schema_version(db) == schema.SCHEMA_VERSION
        assert tables_of(db) == {t.name for t in schema.TABLES}
        for table, count in counts.items():
            assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == count, table
        assert counts["images"] == 1 and counts["solver_cache"] == 2


def test_a_migrated_root_and_a_new_one_have_the_same_schema(tmp_path: Path) -> None:
    for new in open_root(tmp_path / "new"):
        for migrated in open_root(old_root(tmp_path / "old")):
            assert schema_text(migrated.connect()) == schema_text(new.connect())


def test_a_root_with_only_some_tables_gains_the_rest(tmp_path: Path) -> None:
    # What the old release left after `strata load` alone: the image and content tables.
    ddl = "CREATE TABLE images (manifest TEXT PRIMARY KEY, config TEXT NOT NULL, created TEXT,"
    ddl += " size INTEGER NOT NULL, added REAL NOT NULL);"
    ddl += "INSERT INTO images VALUES ('sha256:m', 'sha256:c', NULL, 1, 0);"
    for root in open_root(old_root(tmp_path / "root", ddl)):
        db = root.connect()
        assert tables_of(db) == {t.name for t in schema.TABLES}
        assert db.execute("SELECT manifest FROM images").fetchall() == [("sha256:m",)]


def test_a_snapshots_table_from_before_owners_gains_the_owner_column(tmp_path: Path) -> None:
    ddl = """
    CREATE TABLE snapshots (
        id INTEGER PRIMARY KEY AUTOINCREMENT, snapshotter TEXT NOT NULL, key TEXT NOT NULL,
        parent_id INTEGER REFERENCES snapshots(id), kind TEXT NOT NULL, created REAL NOT NULL,
        size INTEGER NOT NULL DEFAULT 0, UNIQUE (snapshotter, key));
    INSERT INTO snapshots (snapshotter, key, kind, created) VALUES ('overlay', 'k', 'committed', 1);
    """
    for root in open_root(old_root(tmp_path / "root", ddl)):
        db = root.connect()
        assert columns_of(db, "snapshots")[-1] == "owner"
        assert db.execute("SELECT key, owner FROM snapshots").fetchall() == [("k", None)]


def test_a_root_from_a_newer_strata_is_refused_with_one_line(tmp_path: Path) -> None:
    for root in open_root(tmp_path / "root"):
        with root.transaction() as db:
            db.execute("INSERT INTO schema_migrations VALUES (?, '9.9.9', 0)", (99,))
            db.execute("PRAGMA user_version = 99")
    with pytest.raises(StoreError) as caught:
        StateRoot.open(tmp_path / "root")
    message = caught.value.message
    assert "\n" not in message
    assert "schema version 99" in message and "strata 9.9.9 or newer" in message
    assert str(tmp_path / "root") in message


def test_a_failed_migration_leaves_the_root_as_it_was(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def half_then_fail(db: sqlite3.Connection) -> None:
        db.execute("CREATE TABLE half_done (x)")
        raise RuntimeError("killed halfway")

    path = old_root(tmp_path / "root")
    monkeypatch.setattr(schema, "MIGRATIONS", (schema.Migration(1, "fails", half_then_fail),))
    with pytest.raises(RuntimeError):
        StateRoot.open(path)
    db = sqlite3.connect(path / "metadata.db")
    assert schema.schema_version(db) == 0
    assert "half_done" not in tables_of(db) and "schema_migrations" not in tables_of(db)


def test_migrations_are_numbered_one_by_one_up_to_the_version() -> None:
    assert [m.version for m in schema.MIGRATIONS] == list(range(1, schema.SCHEMA_VERSION + 1))


# -- one owner per table -------------------------------------------------------------------


def test_every_table_is_drawn_and_its_owner_exists() -> None:
    doc = schema.__doc__ or ""
    for table in schema.TABLES:
        assert re.search(rf"── {table.name}\s+{table.owner}(?:\(\))?\s+{table.module[7:]}", doc), (
            table
        )
        module = importlib.import_module(table.module.removesuffix(".py").replace("/", "."))
        assert hasattr(module, table.owner), table


def sql_naming(table: str) -> re.Pattern[str]:
    """A SQL statement (upper-case keywords, as the code writes them) naming `table`."""
    keywords = r"FROM|JOIN|INTO|UPDATE|TABLE(?: IF NOT EXISTS)?|ON|table_info\("
    return re.compile(rf"\b(?:{keywords})\s*{table}\b")


def test_no_module_writes_sql_against_a_table_it_does_not_own() -> None:
    files = sorted(SRC.glob("strata/**/*.py"))
    assert len(files) > 50
    offenders: list[str] = []
    used: set[tuple[str, str]] = set()
    for path in files:
        rel = path.relative_to(SRC).as_posix()
        text = path.read_text()
        for table in schema.TABLES:
            if not sql_naming(table.name).search(text):
                continue
            if rel in (table.module, "strata/store/schema.py"):
                continue
            if (table.name, rel) in NOT_OWNER_BUT_ALLOWED:
                used.add((table.name, rel))
                continue
            offenders.append(f"{rel} names {table.name} (owner: {table.owner}, {table.module})")
    assert offenders == []
    assert used == set(NOT_OWNER_BUT_ALLOWED), "an allowed exception is no longer needed"


def test_the_ownership_scan_finds_sql_on_a_table() -> None:
    # The scan is only as good as its pattern: it must see the forms the code uses.
    assert sql_naming("solver_layers").search('"SELECT digest FROM solver_layers WHERE"')
    assert sql_naming("snapshots").search("PRAGMA table_info(snapshots)")
    assert sql_naming("images").search("LEFT JOIN images i")
    assert not sql_naming("images").search("the images of a root")


def test_processes_opening_an_old_root_at_once_migrate_it_once(tmp_path: Path) -> None:
    path = old_root(tmp_path / "root")
    script = (
        "import sys\nfrom strata.store.root import StateRoot\nStateRoot.open(sys.argv[1]).close()\n"
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", script, str(path)], stderr=subprocess.PIPE)
        for _ in range(4)
    ]
    errors = [p.communicate()[1].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0, 0, 0], errors
    db = sqlite3.connect(path / "metadata.db")
    assert schema.schema_version(db) == schema.SCHEMA_VERSION
    assert db.execute("SELECT version FROM schema_migrations").fetchall() == [
        (m.version,) for m in schema.MIGRATIONS
    ]
    assert db.execute("SELECT COUNT(*) FROM images").fetchone() == (1,)
