"""Staging: the rows of a dump's lines, appended in arrival order, sorted in
memory a chunk at a time and written as compressed sorted runs.

Nothing here touches the final tables, so the cost of a line does not depend
on how large the database already is. Each row is staged with its line and
its place in the line (`seq`), the columns its document gave (a column set),
and its key; each child set a line names (`Normalized.replace`: a release's
media and tracks, a recording's ISRCs, an entity's credit names...) is staged
as (set key, line). The merge (merge.py) reads every chunk's runs of one
table at once, in key order.

An exact repeat filter skips a row identical to the last one staged for the
same key of a table that no line names a child set of: the artist of a
credit recurs in thousands of lines, and applying an identical row again
changes nothing. It holds a bounded number of keys (two generations: a key
seen again moves to the young one; when the young one is full the old one
is dropped).
"""

from __future__ import annotations

import operator
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

from harvester.dumps.runs import Section, fsync_file, write_section
from harvester.normalize import Normalized

# seq = line << LINE_SHIFT | place of the row in its line's rows
LINE_SHIFT = 24
_KEY = operator.itemgetter(0)
_SECOND = operator.itemgetter(1)
# Python memory of staged records: per record (tuple, ints, list slot) plus a
# share of the lines' bytes (the text they keep), measured with tracemalloc on
# release lines (see benchmarks/README.md); per key the repeat filter keeps.
RECORD_OVERHEAD = 200
TEXT_SHARE = 0.37
FILTER_ENTRY_BYTES = 520


def rows_stream(table: str) -> str:
    return f"rows:{table}"


def sets_stream(table: str, columns: tuple[str, ...]) -> str:
    return f"sets:{table}:{','.join(columns)}"


def parse_stream(name: str) -> tuple[str, str, tuple[str, ...]]:
    """`rows:track` -> ("rows", "track", ()); `sets:track:release_id` -> ("sets", "track", ("release_id",))."""
    kind, table, *rest = name.split(":")
    return kind, table, tuple(rest[0].split(",")) if rest else ()


@dataclass
class ColumnSets:
    """The column sets rows of each table came with: a row is staged as its
    set's number and its values in that order (no names, no per-row mask).
    A table keyed by one column is staged without it: its key is that value."""

    keys: dict[str, tuple[str, ...]]
    sets: dict[str, list[tuple[str, ...]]] = field(default_factory=dict)
    _index: dict[tuple[str, tuple[str, ...]], tuple[int, Callable, Callable]] = field(default_factory=dict)
    # the type of each key column, from the first row: one type per column keeps
    # keys comparable (Python cannot order text against numbers or NULL)
    _types: dict[str, Any] = field(default_factory=dict)

    def lookup(self, table: str, columns: tuple[str, ...]) -> tuple[int, Callable, Callable]:
        """(column set number, the row's key from its values, the values staged)."""
        try:
            return self._index[(table, columns)]
        except KeyError:
            pass
        key = self.keys.get(table)
        if key is None:
            raise ValueError(f"rows for {table}, a table the store does not know")
        missing = [column for column in key if column not in columns]
        if missing:
            raise ValueError(f"a {table} row without its key column {missing[0]}")
        known = self.sets.setdefault(table, [])
        known.append(columns)
        types = self._types
        if len(key) == 1:
            where = columns.index(key[0])
            kept = [i for i in range(len(columns)) if i != where]
            pick = operator.itemgetter(where)

            def key_of(values: tuple, table: str = table) -> Any:
                value = pick(values)
                if value.__class__ is not types.setdefault(table, value.__class__):
                    raise _key_error(table, key, (value,), (types[table],))
                return value
            staged = operator.itemgetter(*kept) if len(kept) > 1 else (
                (lambda values, i=kept[0]: (values[i],)) if kept else (lambda values: ()))
        else:
            parts = operator.itemgetter(*(columns.index(column) for column in key))

            def key_of(values: tuple, table: str = table) -> Any:
                value = parts(values)
                kinds = tuple(map(type, value))
                if kinds != types.setdefault(table, kinds):
                    raise _key_error(table, key, value, types[table])
                return value
            staged = tuple
        entry = (len(known) - 1, key_of, staged)
        self._index[(table, columns)] = entry
        return entry

    def entry(self, table: str, number: int) -> tuple[int, Callable, Callable]:
        """What `lookup` gives for a column set known by its number."""
        return self._index[(table, self.sets[table][number])]

    def staged_columns(self, table: str, number: int) -> tuple[str, ...]:
        """The columns a staged row of this set holds after its key and place."""
        columns = self.sets[table][number]
        key = self.keys[table]
        return tuple(c for c in columns if c != key[0]) if len(key) == 1 else columns

    def as_json(self) -> dict:
        return {table: [list(columns) for columns in sets] for table, sets in self.sets.items()}

    @classmethod
    def from_json(cls, keys: dict[str, tuple[str, ...]], value: dict) -> "ColumnSets":
        restored = cls(keys)
        for table, sets in value.items():
            for columns in sets:
                restored.lookup(table, tuple(columns))
        return restored


