"""One run at a time per database, and the run ledger (`harvest_run`).

The lock is an flock on `<db>.lock`: the kernel releases it when the holder
dies, so a killed run never blocks the next one. The file also names the
holder (pid, start time, command) for the refusal message.
"""

from __future__ import annotations

import fcntl
import json
import os
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import sqlite_utils

from harvester.errors import DatabaseError, LockHeld
from harvester.store import check_database_file, process_alive

COMPLETE, PARTIAL, FAILED, RUNNING, INTERRUPTED = "complete", "partial", "failed", "running", "interrupted"
DIED = "the process ended without closing its run (killed or crashed); its committed pages are kept"


@contextmanager
def run_lock(db_path: str | Path, command: str, started_at: str) -> Iterator[None]:
    """Hold the database's run lock, or raise LockHeld at once naming the holder.

    A file that is not an mbharvest database is refused first, so that no
    `<db>.lock` appears beside someone else's file."""
    check_database_file(db_path)
    lock_path = Path(f"{db_path}.lock")
    try:
        lock_path.parent.mkdir(parents=True, exist_ok=True)
        handle = open(lock_path, "a+", encoding="utf-8")
    except (FileExistsError, NotADirectoryError):
        raise DatabaseError(f"{lock_path}: cannot create the run lock: a file is in the way of its folder") from None
    except OSError as exc:
        raise DatabaseError(f"{lock_path}: cannot create the run lock ({exc.strerror})") from None
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise LockHeld(f"{db_path} is in use by another run ({holder}); try again when it ends") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {started_at}: {command}\n")
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()


def start_run(db: sqlite_utils.Database, command: str, args: Any, started_at: str) -> int:
    """A new ledger row. The caller holds the run lock, so a row still
    `running` belongs to a run that died (kill -9, power cut): it is closed
    as interrupted here, keeping the counts its last committed page wrote."""
    with db.atomic():
        db.execute("UPDATE harvest_run SET status = ?, error = coalesce(error, ?) WHERE status = ?",
                   [INTERRUPTED, DIED, RUNNING])
        cursor = db.execute(
            "INSERT INTO harvest_run (command, args, started_at, status, requests, entities_written, pid) "
            "VALUES (?, ?, ?, ?, 0, 0, ?)",
            [command, json.dumps(args, ensure_ascii=False), started_at, RUNNING, os.getpid()],
        )
    return cursor.lastrowid


def update_run(db: sqlite_utils.Database, run_id: int, **fields: Any) -> None:
    """Set ledger columns. Call it inside the transaction that commits the
    data the counts describe (every page, every dump batch), so the ledger
    holds what was actually sent and committed even when the process dies."""
    assignments = ", ".join(f"[{name}] = ?" for name in fields)
    db.execute(f"UPDATE harvest_run SET {assignments} WHERE id = ?", [*fields.values(), run_id])


def list_runs(db: sqlite_utils.Database, limit: int | None = None) -> list[dict[str, Any]]:
    """The newest runs first, `args` decoded. A row still `running` whose
    process is gone is shown as the next run will close it: interrupted
    (this reads only)."""
    sql = "SELECT * FROM harvest_run ORDER BY id DESC" + (f" LIMIT {int(limit)}" if limit else "")
    rows = [{**row, "args": decode_args(row["args"])} for row in db.query(sql)]
    for row in rows:
        if row["status"] == RUNNING and not process_alive(row.get("pid")):
            row.update(status=INTERRUPTED, error=row["error"] or DIED)
    return rows


def decode_args(stored: str | None) -> Any:
    """A run's arguments as the JSON value they were stored as (so JSON
    output nests them as an object, not as a string of JSON); text that is
    not JSON (a hand-edited row) as it is."""
    try:
        return json.loads(stored) if stored is not None else None
    except ValueError:
        return stored
