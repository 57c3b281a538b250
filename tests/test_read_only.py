"""Commands that only read never write: not the database, not its journal
mode, not a file beside it. A file that is not an mbharvest database is
refused by every command (exit 2) before anything is written. A database on
read-only media, or made by an older release, is read as it is."""

from __future__ import annotations

import ctypes
import functools
import json
import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
import sqlite_utils
from click.testing import CliRunner

from harvester.cli import cli
from harvester.errors import UsageError
from harvester.normalize import normalize_entity
from harvester.store import MIGRATIONS, open_db, reading, save
from tests.conftest import CONTACT, FIXTURES, load_ws2

pytestmark = pytest.mark.usefixtures("isolated")

OLD_RELEASE_DB = FIXTURES / "db" / "mbharvest-0.1.0.db"
ROOT = Path(__file__).resolve().parents[1]


def folder_state(folder: Path) -> dict[str, bytes]:
    """Every file in the folder, by name, with its bytes."""
    return {path.name: path.read_bytes() for path in sorted(folder.iterdir())}


def truth(path: Path, sql: str):
    """A figure read straight from the file (immutable: SQLite writes nothing)."""
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    try:
        return conn.execute(sql).fetchone()[0]
    finally:
        conn.close()


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def read_commands(db: Path, out: Path) -> list[list[str]]:
    return [["stats"], ["stats", "--json"], ["runs"], ["runs", "--json"], ["report", "--out", str(out / "report")],
            ["export", "csv", "--out", str(out / "csv")], ["export", "parquet", "--out", str(out / "parquet")],
            ["export", "bagit", "--out", str(out / "bag")],
            ["export", "datasette-metadata", "--out", str(out / "metadata.json")]]


def old_release_copy(folder: Path) -> Path:
    folder.mkdir()
    path = folder / "old.db"
    shutil.copy(OLD_RELEASE_DB, path)
    return path


def wal_database(folder: Path) -> Path:
    """A database made by this release (WAL), holding one real release, closed."""
    folder.mkdir()
    path = folder / "wal.db"
    db = open_db(path)
    with db.atomic():
        save(db, normalize_entity("release", load_ws2("musicbrainz-android/release_lookup.json")),
             source="test", fetched_at="2026-01-01T00:00:00Z")
    db.close()
    return path


@pytest.mark.parametrize("make", [old_release_copy, wal_database], ids=["rollback-journal-0.1.0", "wal"])
def test_read_commands_leave_the_database_and_its_folder_byte_for_byte(tmp_path, make):
    path = make(tmp_path / "db")
    journal_byte = path.read_bytes()[18]
    before = folder_state(path.parent)
    for command in read_commands(path, tmp_path / "out"):
        result = invoke(*command, "--db", str(path))
        assert result.exit_code == 0, (command, result.output)
        assert folder_state(path.parent) == before, command  # no -wal, -shm, .lock; the same bytes
    assert path.read_bytes()[18] == journal_byte  # the journal mode was not switched
    figures = json.loads(invoke("stats", "--json", "--db", str(path)).output)
    assert figures["recordings"] == truth(path, "SELECT count(*) FROM recording WHERE gone_at IS NULL")
    assert figures["isrcs_unique"] == truth(path, "SELECT count(DISTINCT isrc) FROM recording_isrc")
    runs = json.loads(invoke("runs", "--json", "--db", str(path)).output)
    assert len(runs) == truth(path, "SELECT count(*) FROM harvest_run")


def _without_write_permission() -> None:
    """In the child, before exec: root loses the capabilities that override
    file permissions (CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH), so a folder
    without write permission is read-only to it, as read-only media is."""
    libc = ctypes.CDLL(None, use_errno=True)
    for capability in (1, 2):
        if libc.prctl(24, capability, 0, 0, 0) != 0:  # PR_CAPBSET_DROP
            raise OSError(ctypes.get_errno(), "prctl(PR_CAPBSET_DROP)")


def run_read_only(*args: str) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if not name.startswith("MBHARVEST_")}
    return subprocess.run([sys.executable, "-m", "harvester", *args], capture_output=True, text=True, timeout=120,
                          env={**env, "PYTHONPATH": str(ROOT)},
                          preexec_fn=_without_write_permission if os.geteuid() == 0 else None)


