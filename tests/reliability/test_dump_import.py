"""kill -9 at random moments during `mbharvest import-dump` (while staging
and while merging), and a reader process during an import (issues 10 and 13)."""

from __future__ import annotations

import json
import os
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest

from benchmarks.synthetic_dump import write_recording_dump
from tests.reliability.support import ROOT, completed_runs, content, duplicates, integrity
from tests.reliability.test_readers import reader

LINES = 8000
BATCH = "250"
KILLS_WANTED = 12
SEED = 6
KILL_COUNTS = ("kills", "kills_mid_import", "kills_in_merge", "cycles")


@pytest.fixture(scope="module")
def archive(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("dump") / "recording.tar.gz"
    write_recording_dump(path, LINES, seed=SEED)
    return path


def import_dump(archive: Path, db: Path, processes: str = "1") -> subprocess.Popen:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MBHARVEST_")}, "PYTHONPATH": str(ROOT)}
    return subprocess.Popen([sys.executable, "-m", "harvester", "import-dump", str(archive), "--batch-size", BATCH,
                             "--processes", processes, "--db", str(db)], env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.PIPE, text=True)


def lines_staged(path: Path) -> int:
    if not path.exists():
        return 0
    db = sqlite3.connect(path)
    try:
        row = db.execute("SELECT max(lines_staged) FROM dump_import").fetchone()
        return row[0] or 0
    except sqlite3.OperationalError:  # killed before the schema was complete
        return 0
    finally:
        db.close()


@pytest.mark.parametrize("processes", ["1", "2"])
def test_killed_imports_rerun_to_a_clean_imports_database(archive, tmp_path, tally, processes):
    clean = tmp_path / "clean.db"
    started = time.monotonic()
    assert import_dump(archive, clean).wait(timeout=120) == 0  # staged by one process: the reference
    clean_seconds = time.monotonic() - started
    reference = content(clean)
    assert len(reference["recording"]) == LINES
    rng = random.Random(SEED)
    result = {"kills": 0, "kills_mid_import": 0, "kills_in_merge": 0, "cycles": 0, "integrity_failures": 0,
              "mismatches": 0, "duplicates": 0, "bad_exits": 0}
    while result["kills_mid_import"] < KILLS_WANTED:
        path = tmp_path / f"killed{result['cycles']}.db"
        result["cycles"] += 1
        for _ in range(40):
            process = import_dump(archive, path, processes)
            # from just after start-up to the end of a clean run: kills land in reading, normalizing, committing
            try:
                process.wait(timeout=rng.uniform(0.5, clean_seconds))
            except subprocess.TimeoutExpired:
                process.kill()
                result["kills"] += 1
            _, stderr = process.communicate(timeout=120)
            if process.returncode == -9 and 0 < lines_staged(path) < LINES:
                result["kills_mid_import"] += 1
            elif process.returncode == -9 and lines_staged(path) == LINES and completed_runs(path) == 0:
                result["kills_in_merge"] += 1
            if path.exists() and integrity(path) != "ok":
                result["integrity_failures"] += 1
            if process.returncode == 0 or completed_runs(path) > 0:
                break
            if process.returncode != -9:
                result["bad_exits"] += 1
                print(stderr)
        if completed_runs(path) != 1 or content(path) != reference:
            result["mismatches"] += 1
        result["duplicates"] += duplicates(path)
    staged_by = "" if processes == "1" else f", staged by {processes} processes"
    tally.record(f"kill -9 during `import-dump` ({LINES:,}-line recording dump{staged_by}), rerun to completion",
                 runs=result["kills"],
                 failures=sum(v for k, v in result.items() if k not in KILL_COUNTS), **result)
    assert not {k: v for k, v in result.items() if k not in KILL_COUNTS and v}, result


def test_a_reader_during_an_import_never_waits_and_sees_the_database_before_or_after(archive, tmp_path, tally):
    """Staged lines are not in the tables until the merge commits them all at
    once: a reader sees the empty database, then the whole dump."""
    db_path, stop, out = tmp_path / "read.db", tmp_path / "stop", tmp_path / "reader.json"
    watcher = reader(db_path, stop, out)
    process = import_dump(archive, db_path)
    _, stderr = process.communicate(timeout=120)
    stop.touch()
    assert watcher.wait(timeout=60) == 0
    seen = json.loads(out.read_text(encoding="utf-8"))
    checks = {
        "import exit 0": process.returncode == 0,
        "no reader errors (database is locked)": not seen["errors"],
        "no half-written state seen": not seen["violations"],
        "only the state before and the state after": seen["distinct_snapshots"] <= 2,
        "read many times while the import ran": seen["rounds"] >= 20,
        "reader's last snapshot is the final database": seen["last"].get("recording") == LINES,
    }
    tally.record(f"a reader process during `import-dump` ({LINES:,} lines)", runs=seen["rounds"],
                 failures=len(seen["errors"]) + sum(seen["violations"].values()) + (seen["distinct_snapshots"] > 2),
                 distinct_states_seen=seen["distinct_snapshots"])
    assert all(checks.values()), (checks, seen, stderr)
