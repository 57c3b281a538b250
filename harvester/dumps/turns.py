"""Two processes writing one database file, one window of rows at a time.

While the tables are built beside, the importer and a second build process
(build_process.py) write into the same database. SQLite lets one writer in
at a time, and is not fair about it: its busy handler sleeps ever longer
between tries (up to 100 ms) while the other process, back within a
millisecond, takes the lock again (measured: one process starved past its
30 s timeout). Asking every half millisecond and pausing 3 ms after each
commit was not enough either on two busy cores: the second process still
waited for the lock ~75 % of its time (200,000 release lines, py-spy).
So the two say when they wait, in two bytes of a file both map: after a
commit, a writer whose partner waits lets it take the lock first.
"""

from __future__ import annotations

import mmap
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

ASK_EVERY = 0.0005  # seconds between two tries for the write lock
GIVE_WAY = 0.1  # seconds a writer waits at most, after a commit, for its waiting partner to take the lock
GIVE_UP = 600.0  # seconds without the lock: something holds it that is not the other builder


class TurnsTimeout(sqlite3.OperationalError):
    """The write lock stayed taken for GIVE_UP seconds."""


def create_flags(path: Path) -> Path:
    """The two writers' flags (one byte each: waiting for the lock or not), none set."""
    path.write_bytes(b"\0\0")
    return path


class TakingTurns:
    """Writer `me` (0 or 1) of two sharing the flags at `path`: takes the write
    lock of a connection (BEGIN IMMEDIATE) by asking often, its flag set
    meanwhile, and after a commit gives way to the other when it waits."""

    def __init__(self, path: Path, me: int, sleep: Callable[[float], None] = time.sleep,
                 clock: Callable[[], float] = time.monotonic):
        self.me, self.other = me, 1 - me
        self.sleep, self.clock = sleep, clock
        with open(path, "r+b") as file:
            self.flags = mmap.mmap(file.fileno(), 2)

    def close(self) -> None:
        self.flags.close()

    def begin(self, conn: sqlite3.Connection) -> None:
        """BEGIN IMMEDIATE, asked every ASK_EVERY seconds until the lock is free."""
        timeout = conn.execute("PRAGMA busy_timeout").fetchone()[0]
        conn.execute("PRAGMA busy_timeout = 0")
        self.flags[self.me] = 1
        try:
            since = self.clock()
            while True:
                try:
                    conn.execute("BEGIN IMMEDIATE")
                    return
                except sqlite3.OperationalError as exc:
                    if getattr(exc, "sqlite_errorcode", 0) & 0xFF not in (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED):
                        raise  # (the primary code: BUSY_RECOVERY, BUSY_SNAPSHOT... are busy too)
                    if self.clock() - since >= GIVE_UP:
                        raise TurnsTimeout(f"the database stayed locked for {GIVE_UP:.0f} s") from None
                    self.sleep(ASK_EVERY)
        finally:
            self.flags[self.me] = 0
            conn.execute(f"PRAGMA busy_timeout = {timeout}")

    def committed(self) -> None:
        """After a commit: while the other writer waits for the lock (up to
        GIVE_WAY seconds), this one does not ask for it again."""
        since = self.clock()
        while self.flags[self.other] and self.clock() - since < GIVE_WAY:
            self.sleep(ASK_EVERY)

    @contextmanager
    def transaction(self, conn: sqlite3.Connection) -> Iterator[None]:
        """One write transaction in turn: committed (then the other's turn, if it waits), or rolled back."""
        self.begin(conn)
        try:
            yield
        except BaseException:
            conn.rollback()
            raise
        conn.commit()
        self.committed()
