"""Staging: the rows of a dump's lines, appended in arrival order, sorted in
memory a chunk at a time and written as compressed sorted runs.

Nothing here touches the final tables, so the cost of a line does not depend
on how large the database already is. Each row is staged with its line and
its place in the line (`seq`), the columns its document gave (a column set),
and its key; each child set a line names (`Normalized.replace`: a release's
media and tracks, a recording's ISRCs, an entity's credit names...) is staged
as (set key, line). The merge (merge.py) reads every chunk's runs of one
table at once, in key order.

An exact repeat filter collapses runs of identical copies of a row (the
artist of a credit recurs in thousands of lines) into one record, staged at
the place of the run's last copy (see RepeatFilter).
"""

from __future__ import annotations

import operator
import threading
from collections import OrderedDict
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
FILTER_ENTRY_BYTES = 520  # a pending run of the repeat filter
NAMING_ENTRY_BYTES = 120  # where a chunk's naming of a set sits (a 2-tuple, a dict slot)


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
                if None in value:  # a NULL key column (release_label.label_id: a label-info without a label)
                    value = null_free(value)
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

    def key_types(self) -> dict[str, Any]:
        """The type of each table's key columns, as far as rows have shown them."""
        return dict(self._types)

    def adopt_types(self, key_types: dict[str, Any]) -> None:
        for table, kinds in key_types.items():
            self._types.setdefault(table, kinds)

    def adopt(self, sets: dict, key_types: dict[str, Any]) -> bool:
        """Take the sets another process numbered from a copy of these
        (`as_json`), with the key types its rows showed; False, taking
        nothing, when they cannot keep its numbers: this copy numbered other
        sets of a table meanwhile, or saw other key types."""
        for table, columns_list in sets.items():
            known = self.sets.get(table, [])
            common = min(len(known), len(columns_list))
            if [tuple(columns) for columns in columns_list[:common]] != known[:common]:
                return False
        if any(self._types.get(table, kinds) != kinds for table, kinds in key_types.items()):
            return False
        for table, columns_list in sets.items():
            for columns in columns_list[len(self.sets.get(table, [])):]:
                self.lookup(table, tuple(columns))
        self.adopt_types(key_types)
        return True

    @classmethod
    def from_json(cls, keys: dict[str, tuple[str, ...]], value: dict) -> "ColumnSets":
        restored = cls(keys)
        for table, sets in value.items():
            for columns in sets:
                restored.lookup(table, tuple(columns))
        return restored


