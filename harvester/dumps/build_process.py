"""A second process building tables beside, while the importer builds others.

Building a table beside is bound by the interpreter (merging its runs,
folding each key's copies, filling and binding its rows); SQLite's own
writing is a fifth of it. Once staging is done, one of the two cores would
sit idle: here a fresh interpreter builds the tables that need no set
lookups (for a release dump every table but relationship and track) while
the importer builds the others, the two taking the database's write lock in
turns, a window of rows at a time (turns.py).

The importer records a table the second process built when it hears of it,
after each of its own tables and at the end: a kill loses at most the
tables built since, which the rerun drops and builds again, as any table
not recorded as built.
"""

from __future__ import annotations

import gc
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from multiprocessing.connection import Connection
from typing import Iterator

from harvester.dumps.lookups import SetLookups
from harvester.dumps.manifest import Stage, table_keys
from harvester.dumps.merge import Merge, MergeError, table_stages
from harvester.dumps.parallel import bytes_written, die_with_parent, start_process
from harvester.dumps.turns import TakingTurns
from harvester.store import open_db

# Staged records of the tables a second process would build, below which it
# is not started: an interpreter's start (~0.5 s) buys nothing on a small dump.
SECOND_PROCESS_RECORDS = 1_000_000
ENTRY = "import sys; from harvester.dumps.build_process import main; main(sys.argv[1:])"


@dataclass
class BuildJob:
    """What the second process builds, and how."""

    database: str
    stage: str  # Stage.as_json()
    tables: list[str]  # in the order to build them
    stamp: dict[str, str]
    entity_tables: frozenset[str]
    commit_rows: int
    cache_kib: int
    checkpoint_pages: int  # the WAL checkpointed as seldom as one process's commits would (each window commits)
    turns: str  # the two writers' flags (turns.py); the importer is writer 0, this process 1


@dataclass
class TableBuilt:
    """A table the second process built beside: its changes, time and bytes written."""

    table: str
    changes: dict
    seconds: float
    written: int | None


def build_tables(job: BuildJob) -> Iterator[TableBuilt]:
    """Build the job's tables beside, one after the other, in turns with the importer."""
    stage = Stage.from_json(job.stage)
    stages = table_stages(stage.chunks)
    db = open_db(job.database)
    snapshot = sqlite3.connect(job.database, check_same_thread=False)
    turns = TakingTurns(Path(job.turns), 1)
    try:
        db.execute(f"PRAGMA cache_size = -{job.cache_kib}")
        db.execute("PRAGMA threads = 0")
        db.execute(f"PRAGMA wal_autocheckpoint = {job.checkpoint_pages}")
        lookups = SetLookups(stage.folder / "named.db", [db.conn, snapshot], 0)  # none: these tables need none
        merge = Merge(db, snapshot, stage.column_sets, table_keys(), job.stamp, job.entity_tables,
                      stage.counts.partial, lookups)
        for table in job.tables:
            started, before = time.monotonic(), bytes_written()
            changes = merge.build(stages[table], job.commit_rows, turns)
            after = bytes_written()
            yield TableBuilt(table, changes.as_json(), time.monotonic() - started,
                             after - before if before is not None and after is not None else None)
    finally:
        turns.close()
        snapshot.close()
        db.conn.close()


def serve(connection: Connection, parent: int) -> None:
    """The second process: one job received, each table built answered, then None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C and SIGTERM are the importer's to handle
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(parent)
    gc.disable()  # as in the importer: the staged rows are lists, freed by reference counting
    try:
        job = connection.recv()
    except (EOFError, OSError):
        return
    try:
        for built in build_tables(job):
            connection.send(built)
        connection.send(None)
    except BaseException as exc:  # raised again in the importer
        try:
            connection.send(RuntimeError(f"{type(exc).__name__}: {exc}"))
        except OSError:
            pass


class BuildProcessError(MergeError):
    """The second build process failed, or ended without answering."""


class BuildProcess:
    """The importer's side: starts the second process on a job, then hears of
    each table it built (`finished`), until it says it is done."""

    def __init__(self, job: BuildJob):
        self.tables = list(job.tables)
        self.process, self.connection = start_process(ENTRY)
        self.done = False
        try:
            self.connection.send(job)
        except BaseException:
            self.close()
            raise

    def finished(self, wait: float = 0.0) -> list[TableBuilt]:
        """The tables built since last asked (waiting up to `wait` seconds for one)."""
        built: list[TableBuilt] = []
        while not self.done and self.connection.poll(0 if built else wait):
            try:
                answer = self.connection.recv()
            except (EOFError, OSError):
                raise BuildProcessError(f"the second build process ended without answering "
                                        f"(exit code {self._exit_code()})") from None
            if answer is None:
                self.done = True
            elif isinstance(answer, BaseException):
                self.done = True
                raise BuildProcessError(f"the second build process failed: {answer}")
            else:
                built.append(answer)
        return built

    def _exit_code(self) -> int | None:
        try:
            return self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        """Stop it (at once, when it is not done: a table in progress is
        abandoned, its transaction never committed)."""
        if self.process.poll() is None and not self.done:
            self.process.kill()
        self.process.wait()
        self.connection.close()


def main(argv: list[str]) -> None:
    """The second process's entry (ENTRY): the socket to the importer, the importer's pid."""
    descriptor, parent = (int(value) for value in argv)
    serve(Connection(descriptor), parent)
