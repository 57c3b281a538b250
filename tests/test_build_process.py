"""A second process building tables beside (build_process.py), in turns
with the importer for the write lock (turns.py): the same database as one
process builds, a kill of either process loses nothing, and the lock is
taken in turn, not given up on."""

from __future__ import annotations

import json
import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmarks.release_dump import ReleaseDump
from harvester.cli import cli
from harvester.dumps import build_process, merge, turns
from harvester.dumps.turns import TakingTurns, TurnsTimeout, create_flags
from harvester.store import open_db
from tests.reliability.support import ROOT, content
from tests.test_dumps import command_env, entity_content, schema_objects
from tests.test_staging_processes import children_of, stat_of

T1, T2 = "2025-11-22T00:00:52Z", "2025-11-26T00:00:48Z"
# the tables a release dump fills (built beside in a first import)
ENTITY_AND_CHILD_TABLES = {"area", "artist", "label", "release_group", "recording", "release", "medium", "track",
                           "recording_isrc", "release_label", "artist_credit_name", "work", "url", "relationship",
                           "alias", "release_event"}
LINUX = sys.platform.startswith("linux")


def release_lines(path: Path, count: int, edition: int = 1) -> Path:
    path.write_bytes(b"".join(json.dumps(doc).encode() + b"\n"
                              for doc in ReleaseDump(count, seed=23, edition=edition).documents()))
    return path


@pytest.fixture
def clean_env(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.startswith("MBHARVEST_")]:
        monkeypatch.delenv(var)


def import_into(db: Path, path: Path, timestamp: str, *options: str):
    return CliRunner().invoke(cli, ["import-dump", "--db", str(db), "--entity", "release", "--timestamp", timestamp,
                                    str(path), *options])


# -- taking turns for the write lock --

def test_the_write_lock_is_asked_for_until_the_other_writer_commits(tmp_path):
    path = tmp_path / "turns.db"
    other, mine = sqlite3.connect(path), sqlite3.connect(path)
    other.execute("PRAGMA journal_mode = WAL")
    other.execute("CREATE TABLE t (x)")
    other.commit()
    mine.execute("PRAGMA busy_timeout = 1234")
    other.execute("BEGIN IMMEDIATE")
    other.execute("INSERT INTO t VALUES (1)")
    flags = create_flags(tmp_path / "flags")
    partner = TakingTurns(flags, 1)
    sleeps = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        assert partner.flags[0] == 1  # writer 0 says it waits
        if len(sleeps) == 3:
            other.commit()  # the other writer's window ends
    with TakingTurns(flags, 0, sleep=sleep).transaction(mine):
        assert partner.flags[0] == 0  # it has the lock: no longer waiting
        mine.execute("INSERT INTO t VALUES (2)")
        assert sleeps == [turns.ASK_EVERY] * 3  # asked four times: the fourth got the lock
    assert sleeps == [turns.ASK_EVERY] * 3  # nobody waits for it: no pause after the commit
    assert other.execute("SELECT x FROM t ORDER BY x").fetchall() == [(1,), (2,)]
    assert mine.execute("PRAGMA busy_timeout").fetchone() == (1234,)  # as it was


def test_after_a_commit_a_writer_gives_way_while_the_other_waits(tmp_path):
    flags = create_flags(tmp_path / "flags")
    now = [0.0]
    sleeps = []

    def sleep(seconds: float) -> None:
        sleeps.append(seconds)
        now[0] += seconds
        if len(sleeps) == 5:
            waiting.flags[1] = 0  # the other took the lock
    mine, waiting = TakingTurns(flags, 0, sleep=sleep, clock=lambda: now[0]), TakingTurns(flags, 1)
    waiting.flags[1] = 1
    mine.committed()
    assert sleeps == [turns.ASK_EVERY] * 5
    waiting.flags[1] = 1  # and a partner that never takes it (gone) holds this one up GIVE_WAY at most
    mine.committed()
    assert now[0] == pytest.approx(5 * turns.ASK_EVERY + turns.GIVE_WAY, abs=turns.ASK_EVERY)