@pytest.mark.parametrize("make", [old_release_copy, wal_database], ids=["rollback-journal-0.1.0", "wal"])
def test_a_database_in_a_place_that_cannot_be_written_is_read_as_it_is(tmp_path, make):
    path = make(tmp_path / "media")
    expected = truth(path, "SELECT count(*) FROM recording WHERE gone_at IS NULL")
    runs_expected = truth(path, "SELECT count(*) FROM harvest_run")
    before = folder_state(path.parent)
    path.chmod(0o444)
    path.parent.chmod(0o555)
    try:
        stats = run_read_only("stats", "--json", "--db", str(path))
        runs = run_read_only("runs", "--json", "--db", str(path))
        export = run_read_only("export", "csv", "--db", str(path), "--out", str(tmp_path / "csv"))
    finally:
        path.parent.chmod(0o755)
        path.chmod(0o644)
    assert stats.returncode == 0, stats.stderr
    assert json.loads(stats.stdout)["recordings"] == expected
    assert runs.returncode == 0 and len(json.loads(runs.stdout)) == runs_expected, runs.stderr
    assert export.returncode == 0, export.stderr
    assert folder_state(path.parent) == before


def foreign_sqlite(folder: Path, journal: str = "delete") -> Path:
    """Someone else's database: their table, their journal mode."""
    path = folder / f"theirs-{journal}.db"
    conn = sqlite3.connect(path)
    conn.execute(f"PRAGMA journal_mode = {journal}")
    conn.execute("CREATE TABLE people (name TEXT, born INTEGER)")
    conn.execute("INSERT INTO people VALUES ('Ada', 1815)")
    conn.commit()
    conn.close()
    return path


def text_file(folder: Path) -> Path:
    path = folder / "notes.db"
    path.write_bytes(b"my notes, not a database\n" * 200)
    return path


def garbled_sqlite(folder: Path) -> Path:
    path = folder / "garbled.db"
    path.write_bytes(b"SQLite format 3\x00" + b"\xff" * 4000)
    return path


@pytest.mark.parametrize("make", [foreign_sqlite, functools.partial(foreign_sqlite, journal="wal"), text_file,
                                  garbled_sqlite],
                         ids=["sqlite", "sqlite-wal", "text", "garbled"])
def test_a_file_that_is_not_an_mbharvest_database_is_refused_by_every_command(tmp_path, make, emulator, corpus):
    folder = tmp_path / "theirs"
    folder.mkdir()
    path = make(folder)
    before = folder_state(folder)
    jsonl = tmp_path / "recording.jsonl"
    jsonl.write_text(json.dumps(load_ws2("sortipy/recordings-line1-ab80a174-1b7d-41c8-bddb-5edfd849d512.json"))
                     + "\n", encoding="utf-8")
    network = ["--server", emulator.url, "--rate", "0", "--contact", CONTACT]
    out = tmp_path / "out"
    commands = read_commands(path, out) + [
        ["upgrade"], ["harvest", "recording", next(iter(corpus.recordings)), *network], ["refresh", *network],
        ["import-dump", "--entity", "recording", str(jsonl)]]
    for command in commands:
        result = invoke(*command, "--db", str(path))
        assert result.exit_code == 2, (command, result.output)
        lines = result.output.strip().splitlines()
        assert len(lines) == 1 and str(path) in lines[0] and "Traceback" not in result.output, (command, lines)
        assert "not an mbharvest database" in lines[0] or "not an SQLite database" in lines[0]
        assert folder_state(folder) == before, command  # the same bytes; no .lock, -wal or -shm beside it
    assert emulator.requests == []
    assert not out.exists()


