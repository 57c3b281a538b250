"""Helpers for the reliability suite: harvest subprocesses, database content
and integrity, and the tally of scenario runs."""

from __future__ import annotations

import os
import sqlite3
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
CONTACT = "tests@example.org"
# ledger and resumption state differ between a killed-and-rerun run (harvest or import) and
# an uninterrupted one by design; everything else must be equal
STATE_TABLES = ("harvest_run", "harvest_bookmark", "harvest_plan", "dump_import", "_sqlite_migrations")
VOLATILE_COLUMNS = ("fetched_at", "source")


@dataclass
class Tally:
    """scenario -> {"runs", "failures", "details"}; a run is one harvest (or kill) checked."""

    scenarios: dict[str, dict[str, Any]] = field(default_factory=dict)

    def record(self, scenario: str, runs: int, failures: int, **details: Any) -> None:
        entry = self.scenarios.setdefault(scenario, {"runs": 0, "failures": 0, "details": {}})
        entry["runs"] += runs
        entry["failures"] += failures
        for name, value in details.items():
            previous = entry["details"].get(name)
            entry["details"][name] = value + previous if isinstance(value, int) and isinstance(previous, int) \
                else value


def mbharvest(*args: str, server: str, db: Path, rate: float | str = 0, extra_env: dict | None = None,
              stdout=subprocess.DEVNULL) -> subprocess.Popen:
    """`python -m harvester <args> --server --rate --db` as a child process."""
    env = {**os.environ, "MBHARVEST_CONTACT": CONTACT, "PYTHONPATH": str(ROOT), **(extra_env or {})}
    return subprocess.Popen([sys.executable, "-m", "harvester", *args, "--server", server, "--rate", str(rate),
                             "--db", str(db)], env=env, stdout=stdout, stderr=subprocess.PIPE, text=True)


def content(path: Path) -> dict[str, list[tuple]]:
    """Every table's rows (sorted), without fetch stamps, the ledger or bookmarks."""
    db = sqlite3.connect(path)
    try:
        tables = [row[0] for row in db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '%fts%' ORDER BY name")
            if row[0] not in STATE_TABLES]
        result = {}
        for table in tables:
            columns = [row[1] for row in db.execute(f"PRAGMA table_info([{table}])")
                       if row[1] not in VOLATILE_COLUMNS]
            result[table] = sorted(db.execute(f"SELECT {', '.join(f'[{c}]' for c in columns)} FROM [{table}]"),
                                   key=repr)
        return result
    finally:
        db.close()


def duplicates(path: Path) -> int:
    """Rows sharing an entity id in a table keyed by id (must be 0; a sanity check on top of the keys)."""
    db = sqlite3.connect(path)
    try:
        return sum(db.execute(f"SELECT count(*) - count(DISTINCT id) FROM [{table}]").fetchone()[0]
                   for table in ("artist", "label", "release_group", "release", "recording", "track"))
    finally:
        db.close()


def integrity(path: Path) -> str:
    db = sqlite3.connect(path)
    try:
        return db.execute("PRAGMA integrity_check").fetchone()[0]
    finally:
        db.close()


def completed_runs(path: Path) -> int:
    """Ledger rows marked complete (0 before the database exists or has its tables: a
    process polled while it creates them)."""
    if not path.exists():
        return 0
    db = sqlite3.connect(path)
    try:
        return db.execute("SELECT count(*) FROM harvest_run WHERE status = 'complete'").fetchone()[0]
    except sqlite3.OperationalError:  # no such table yet
        return 0
    finally:
        db.close()


def wait_for_requests(emulator: Any, count: int, process: subprocess.Popen, timeout: float = 30) -> None:
    """Until the emulator has logged `count` requests or the process has ended."""
    deadline = time.monotonic() + timeout
    while len(emulator.log.entries) < count and process.poll() is None and time.monotonic() < deadline:
        time.sleep(0.001)