def test_two_writers_taking_turns_alternate_their_windows(tmp_path):
    """Each thread a writer with its own connection, each window holding the lock 5 ms."""
    path = tmp_path / "turns.db"
    setup = sqlite3.connect(path)
    setup.execute("PRAGMA journal_mode = WAL")
    setup.execute("CREATE TABLE t (writer, window)")
    setup.commit()
    flags = create_flags(tmp_path / "flags")
    start = threading.Barrier(2)

    def write(me: int) -> None:
        conn = sqlite3.connect(path, check_same_thread=False)
        taking = TakingTurns(flags, me)
        start.wait()
        for window in range(20):
            with taking.transaction(conn):
                conn.execute("INSERT INTO t VALUES (?, ?)", [me, window])
                time.sleep(0.005)
        conn.close()
    writers = [threading.Thread(target=write, args=(me,)) for me in (0, 1)]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join()
    order = [writer for (writer,) in setup.execute("SELECT writer FROM t ORDER BY rowid")]
    assert sorted(order) == [0] * 20 + [1] * 20
    switches = sum(a != b for a, b in zip(order, order[1:]))
    assert switches >= 35  # strictly alternating but at the start and the end: 39


def test_a_lock_held_past_the_limit_or_an_error_other_than_busy_is_raised(tmp_path):
    path = tmp_path / "turns.db"
    other, mine = sqlite3.connect(path), sqlite3.connect(path)
    other.execute("PRAGMA journal_mode = WAL")
    other.execute("BEGIN IMMEDIATE")
    flags = create_flags(tmp_path / "flags")
    now = [0.0]

    def sleep(seconds: float) -> None:
        now[0] += 60.0
    with pytest.raises(TurnsTimeout, match="stayed locked for 600 s"):
        TakingTurns(flags, 0, sleep=sleep, clock=lambda: now[0]).begin(mine)
    assert now[0] == 600.0  # ten minutes of asking, then the error
    assert TakingTurns(flags, 1).flags[0] == 0  # no longer said to wait
    other.rollback()
    mine.execute("BEGIN")
    with pytest.raises(sqlite3.OperationalError, match="within a transaction"):
        TakingTurns(flags, 0, sleep=lambda seconds: pytest.fail("not a busy lock: no retry")).begin(mine)


def test_a_window_that_fails_is_rolled_back(tmp_path):
    conn = sqlite3.connect(tmp_path / "turns.db")
    conn.execute("CREATE TABLE t (x PRIMARY KEY)")
    conn.commit()
    with pytest.raises(sqlite3.IntegrityError):
        with TakingTurns(create_flags(tmp_path / "flags"), 0).transaction(conn):
            conn.execute("INSERT INTO t VALUES (1)")
            conn.execute("INSERT INTO t VALUES (1)")
    assert not conn.in_transaction
    assert conn.execute("SELECT count(*) FROM t").fetchone() == (0,)


# -- the second process --

def test_two_build_processes_give_the_database_one_gives_and_a_newer_dump_too(tmp_path, clean_env, monkeypatch):
    """A release dump built beside by the importer (relationship, track: they
    need the set lookups) and a second process (every other table), then a
    newer dump (tables small next to it rebuilt, the others merged in
    place): every table as the importer alone makes it."""
    first, second = release_lines(tmp_path / "r1.jsonl", 300), release_lines(tmp_path / "r2.jsonl", 330, 2)
    monkeypatch.setattr(build_process, "SECOND_PROCESS_RECORDS", 0)
    for path, stamp in ((first, T1), (second, T2)):
        log = tmp_path / f"{stamp}.log"
        alone = import_into(tmp_path / "one.db", path, stamp, "--processes", "1")
        assert alone.exit_code == 0, alone.output
        both = import_into(tmp_path / "two.db", path, stamp, "--processes", "2", "--log-file", str(log))
        assert both.exit_code == 0, both.output
        assert content(tmp_path / "two.db") == content(tmp_path / "one.db")
    first_log = (tmp_path / f"{T1}.log").read_text()
    built_by_second = set(re.findall(r"merge, (\w+) built beside by the second process: ", first_log))
    built_by_importer = set(re.findall(r"merge, (\w+) built beside: ", first_log))
    # each table built once, relationship and track (they need the set lookups) by the importer;
    # the others by whichever process was free (the largest first, by the second process)
    assert {"relationship", "track"} <= built_by_importer and built_by_second
    assert not built_by_second & built_by_importer
    assert built_by_second | built_by_importer == {table for table in content(tmp_path / "one.db")
                                                   if table in ENTITY_AND_CHILD_TABLES}
    assert schema_objects(tmp_path / "two.db") == schema_objects(tmp_path / "one.db")
    assert merge.new_tables(open_db(tmp_path / "two.db")) == []
    assert recorded_changes(tmp_path / "two.db") == recorded_changes(tmp_path / "one.db")


def recorded_changes(db: Path) -> list[tuple]:
    """Each import's new / updated / unchanged / deleted per table, as dump_import recorded them."""
    with sqlite3.connect(db) as conn:
        return conn.execute("SELECT dump_timestamp, changes FROM dump_import ORDER BY dump_timestamp").fetchall()


