"""The last line naming each child set keyed outside its table's key (a
release's tracks by release, its relationships by target), for the merge."""

from __future__ import annotations

import itertools
import operator
import sqlite3
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

from harvester.dumps.merge import WINDOW, TableStage, is_prefix
from harvester.dumps.runs import merged

_FIRST = operator.itemgetter(0)


class SetLookups:
    """The last line naming each child set whose key is not a prefix of its
    table's key (a release's tracks: track is keyed by its own id), kept in an
    SQLite file of the staging folder (attached as `staged`) for lookups by
    set key: by SQL from the stored rows, by Python from the staged ones.
    The connection reading them (the last) gets a page cache of `cache_kib`
    for the file: the lookups come in another order than the file's (a
    release's relationships by source, looked up by target), and with
    SQLite's default 2 MB nearly every one read its pages from the kernel
    (measured with 307 MB: relationship built 13 % faster at 200,000 lines,
    4 % at a million, where the file is five times larger)."""

    def __init__(self, path: Path, connections: list[sqlite3.Connection], cache_kib: int):
        self.path = path
        self.connections = connections
        self.cache_kib = cache_kib
        self.tables: dict[tuple[str, tuple[str, ...]], str] = {}
        self.repeats: dict[tuple[str, tuple[str, ...]], bool] = {}
        self.attached = False

    def build(self, stages: dict[str, TableStage], keys: dict[str, tuple[str, ...]]) -> None:
        wanted = [(stage, columns) for stage in stages.values() for columns in stage.sets
                  if not is_prefix(columns, keys[stage.name])]
        if not wanted:
            return
        self.path.unlink(missing_ok=True)
        for connection in self.connections:
            connection.execute("ATTACH DATABASE ? AS staged", [str(self.path)])
        self.attached = True
        writer = self.connections[0]
        writer.execute("PRAGMA staged.journal_mode = OFF")
        writer.execute("PRAGMA staged.synchronous = OFF")
        self.connections[-1].execute(f"PRAGMA staged.cache_size = -{self.cache_kib}")
        for stage, columns in wanted:
            name = f"named_{stage.name}_{'_'.join(columns)}"
            listed = ", ".join(f"[{c}]" for c in columns)
            writer.execute(f"CREATE TABLE staged.[{name}] ({listed}, last_line INTEGER NOT NULL, "
                           f"PRIMARY KEY ({listed})) WITHOUT ROWID")
            insert = f"INSERT INTO staged.[{name}] VALUES ({', '.join('?' * (len(columns) + 1))})"
            repeated = False
            rows = []
            for values, group in itertools.groupby(merged(stage.sets[columns]), _FIRST):
                lines = [line for _, line in group]
                repeated = repeated or len(lines) > 1
                rows.append((*values, lines[-1]) if isinstance(values, list) else (values, lines[-1]))
                if len(rows) >= WINDOW:
                    writer.executemany(insert, rows)
                    rows = []
            writer.executemany(insert, rows)
            writer.commit()
            self.tables[(stage.name, columns)] = name
            self.repeats[(stage.name, columns)] = repeated

    def sql(self, table: str, columns: tuple[str, ...], alias: str) -> str:
        name = self.tables[(table, columns)]
        where = " AND ".join(f"n.[{c}] = {alias}.[{c}]" for c in columns)
        return f"SELECT n.last_line FROM staged.[{name}] n WHERE {where}"

    def repeated(self, table: str, columns: tuple[str, ...]) -> bool:
        return self.repeats[(table, columns)]

    def getter(self, table: str, columns: tuple[str, ...]) -> Callable[[list], int | None]:
        name = self.tables[(table, columns)]
        query = f"SELECT last_line FROM staged.[{name}] WHERE {' AND '.join(f'[{c}] = ?' for c in columns)}"
        snapshot = self.connections[-1]

        def last_line(values: list) -> int | None:
            row = snapshot.execute(query, values).fetchone()
            return row[0] if row else None
        return last_line

    @contextmanager
    def read_transaction(self) -> Iterator[None]:
        """The lookups of one table in one read transaction of the snapshot:
        without it each lookup takes and drops its locks (measured: 13 us a
        lookup, 4 us inside one). Only the staged file is read in it, or the
        database by the one statement reading its stored rows: checkpoints
        of the tables built meanwhile are not held back."""
        snapshot = self.connections[-1]
        snapshot.execute("BEGIN")
        try:
            yield
        finally:
            snapshot.rollback()

    def close(self) -> None:
        if self.attached:
            for connection in self.connections:
                try:
                    connection.execute("DETACH DATABASE staged")
                except sqlite3.Error:
                    pass
        self.path.unlink(missing_ok=True)