def null_free(key: tuple) -> tuple:
    """A composite key with its NULL columns as '', where SQLite's key order
    puts NULL (first), so staged and stored keys compare: the only key column
    that may be NULL, release_label.label_id, never holds '' (migration 0011
    turned 0.1.0's '' into NULL)."""
    return tuple("" if part is None else part for part in key)


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
    """Collapses runs of identical copies of a row into one staged record.

    A row identical to the pending one of its key extends that run; the run
    is staged at the place of its *last* copy when a different copy of the
    key comes, when it is the least recently extended of more than `entries`
    runs, or when the chunk ends (`drain`). Identical copies fold to the same
    row as one copy at the last of their places, whatever other copies of
    the key or clears of its set come between them, so dropping the others
    changes nothing."""

    def __init__(self, entries: int):
        self.entries = max(1, entries)
        # (table, key) -> [stream, key, seq, column set, values], least recently extended first.
        # An OrderedDict, not a dict: taking a dict's first key scans past the
        # slots of every key removed before it (one popped a row), so with a
        # few hundred thousand runs each eviction cost tens of microseconds.
        self.runs: OrderedDict[tuple[str, Any], list] = OrderedDict()
        self.repeats = 0

    def add(self, stream: list, table: str, key: Any, seq: int, number: int, kept: tuple) -> None:
        runs = self.runs
        name = (table, key)
        run = runs.get(name)
        if run is not None:
            runs.move_to_end(name)  # most recently extended last
            if run[3] == number and run[4] == kept:
                run[2] = seq
                self.repeats += 1
                return
            run[0].append((run[1], run[2], run[3], *run[4]))
            run[0], run[2], run[3], run[4] = stream, seq, number, kept
            return
        runs[name] = [stream, key, seq, number, kept]
        if len(runs) > self.entries:
            run = runs.popitem(last=False)[1]
            run[0].append((run[1], run[2], run[3], *run[4]))

    def drain(self) -> None:
        """Stage every pending run (the chunk ends)."""
        for stream, key, seq, number, kept in self.runs.values():
            stream.append((key, seq, number, *kept))
        self.runs = OrderedDict()


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
    as (set key, line), its rows as rows. A set of the first kind named again
    in the chunk replaces its earlier naming there: only a set's last naming
    is merged (an artist's aliases come whole in every credit of the artist,
    ~13 namings per alias kept in generated release lines)."""

    def __init__(self, keys: dict[str, tuple[str, ...]], column_sets: ColumnSets, filter_entries: int,
                 counts: StageCounts):
        self.keys = keys
        self.column_sets = column_sets
        self.filter = RepeatFilter(filter_entries)
        self.counts = counts
        self.buffers: dict[str, list] = {}
        self.records = 0
        self.line_bytes = 0
        self._set_shapes: dict[tuple, tuple[str, bool, Callable]] = {}
        # (stream, set key) -> where the chunk's naming of a set keyed by a
        # leading part of its table's key sits in the stream (see _named)
        self._namings: dict[tuple[str, Any], int] = {}

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

    def add(self, line: int, normalized: Normalized, size: int) -> None:
        """Stage one line's rows and named sets (`size`: the line's bytes).
        A ValueError (a row the store cannot hold) stages nothing of the line:
        every row is looked at before any is staged."""
        lookup = self.column_sets.lookup
        tables = list(normalized.rows.items())
        if normalized.documents:
            tables.append(("document", normalized.documents))
        checked = []
        for table, rows in tables:
            keyed = []
            for row in rows:
                number, key_of, staged = lookup(table, tuple(row))
                values = tuple(row.values())
                keyed.append((row, number, key_of(values), values, staged))
            checked.append((table, keyed))
        named_here = self._named(line, normalized.replace)
        self._stage_rows(line, checked, named_here)
        self.line_bytes += size

    def _named(self, line: int, replace: list) -> dict[str, list]:
        """Stage the sets a line names; table -> [(set key of a row dict, {set key: its rows, or
        None for a set whose rows are staged as rows})]."""
        buffers, keys = self.buffers, self.keys
        named_here: dict[str, list] = {}
        for table, where in replace:
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
            records = buffers.get(stream)
            if records is None:
                records = buffers[stream] = []
            self.counts.sets += 1
            if leading:
                members: list | None = []
                record = (set_key(keys, table, columns, values), line, members)
                earlier = self._namings.get((stream, record[0]))
                if earlier is None:
                    self._namings[(stream, record[0])] = len(records)
                    records.append(record)
                    self.records += 1
                else:  # the chunk named the set before: only its last naming is merged, the earlier goes now
                    records[earlier] = record
            else:
                members = None
                records.append((set_key(keys, table, columns, values), line))
                self.records += 1
            entry[1][x] = members
        return named_here

    def _stage_rows(self, line: int, checked: list, named_here: dict[str, list]) -> None:
        buffers, partial, add = self.buffers, self.counts.partial, self.filter.add
        place = line << LINE_SHIFT
        for table, keyed in checked:
            stream = buffers.get(rows_stream(table))
            if stream is None:
                stream = buffers[rows_stream(table)] = []
            named = named_here.get(table)
            for row, number, key, values, staged in keyed:
                self.counts.rows += 1
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
                        add(stream, table, key, place, number, staged(values))
                        place += 1
                        self.records += 1
                    continue
                partial[table] = partial.get(table, 0) + 1
                add(stream, table, key, place, number, staged(values))
                place += 1
                self.records += 1

    def memory(self) -> int:
        """Bytes the buffers and pending runs hold, estimated from their
        records and the text of their lines."""
        return ((self.records - self.filter.repeats) * RECORD_OVERHEAD + len(self._namings) * NAMING_ENTRY_BYTES
                + self.line_bytes * TEXT_SHARE)

    def take(self) -> dict[str, list]:
        """The chunk's records (pending runs included); the buffers start empty."""
        self.filter.drain()
        taken, self.buffers = self.buffers, {}
        self._namings = {}
        self.records = self.line_bytes = 0
        self.counts.repeats += self.filter.repeats
        self.filter.repeats = 0
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
