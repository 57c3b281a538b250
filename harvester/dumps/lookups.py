"""The last line naming each child set keyed outside its table's key (a
release's tracks by release, its relationships by target), for the merge."""

from __future__ import annotations

import bisect
import itertools
import operator
import sqlite3
import zlib
from array import array
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import orjson

from harvester.dumps.merge import WINDOW, TableStage, is_prefix
from harvester.dumps.runs import merged

_FIRST = operator.itemgetter(0)
# What a set costs in LastLines: its packed hash (8 bytes) and its line (4),
# with the arrays' growth slack.
ENTRY_BYTES = 13
BUCKET_BITS = 16  # at most 65,536 buckets, each two arrays
BUCKET_SETS = 256  # sets a bucket holds at most on average (fewer buckets for fewer sets)
_CHECK_BITS = 16
LINE_LIMIT = 1 << 31  # a line as LastLines holds it (32 bits, signed)


def set_hash(key: tuple) -> int:
    """A set key's 64-bit hash (this process's: str hashes are salted per process)."""
    return hash(key)


def set_check(key: tuple) -> int:
    """A second, independent hash of a set key, for the bits the bucket takes."""
    return zlib.crc32(orjson.dumps(key))


class LastLines:
    """The last line naming each set of one kind, in memory: a set's 64-bit
    hash picks a bucket (its low bits) and, packed with 16 bits of a second
    hash, is looked for by bisection in the bucket's sorted array; its line
    sits beside it. 12 bytes a set, about 2 us a lookup (measured on a
    million sets), where the set lookups' SQLite file took 10-16 us at a
    million lines (relationship's target sets, 5 x larger than its page
    cache). Bucket and packed value hold 64 to 80 bits of the two hashes
    (more buckets, more bits): when two named sets share them, `seal` says
    so and the file is used instead; a key no line names answers a line
    only if it shares them with a named set of its bucket, 1 in 2^64 per
    set or less. A key holding NULL names no set (as `=` in SQL)."""

    def __init__(self, expected: int, hash_of: Callable[[tuple], int] | None = None,
                 check_of: Callable[[tuple], int] | None = None):
        self.bits = min(BUCKET_BITS, (expected // BUCKET_SETS).bit_length())
        self.mask = (1 << self.bits) - 1
        self.hash_of, self.check_of = hash_of or set_hash, check_of or set_check
        self.packed = [array("q") for _ in range(1 << self.bits)]
        self.lines = [array("i") for _ in range(1 << self.bits)]
        self.count = 0

    def _packed(self, key: tuple) -> tuple[int, int]:
        """(bucket, the hash's other bits with the check's low bits) of a key."""
        hashed = self.hash_of(key)
        packed = ((hashed >> self.bits) << _CHECK_BITS) | (self.check_of(key) & ((1 << _CHECK_BITS) - 1))
        return hashed & self.mask, (packed + (1 << 63)) % (1 << 64) - (1 << 63)  # a signed 64-bit value

    def add(self, key: tuple, line: int) -> None:
        """A set (each key once, its line below LINE_LIMIT), before `seal`."""
        bucket, packed = self._packed(key)
        self.packed[bucket].append(packed)
        self.lines[bucket].append(line)
        self.count += 1

    def seal(self) -> bool:
        """Sort each bucket; False when two sets share their packed value
        (the hashes cannot tell them apart: 1 in 2^64 a pair or less)."""
        for bucket, values in enumerate(self.packed):
            pairs = sorted(zip(values, self.lines[bucket]))
            if any(pairs[i][0] == pairs[i - 1][0] for i in range(1, len(pairs))):
                return False
            self.packed[bucket] = array("q", [value for value, _ in pairs])
            self.lines[bucket] = array("i", [line for _, line in pairs])
        return True

    def get(self, key: tuple) -> int | None:
        """The last line naming the set, None when none does."""
        if None in key:
            return None
        bucket, packed = self._packed(key)
        values = self.packed[bucket]
        at = bisect.bisect_left(values, packed)
        if at < len(values) and values[at] == packed:
            return self.lines[bucket][at]
        return None


class SetLookups:
    """The last line naming each child set whose key is not a prefix of its
    table's key (a release's tracks: track is keyed by its own id), kept in an
    SQLite file of the staging folder (attached as `staged`) for lookups by
    set key: by SQL from the stored rows, by Python from the staged ones
    (and from the stored ones when in memory).
    The connection reading them (the last) gets a page cache of `cache_kib`
    for the file: the lookups come in another order than the file's (a
    release's relationships by source, looked up by target), and with
    SQLite's default 2 MB nearly every one read its pages from the kernel
    (measured with 307 MB: relationship built 13 % faster at 200,000 lines,
    4 % at a million, where the file is five times larger).

    The kinds of sets the merge asks most (a set named by more than one
    line, or a table with partial copies: each staged row's set is looked
    up) are kept in memory instead (LastLines), for staged rows and stored
    ones, while `index_bytes` holds them: the file holds the rest."""

    def __init__(self, path: Path, connections: list[sqlite3.Connection], cache_kib: int, index_bytes: int = 0):
        self.path = path
        self.connections = connections
        self.cache_kib = cache_kib
        self.index_bytes = index_bytes
        self.tables: dict[tuple[str, tuple[str, ...]], str] = {}
        self.repeats: dict[tuple[str, tuple[str, ...]], bool] = {}
        self.indexes: dict[tuple[str, tuple[str, ...]], LastLines] = {}
        self.attached = False

    def build(self, stages: dict[str, TableStage], keys: dict[str, tuple[str, ...]],
              partial: frozenset[str] = frozenset()) -> None:
        """Each kind of set in memory when the merge looks it up for every
        copy (a table in `partial`, some rows staged from partial copies, or
        a set named twice) and the share holds it; otherwise in the file."""
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
            index, repeated = self._in_memory(stage.sets[columns])
            self.repeats[(stage.name, columns)] = repeated
            if index is not None and (repeated or stage.name in partial):
                self.indexes[(stage.name, columns)] = index
                self.index_bytes -= index.count * ENTRY_BYTES
            else:
                self._in_file(stage.name, columns, stage.sets[columns])

    def _in_memory(self, sections: list) -> tuple[LastLines | None, bool]:
        """The sets' last lines in memory (None beyond the share, or when two
        sets share their hashes), and whether a set is named twice."""
        room = self.index_bytes // ENTRY_BYTES
        index = LastLines(min(sum(section.records for section in sections), room)) if room else None
        repeated = False
        for values, group in itertools.groupby(merged(sections), _FIRST):
            lines = [line for _, line in group]
            repeated = repeated or len(lines) > 1
            if index is not None:
                if index.count < room and lines[-1] < LINE_LIMIT:
                    index.add(tuple(values) if isinstance(values, list) else (values,), lines[-1])
                else:
                    index = None
        return (index if index is not None and index.seal() else None), repeated

    def _in_file(self, table: str, columns: tuple[str, ...], sections: list) -> None:
        name = f"named_{table}_{'_'.join(columns)}"
        listed = ", ".join(f"[{c}]" for c in columns)
        writer = self.connections[0]
        writer.execute(f"CREATE TABLE staged.[{name}] ({listed}, last_line INTEGER NOT NULL, "
                       f"PRIMARY KEY ({listed})) WITHOUT ROWID")
        insert = f"INSERT INTO staged.[{name}] VALUES ({', '.join('?' * (len(columns) + 1))})"
        rows = []
        for values, group in itertools.groupby(merged(sections), _FIRST):
            for _, line in group:
                pass
            rows.append((*values, line) if isinstance(values, list) else (values, line))
            if len(rows) >= WINDOW:
                writer.executemany(insert, rows)
                rows = []
        writer.executemany(insert, rows)
        writer.commit()
        self.tables[(table, columns)] = name

    def sql(self, table: str, columns: tuple[str, ...], alias: str) -> str:
        name = self.tables[(table, columns)]
        where = " AND ".join(f"n.[{c}] = {alias}.[{c}]" for c in columns)
        return f"SELECT n.last_line FROM staged.[{name}] n WHERE {where}"

    def repeated(self, table: str, columns: tuple[str, ...]) -> bool:
        return self.repeats[(table, columns)]

    def in_memory(self, table: str, columns: tuple[str, ...]) -> bool:
        return (table, columns) in self.indexes

    def getter(self, table: str, columns: tuple[str, ...]) -> Callable[[list], int | None]:
        index = self.indexes.get((table, columns))
        if index is not None:
            return lambda values: index.get(tuple(values))
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