def test_a_database_made_before_a_migration_is_read_as_it_is_and_upgraded_by_upgrade(tmp_path):
    path = tmp_path / "older.db"
    older = sqlite_utils.Database(path)
    MIGRATIONS.apply(older, stop_before="0002_dump_import")
    older["artist"].insert({"id": "a1", "name": "Kept", "fetched_at": "2020-01-01T00:00:00Z"})
    older.conn.close()
    before = path.read_bytes()

    stats = invoke("stats", "--json", "--db", str(path))
    assert stats.exit_code == 0 and json.loads(stats.output)["artists"] == 1
    with pytest.raises(UsageError, match=r"older mbharvest .*0002_dump_import.*mbharvest upgrade --db"):
        with reading(path) as db:
            db.execute("SELECT count(*) FROM dump_import").fetchone()
    assert path.read_bytes() == before

    upgraded = invoke("upgrade", "--db", str(path))
    assert upgraded.exit_code == 0 and "0002_dump_import" in upgraded.output and "0005_bulk_load" in upgraded.output
    with reading(path) as db:
        assert not MIGRATIONS.pending(db)
        assert db.execute("SELECT count(*) FROM dump_import").fetchone()[0] == 0
        assert db.execute("SELECT name FROM artist WHERE id = 'a1'").fetchone()[0] == "Kept"
    again = invoke("upgrade", "--db", str(path))
    assert again.exit_code == 0 and "nothing changed" in again.output


def test_a_write_command_upgrades_a_database_from_0_1_0_and_keeps_its_rows(tmp_path, emulator, corpus):
    path = old_release_copy(tmp_path / "db")
    tables = ("artist", "label", "release_group", "release", "recording", "track", "recording_isrc", "tag")
    counts = {table: truth(path, f"SELECT count(*) FROM [{table}]") for table in tables}
    recording = next(iter(corpus.recordings))
    result = invoke("harvest", "recording", recording, "--server", emulator.url, "--rate", "0",
                    "--contact", CONTACT, "--db", str(path))
    assert result.exit_code == 0, result.output
    with reading(path) as db:
        assert not MIGRATIONS.pending(db)
        for table in tables:
            assert db.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0] >= counts[table], table
        assert db.execute("SELECT count(*) FROM recording WHERE id = ?", [recording]).fetchone()[0] == 1


def test_run_arguments_are_json_objects_in_json_output(tmp_path):
    path = old_release_copy(tmp_path / "db")
    conn = sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro&immutable=1", uri=True)
    stored = [json.loads(args) for (args,) in conn.execute("SELECT args FROM harvest_run ORDER BY id")]
    conn.close()
    assert stored and all(isinstance(args, dict) for args in stored)
    runs = json.loads(invoke("runs", "--json", "--db", str(path)).output)
    assert [run["args"] for run in reversed(runs)] == stored
    figures = json.loads(invoke("stats", "--json", "--db", str(path)).output)
    assert [run["args"] for run in figures["origin"]["runs"]] == stored


def test_an_empty_file_is_nothing_to_read_but_a_write_command_makes_it_a_database(tmp_path, emulator, corpus):
    path = tmp_path / "made-by-touch.db"
    path.touch()
    result = invoke("stats", "--db", str(path))
    assert result.exit_code == 2 and "holds no mbharvest database yet" in result.output
    assert path.stat().st_size == 0 and sorted(p.name for p in tmp_path.iterdir()) == [path.name]
    recording = sorted(corpus.recordings)[0]
    result = invoke("harvest", "recording", recording, "--server", emulator.url, "--rate", "0", "--contact", CONTACT,
                    "--db", str(path))
    assert result.exit_code == 0, result.output
    assert json.loads(invoke("stats", "--json", "--db", str(path)).output)["recordings"] == 1


def test_a_creation_killed_before_its_first_migration_is_not_refused_as_foreign(tmp_path, emulator, corpus):
    """kill -9 between sqlite-utils creating its migrations table (with its
    unique index) and the first migration's commit leaves only that table."""
    path = tmp_path / "killed-at-birth.db"
    conn = sqlite3.connect(path)
    conn.execute("CREATE TABLE [_sqlite_migrations] ([migration_set] TEXT, [name] TEXT, [applied_at] TEXT)")
    conn.execute("CREATE UNIQUE INDEX [idx__sqlite_migrations_migration_set_name] "
                 "ON [_sqlite_migrations] ([migration_set], [name])")
    conn.commit()
    conn.close()
    result = invoke("stats", "--db", str(path))
    assert result.exit_code == 2 and "holds no mbharvest database yet" in result.output
    recording = sorted(corpus.recordings)[0]
    result = invoke("harvest", "recording", recording, "--server", emulator.url, "--rate", "0", "--contact", CONTACT,
                    "--db", str(path))
    assert result.exit_code == 0, result.output
    assert json.loads(invoke("stats", "--json", "--db", str(path)).output)["recordings"] == 1
