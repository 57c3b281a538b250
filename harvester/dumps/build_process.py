"""A second process building tables beside, while the importer builds others.

Building a table beside is bound by the interpreter (merging its runs,
folding each key's copies, filling its rows); SQLite's B-tree work is a
fifth of it, binding the rows another third (measured at 200,000 release
lines): those two hold the write lock, the rest can run beside. Once staging is done, one of the two cores would
sit idle: here a fresh interpreter builds tables that need no set lookups
(for a release dump every table but relationship and track) while the
importer builds the others, the two taking the database's write lock in
turns, a window of rows at a time (turns.py). It is given one table at a
time, the largest first, and so is the importer once its own are built:
whichever is free takes the next.

The importer hears of a table the second process built between two of its
windows, and records it in the stage after its own table: a kill loses at
most the tables built since its last one, which the rerun drops and builds
again, as any table not recorded as built.
"""

from __future__ import annotations

import gc
import signal
import sqlite3
import subprocess
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path

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
    """How the second process builds the tables it is given."""

    database: str
    stage: str  # Stage.as_json()
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


class Builder:
    """The second process's side: builds the tables it is given beside, in turns with the importer."""

    def __init__(self, job: BuildJob):
        self.job = job
        stage = Stage.from_json(job.stage)
        self.stages = table_stages(stage.chunks)
        self.db = open_db(job.database)
        self.snapshot = sqlite3.connect(job.database, check_same_thread=False)
        self.turns = TakingTurns(Path(job.turns), 1)
        self.db.execute(f"PRAGMA cache_size = -{job.cache_kib}")
        self.db.execute("PRAGMA threads = 0")
        self.db.execute(f"PRAGMA wal_autocheckpoint = {job.checkpoint_pages}")
        lookups = SetLookups(stage.folder / "named.db", [self.db.conn, self.snapshot], 0)  # the tables need none
        self.merge = Merge(self.db, self.snapshot, stage.column_sets, table_keys(), job.stamp, job.entity_tables,
                           stage.counts.partial, lookups)

    def build(self, table: str) -> TableBuilt:
        started, before = time.monotonic(), bytes_written()
        changes = self.merge.build(self.stages[table], self.job.commit_rows, self.turns)
        after = bytes_written()
        return TableBuilt(table, changes.as_json(), time.monotonic() - started,
                          after - before if before is not None and after is not None else None)

    def close(self) -> None:
        self.turns.close()
        self.snapshot.close()
        self.db.conn.close()


def serve(connection: Connection, parent: int) -> None:
    """The second process: a job, then each table received built and answered, until None."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C and SIGTERM are the importer's to handle
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(parent)
    gc.disable()  # as in the importer: the staged rows are lists, freed by reference counting
    try:
        builder = Builder(connection.recv())
    except (EOFError, OSError):
        return
    except BaseException as exc:  # raised again in the importer
        _answer_error(connection, exc)
        return
    try:
        while (table := connection.recv()) is not None:
            connection.send(builder.build(table))
    except (EOFError, OSError):
        return
    except BaseException as exc:
        _answer_error(connection, exc)
    finally:
        builder.close()


def _answer_error(connection: Connection, exc: BaseException) -> None:
    try:
        connection.send(RuntimeError(f"{type(exc).__name__}: {exc}"))
    except OSError:
        pass


class BuildProcessError(MergeError):
    """The second build process failed, or ended without answering."""


class BuildProcess:
    """The importer's side: starts the second process on a job, gives it one
    table at a time (`give`) and hears when it has built it (`finished`)."""

    def __init__(self, job: BuildJob):
        self.process, self.connection = start_process(ENTRY)
        self.building: str | None = None
        try:
            self.connection.send(job)
        except BaseException:
            self.close()
            raise

    def give(self, table: str) -> None:
        assert self.building is None, "one table at a time"
        self.connection.send(table)
        self.building = table

    def finished(self, wait: float = 0.0) -> TableBuilt | None:
        """The table it was building, once built (waiting up to `wait` seconds for it)."""
        if self.building is None or not self.connection.poll(wait):
            return None
        try:
            answer = self.connection.recv()
        except (EOFError, OSError):
            raise BuildProcessError(f"the second build process ended without answering "
                                    f"(exit code {self._exit_code()})") from None
        if isinstance(answer, BaseException):
            raise BuildProcessError(f"the second build process failed: {answer}")
        self.building = None
        return answer

    def _exit_code(self) -> int | None:
        try:
            return self.process.wait(timeout=1)
        except subprocess.TimeoutExpired:
            return None

    def close(self) -> None:
        """Stop it: told to when idle, at once when building (a table in
        progress is abandoned, its transaction never committed)."""
        if self.process.poll() is None:
            if self.building is None:
                try:
                    self.connection.send(None)
                    self.process.wait(timeout=10)
                except (OSError, subprocess.TimeoutExpired):
                    pass
            if self.process.poll() is None:
                self.process.kill()
        self.process.wait()
        self.connection.close()


def main(argv: list[str]) -> None:
    """The second process's entry (ENTRY): the socket to the importer, the importer's pid."""
    descriptor, parent = (int(value) for value in argv)
    serve(Connection(descriptor), parent)