def _key_error(table: str, key: tuple[str, ...], values: tuple, expected: Any) -> ValueError:
    expected = expected if isinstance(expected, tuple) else (expected,)
    shown = ", ".join(f"{column}={value!r:.40}" for column, value in zip(key, values))
    wanted = ", ".join(kind.__name__ for kind in expected)
    return ValueError(f"a {table} row keyed by {shown}: the key's values must be of the types "
                      f"{wanted} (as the rows before it)")


def set_key(keys: dict[str, tuple[str, ...]], table: str, columns: tuple[str, ...], values: tuple) -> Any:
    """How a named set's key is staged: the value of a one-column set, else
    the values (a set keyed by a leading part of its table's key compares
    with its rows' keys; any other set is looked up by its values)."""
    return values[0] if len(keys[table]) == 1 and len(columns) == 1 else values


class RepeatFilter:
    """Remembers the last row staged per key of tables with no named child
    sets; `seen` is True when the row is identical to it. Two generations
    per table: a key seen again moves to the young one; when the young ones
    hold `entries` keys between them, the old ones are dropped."""

    def __init__(self, entries: int):
        self.half = max(1, entries // 2)
        self.young: dict[str, dict] = {}
        self.old: dict[str, dict] = {}
        self.size = 0

    def seen(self, table: str, key: Any, row: tuple) -> bool:
        young = self.young.get(table)
        if young is None:
            young = self.young[table] = {}
            self.old.setdefault(table, {})
        previous = young.get(key)
        if previous is not None:
            if previous == row:
                return True
            young[key] = row
            return False
        previous = self.old[table].pop(key, None)
        young[key] = row
        self._grew()
        return previous == row

    def _grew(self) -> None:
        self.size += 1
        if self.size >= self.half:
            self.old, self.young = self.young, {table: {} for table in self.young}
            self.size = 0

    def forget(self, table: str) -> None:
        """A child set of `table` was named: an identical row may no longer
        be a no-op (the set it belongs to may have been cleared)."""
        self.young.pop(table, None)
        self.old.pop(table, None)

    def clear(self) -> None:
        self.young, self.old, self.size = {}, {}, 0


@dataclass
class StageCounts:
    """What staging saw, kept with the manifest."""

    rows: int = 0
    repeats: int = 0
    sets: int = 0
    partial: dict[str, int] = field(default_factory=dict)  # rows of a line that does not name their set


class Stager:
    """Buffers one dump's rows and named sets per stream; `take` hands the
    buffers over for a chunk to be written.

    A row is staged as (key, seq, column set, values...). A child set a line
    names, keyed by a leading part of its table's key (a recording's ISRCs, an
    entity's credit names), is staged as one record with that line's rows of
    the set: (set key, line, [[column set, values...], ...]). A set keyed
    otherwise (a release's tracks: a track is keyed by its own id) is staged
    as (set key, line), its rows as rows."""

    def __init__(self, keys: dict[str, tuple[str, ...]], column_sets: ColumnSets, filter_entries: int,
                 counts: StageCounts):
        self.keys = keys
        self.column_sets = column_sets
        self.filter = RepeatFilter(filter_entries)
        self.counts = counts
        self.named_tables: set[str] = set()
        self.buffers: dict[str, list] = {}
        self.records = 0
        self.line_bytes = 0
        self._set_shapes: dict[tuple, tuple[str, bool, Callable]] = {}

    def add(self, line: int, normalized: Normalized, size: int) -> None:
        """Stage one line's rows and named sets (`size`: the line's bytes).
        A ValueError (a key the store cannot hold) leaves nothing of the line."""
        try:
            self._add(line, normalized)
        except ValueError:
            self._drop_line(line)
            raise
        self.line_bytes += size

    def _set_shape(self, table: str, columns: tuple[str, ...]) -> tuple[str, bool, Callable]:
        """(stream, whether the set key leads the table's key, the set key of a row dict)."""
        try:
            return self._set_shapes[(table, columns)]
        except KeyError:
            pass
        key = self.keys.get(table)
        if key is None:
            raise ValueError(f"a child set of {table}, a table the store does not know")
        if len(columns) == 1:
            column = columns[0]
            of_row = lambda row: row.get(column)  # noqa: E731
        else:
            of_row = lambda row: tuple(row.get(c) for c in columns)  # noqa: E731
        shape = self._set_shapes[(table, columns)] = (sets_stream(table, columns), key[:len(columns)] == columns,
                                                      of_row)
        return shape

    def _add(self, line: int, normalized: Normalized) -> None:
        buffers, keys = self.buffers, self.keys
        # table -> [(set key of a row, {set key: rows of the set or None when staged as rows})]
        named_here: dict[str, list] = {}
        leading_sets = []
        for table, where in normalized.replace:
            columns = tuple(map(_KEY, where))
            stream, leading, of_row = self._set_shape(table, columns)
            values = tuple(map(_SECOND, where))
            x = values[0] if len(columns) == 1 else values
            for entry in named_here.setdefault(table, []):
                if entry[0] is of_row:
                    break
            else:
                entry = (of_row, {})
                named_here[table].append(entry)
            if x in entry[1]:
                continue  # named twice in one line (a recording on two of a release's tracks)
            if table not in self.named_tables:
                self.named_tables.add(table)
                self.filter.forget(table)
            records = buffers.get(stream)
            if records is None:
                records = buffers[stream] = []
            set_key_ = set_key(keys, table, columns, values)
            if leading:
                rows: list | None = []
                leading_sets.append((records, set_key_, rows))
            else:
                rows = None
                records.append((set_key_, line))
                self.records += 1
            entry[1][x] = rows
            self.counts.sets += 1
        place = line << LINE_SHIFT
        tables = list(normalized.rows.items())
        if normalized.documents:
            tables.append(("document", normalized.documents))
        named_tables, partial, lookup = self.named_tables, self.counts.partial, self.column_sets.lookup
        for table, rows in tables:
            stream = buffers.get(rows_stream(table))
            if stream is None:
                stream = buffers[rows_stream(table)] = []
            named = named_here.get(table)
            filtered = table not in named_tables
            for row in rows:
                number, key_of, staged = lookup(table, tuple(row))
                values = tuple(row.values())
                key = key_of(values)
                if named is not None:
                    in_set = False
                    for of_row, sets in named:
                        x = of_row(row)
                        if x in sets:
                            members = sets[x]
                            if members is not None:
                                members.append((number, *values))
                                break
                            in_set = True
                    else:
                        if not in_set:
                            partial[table] = partial.get(table, 0) + 1
                        kept = staged(values)
                        stream.append((key, place, number, *kept))
                        place += 1
                        self.records += 1
                        self.counts.rows += 1
                    continue
                partial[table] = partial.get(table, 0) + 1
                kept = staged(values)
                if filtered and self.filter.seen(table, key, (number, kept)):
                    self.counts.repeats += 1
                    continue
                stream.append((key, place, number, *kept))
                place += 1
                self.records += 1
                self.counts.rows += 1
        for records, set_key_, members in leading_sets:
            records.append((set_key_, line, members))
            self.records += 1
            self.counts.rows += len(members)

    def _drop_line(self, line: int) -> None:
        """Take back what a line staged before it failed."""
        for stream, records in self.buffers.items():
            rows = stream.startswith("rows:")
            while records and (records[-1][1] >> LINE_SHIFT if rows else records[-1][1]) == line:
                records.pop()
        self.filter.clear()

    def memory(self) -> int:
        """Bytes the buffers hold, estimated from their records and the text of their lines."""
        return self.records * RECORD_OVERHEAD + self.line_bytes * TEXT_SHARE

    def take(self) -> dict[str, list]:
        taken, self.buffers = self.buffers, {}
        self.records = self.line_bytes = 0
        return taken


def write_chunk(path: Path, buffers: dict[str, list]) -> dict[str, Section]:
    """Sort each stream and write the chunk file (fsynced, so that a chunk
    named in the manifest survives a power cut as well as a kill). Records
    are appended in dump order, so a stable sort on the key alone keeps a
    key's copies in dump order (three times cheaper than comparing records)."""
    sections = {}
    with open(path, "wb") as out:
        for stream in sorted(buffers):
            records = buffers.pop(stream)  # freed once written: two chunks are in memory only briefly
            if not records:
                continue
            records.sort(key=_KEY)
            sections[stream] = write_section(out, path, records)
            del records
    fsync_file(path)
    return sections


class ChunkWriter:
    """Writes chunks on a thread of its own (zlib and the disk release the
    GIL, so the next lines are parsed meanwhile); at most one chunk waits.
    `done(sections)` runs on that thread once a chunk is on disk."""

    def __init__(self) -> None:
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def submit(self, path: Path | None, buffers: dict[str, list],
               done: Callable[[dict[str, Section]], Any]) -> None:
        """Write `buffers` to `path` (None: nothing to write), then call `done`."""
        self.wait()

        def work() -> None:
            try:
                done(write_chunk(path, buffers) if path is not None else {})
            except BaseException as exc:  # raised again in the reading thread
                self._error = exc

        self._thread = threading.Thread(target=work, name="dump-chunk", daemon=True)
        self._thread.start()

    def wait(self) -> None:
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if self._error is not None:
            error, self._error = self._error, None
            raise error