def test_a_small_dump_is_built_by_the_importer_alone(tmp_path, clean_env):
    """Below SECOND_PROCESS_RECORDS staged records an interpreter's start buys nothing."""
    path = release_lines(tmp_path / "r.jsonl", 40)
    log = tmp_path / "import.log"
    result = import_into(tmp_path / "mb.db", path, T1, "--processes", "2", "--log-file", str(log))
    assert result.exit_code == 0, result.output
    assert " built beside: " in log.read_text() and "second process" not in log.read_text()


def paused_import(tmp_path: Path, path: Path, db: Path) -> tuple[subprocess.Popen, Path]:
    """import-dump with a second build process pausing after each table it builds
    (tests/slow_merge.py); returned once it has built one."""
    marker = db.with_name(db.name + ".merging")
    process = subprocess.Popen([sys.executable, "-m", "tests.slow_merge", str(marker), "30", "second",
                                "import-dump", "--entity", "release", "--timestamp", T1, str(path),
                                "--processes", "2", "--db", str(db)],
                               cwd=ROOT, env=command_env(), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    second_marker = Path(str(marker) + ".second")
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline and not second_marker.exists():
        time.sleep(0.01)
    assert second_marker.exists(), "the second process should have built a table"
    return process, marker


def clean_import(tmp_path: Path, path: Path) -> Path:
    clean = tmp_path / "clean.db"
    subprocess.run([sys.executable, "-m", "harvester", "import-dump", "--entity", "release", "--timestamp", T1,
                    str(path), "--processes", "1", "--db", str(clean)], cwd=tmp_path, env=command_env(),
                   check=True, timeout=120, capture_output=True)
    return clean


def rerun(db: Path, path: Path) -> None:
    subprocess.run([sys.executable, "-m", "harvester", "import-dump", "--entity", "release", "--timestamp", T1,
                    str(path), "--db", str(db)], cwd=db.parent, env=command_env(), check=True, timeout=120,
                   capture_output=True)


@pytest.mark.skipif(not LINUX, reason="reads /proc; the kill is Linux's PDEATHSIG")
def test_the_second_process_dies_with_an_importer_killed_with_9_and_the_rerun_equals_a_clean_import(tmp_path):
    path = release_lines(tmp_path / "r.jsonl", 120)
    db = tmp_path / "killed.db"
    importer, _ = paused_import(tmp_path, path, db)
    helpers = children_of(importer.pid)
    assert len(helpers) == 1
    importer.send_signal(signal.SIGKILL)
    importer.wait(timeout=10)
    deadline = time.monotonic() + 10
    while Path(f"/proc/{helpers[0]}").exists() and "Z" not in stat_of(helpers[0]) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not Path(f"/proc/{helpers[0]}").exists() or stat_of(helpers[0]) == "Z"
    killed = open_db(db)
    assert killed.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert killed.execute("SELECT count(*) FROM release").fetchone() == (0,)
    assert merge.new_tables(killed)  # the built tables wait for the rerun
    killed.conn.close()
    rerun(db, path)
    clean = clean_import(tmp_path, path)
    assert entity_content(open_db(db)) == entity_content(open_db(clean))
    assert merge.new_tables(open_db(db)) == []


@pytest.mark.skipif(not LINUX, reason="reads /proc for the second process")
def test_a_second_process_killed_fails_the_import_clearly_and_the_rerun_equals_a_clean_import(tmp_path):
    """The second process gone (the kernel's out-of-memory killer, say): the
    import fails naming it, exit 1, nothing half-merged; the rerun finishes."""
    path = release_lines(tmp_path / "r.jsonl", 120)
    db = tmp_path / "failed.db"
    importer, _ = paused_import(tmp_path, path, db)
    (helper,) = children_of(importer.pid)
    os.kill(helper, signal.SIGKILL)
    _, stderr = importer.communicate(timeout=120)
    assert importer.returncode == 1
    assert stderr.decode().strip().splitlines()[-1].startswith(
        "Error: the second build process ended without answering (exit code -9)"), stderr
    failed = open_db(db)
    assert failed.execute("SELECT count(*) FROM release").fetchone() == (0,)
    assert failed.execute("SELECT status FROM dump_import").fetchone() == ("failed",)
    failed.conn.close()
    rerun(db, path)
    clean = clean_import(tmp_path, path)
    assert entity_content(open_db(db)) == entity_content(open_db(clean))
