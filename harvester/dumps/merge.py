"""The merge: a staged dump's rows into the final tables, in one transaction.

For each table, the staged rows of every chunk are read at once in key
order, folded per key, and written in key order: a B-tree's pages are
visited once, left to right, whatever the table's size. WAL readers see the
database as it was before the merge until it commits, then as it is after;
a merge that dies (kill -9, power cut) leaves nothing behind and the next
run does it again from the staged runs.

What a dump means (the rules the fold applies; see README "Importing the
JSON dumps"):

- A child set (a release's media and tracks, a recording's ISRCs, an
  entity's credit names, a release's labels, an entity's tags of a kind)
  named by several lines takes the rows of the *last* line naming it; rows
  of that set staged by earlier lines are dropped, and so are its stored
  rows that line does not carry. A row a naming line carries starts from
  nothing (a column it lacks is NULL); copies of it later in the same line
  add their columns. A later line that carries a row of the set without
  naming the set adds its columns to it.
- Every other row (an artist, a recording, a label...) is folded per key:
  each column takes the value of the last copy that has the column, in line
  order; a column no copy has keeps its stored value (NULL for a new row).
  A poorer nested copy never blanks what a richer copy set, whichever comes
  first, in one dump or across dumps.
- Every entity row the dump carries (an artist, a release...) gets
  `fetched_at` and `source` of the dump, also when nothing else in it
  changed ("source = this dump" means "carried by this dump": sync-dumps'
  gone pass reads it); a child row (a track, a credit name, a relationship)
  gets them when it is new or changed, and keeps its own when the dump
  leaves it as it was, so a newer dump does not rewrite the pages of the
  child tables it hardly changes. Rows it does not carry are left as they
  are.

Two ways to write a table: into a table that is empty, or small next to
what the dump brings, its secondary indexes and full-text triggers are
dropped first and built once at the end (by sorting), inside the same
transaction; otherwise the stored rows are read in key order (on a second
connection, from the snapshot before the merge) beside the staged ones, and
only differences are written: a new row, a changed row, a refreshed entity
stamp, a dropped child row.
"""

from __future__ import annotations

import heapq
import itertools
import operator
import re
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator

import sqlite_utils

from harvester.dumps.runs import Section, merged
from harvester.dumps.staging import LINE_SHIFT, ColumnSets, parse_stream
from harvester.dumps.turns import TakingTurns
from harvester.errors import DatabaseError

if TYPE_CHECKING:
    from harvester.dumps.lookups import SetLookups

STAMP_COLUMNS = ("fetched_at", "source")
# a table holding fewer rows than this share of what the dump stages for it
# gets its indexes and full-text index rebuilt rather than kept up to date
REBUILD_BELOW = 0.5
WINDOW = 20_000  # rows per round of writes (each kind of write in key order)
_CONTENT = re.compile(r"content\s*=\s*[\[\"'`]?([A-Za-z0-9_]+)", re.IGNORECASE)
_FIRST = operator.itemgetter(0)


class MergeError(DatabaseError):
    """The stored rows do not come in the order the merge needs (a key
    column holding values of another type than the staged ones)."""


@dataclass
class TableChanges:
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    def as_json(self) -> dict:
        return {"new": self.new, "updated": self.updated, "unchanged": self.unchanged, "deleted": self.deleted}


@dataclass
class TableStage:
    """One table's staged streams: its rows, and its named sets per set key."""

    name: str
    rows: list[Section] = field(default_factory=list)
    sets: dict[tuple[str, ...], list[Section]] = field(default_factory=dict)


def table_stages(chunks: list[dict[str, Section]]) -> dict[str, TableStage]:
    stages: dict[str, TableStage] = {}
    for sections in chunks:
        for stream, section in sections.items():
            kind, table, columns = parse_stream(stream)
            stage = stages.setdefault(table, TableStage(table))
            if not section.records:
                continue
            if kind == "rows":
                stage.rows.append(section)
            else:
                stage.sets.setdefault(columns, []).append(section)
    return stages


def is_prefix(columns: tuple[str, ...], key: tuple[str, ...]) -> bool:
    return key[:len(columns)] == columns


class _Shape:
    """How a table's staged records become its rows."""

    def __init__(self, db: sqlite_utils.Database, table: str, key: tuple[str, ...], column_sets: ColumnSets,
                 stamp: dict[str, str], stamps_carried: bool):
        self.table, self.key = table, key
        self.stamps_carried = stamps_carried  # an entity table: an unchanged row carried takes the stamps too
        self.columns = [row[1] for row in db.execute(f"PRAGMA table_info([{table}])")]
        position = {column: index for index, column in enumerate(self.columns)}
        self.single = len(key) == 1
        self.key_index = [position[c] for c in key]
        self.stamp_index = [position[c] for c in STAMP_COLUMNS if c in position]
        self.data_index = [i for i, c in enumerate(self.columns) if c not in STAMP_COLUMNS]
        self.data_of = operator.itemgetter(*self.data_index)
        self.stamps = {position[c]: stamp[c] for c in STAMP_COLUMNS if c in position}
        self.empty = [None] * len(self.columns)
        for index, value in self.stamps.items():
            self.empty[index] = value
        self.fill: list[Callable] = []  # a staged row + pad -> the table's row
        self.set_fill: list[Callable] = []  # a set's member ([column set, values...]) + pad -> the row
        self.overlay: list[list[tuple[int, int]]] = []
        self.pads: list[tuple] = []
        for number, _ in enumerate(column_sets.sets.get(table, ())):
            staged = column_sets.staged_columns(table, number)
            unknown = [c for c in staged if c not in position]
            if unknown:
                raise sqlite3.OperationalError(f"table {table} has no column named {unknown[0]}")
            where = {c: 3 + i for i, c in enumerate(staged)}
            if self.single:
                where[key[0]] = 0
            pad = 3 + len(staged)  # record + (None, fetched_at, source)
            picks = [where.get(c, pad + 1 + STAMP_COLUMNS.index(c) if c in STAMP_COLUMNS else pad)
                     for c in self.columns]
            self.fill.append(operator.itemgetter(*picks))
            self.overlay.append([(position[c], i) for c, i in where.items()])
            given = {c: 1 + i for i, c in enumerate(column_sets.sets[table][number])}
            pad = 1 + len(given)
            self.set_fill.append(operator.itemgetter(*(
                given.get(c, pad + 1 + STAMP_COLUMNS.index(c) if c in STAMP_COLUMNS else pad) for c in self.columns)))
        self.pad = [None, stamp["fetched_at"], stamp["source"]]

    def stored_key(self, values: tuple) -> Any:
        """A stored row's key as staged keys come back from the runs (a list for a composite key)."""
        if self.single:
            return values[self.key_index[0]]
        return ["" if values[i] is None else values[i] for i in self.key_index]  # as staging.null_free


def secondary_objects(db: sqlite_utils.Database, table: str) -> list[tuple[str, str, str]]:
    """(type, name, sql) of the indexes and triggers of a table (not its key's own index)."""
    return [tuple(row) for row in db.execute(
        "SELECT type, name, sql FROM sqlite_master WHERE tbl_name = ? AND type IN ('index', 'trigger') "
        "AND sql IS NOT NULL ORDER BY type, name", [table])]


def full_text_tables(db: sqlite_utils.Database, table: str) -> list[str]:
    """Full-text tables whose content is `table` (external content, rebuilt from it)."""
    found = []
    for name, sql in db.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table' "
                                "AND sql LIKE 'CREATE VIRTUAL TABLE%'"):
        match = _CONTENT.search(sql or "")
        if match and match.group(1) == table:
            found.append(name)
    return found


NEW_PREFIX = "_mbharvest_new_"  # a table being built beside the one it will replace
_CREATE_TABLE = re.compile(r"^\s*CREATE\s+TABLE\s+(\"[^\"]+\"|\[[^\]]+\]|`[^`]+`|\S+)", re.IGNORECASE)


def new_tables(db: sqlite_utils.Database) -> list[str]:
    """Tables being built beside the ones they replace (left by a merge that died)."""
    return [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")
            if name.startswith(NEW_PREFIX)]


class Merge:
    """Merges one staged dump into the database.

    A table that is empty, or small next to what the dump brings for it, is
    *rebuilt*: `build` writes its new content (stored rows and staged ones
    merged) into a table of its own beside it, in committed pieces (a WAL
    of bounded size, checkpointed as it goes), and `swap` replaces the old
    table with it inside the final transaction, building its indexes and
    full-text index by sorting. Any other table is merged *in place* by
    `table`, inside the final transaction: only differences are written.
    (One transaction that writes a whole database is what the rebuild
    avoids: SQLite then spills pages it changes again, and at commit it
    rewrites every WAL frame after the first such page.)"""

    def __init__(self, db: sqlite_utils.Database, snapshot: sqlite3.Connection, column_sets: ColumnSets,
                 keys: dict[str, tuple[str, ...]], stamp: dict[str, str], entity_tables: frozenset[str],
                 partial: dict[str, int], lookups: "SetLookups", progress: Callable[[str, int], None] | None = None):
        self.db, self.snapshot = db, snapshot
        self.column_sets, self.keys, self.stamp = column_sets, keys, stamp
        self.entity_tables = entity_tables  # whose unchanged rows the dump stamps (see the module's rules)
        self.partial = partial
        self.lookups = lookups
        self.progress = progress
        self.changes: dict[str, TableChanges] = {}

    def rebuilds(self, stage: TableStage) -> bool:
        """Whether the table is rebuilt beside (rather than merged in place)."""
        staged = sum(section.records for section in stage.rows) + sum(
            section.records for sections in stage.sets.values() for section in sections)
        stored = self.db.execute(f"SELECT max(rowid) FROM [{stage.name}]").fetchone()[0] or 0
        return stored < staged * REBUILD_BELOW

    def build(self, stage: TableStage, commit_rows: int, turns: TakingTurns | None = None) -> TableChanges:
        """The table's new content into NEW_PREFIX + table, committed every
        `commit_rows` rows or so (the caller records that it is built); with
        `turns` (another process writing the database meanwhile), every
        window of rows in a write transaction of its own, taken in turn."""
        target = NEW_PREFIX + stage.name
        sql = self.db.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?",
                              [stage.name]).fetchone()[0]
        with turns.transaction(self.db.conn) if turns is not None else write_transaction(self.db):
            self.db.execute(f"DROP TABLE IF EXISTS [{target}]")
            self.db.execute(_CREATE_TABLE.sub(lambda _: f"CREATE TABLE [{target}]", sql, count=1))
        changes = self.changes[stage.name] = TableChanges()
        self._write(stage, _Writer(self.db, self._shape(stage.name), changes, target, commit_rows, turns))
        return changes

    def swap(self, table: str) -> None:
        """Replace `table` by its rebuilt copy, with its indexes, triggers and
        full-text index (inside the caller's transaction, `legacy_alter_table`
        on: views and other tables name the table, not the copy)."""
        objects = secondary_objects(self.db, table)
        self.db.execute(f"DROP TABLE [{table}]")
        self.db.execute(f"ALTER TABLE [{NEW_PREFIX + table}] RENAME TO [{table}]")
        for kind, _, sql in objects:
            if kind == "index":
                self.db.execute(sql)
        for fts in full_text_tables(self.db, table):
            self.db.execute(f"INSERT INTO [{fts}] ([{fts}]) VALUES ('rebuild')")
        for kind, _, sql in objects:
            if kind == "trigger":
                self.db.execute(sql)

    def table(self, stage: TableStage) -> TableChanges:
        """Merge the table in place (inside the caller's transaction)."""
        changes = self.changes[stage.name] = TableChanges()
        self._write(stage, _Writer(self.db, self._shape(stage.name), changes))
        return changes

    def _shape(self, table: str) -> _Shape:
        return _Shape(self.db, table, self.keys[table], self.column_sets, self.stamp, table in self.entity_tables)

    def _write(self, stage: TableStage, writer: "_Writer") -> None:
        shape = writer.shape
        stored = self.db.execute(f"SELECT 1 FROM [{stage.name}] LIMIT 1").fetchone() is not None
        leading = [sections for columns, sections in stage.sets.items() if is_prefix(columns, shape.key)]
        others = [columns for columns in stage.sets if not is_prefix(columns, shape.key)]
        with writer:
            if not stored and not others and not stage.rows and len(leading) == 1:
                self._insert_sets(shape, stage, leading[0], writer)
            elif not stored and not leading and (not others or self._other_sets(shape, stage, others).trivial):
                self._insert(shape, stage, writer, complete=bool(others))
            else:
                staged_rows = heapq.merge(merged(stage.rows), *(self._expand(shape, sections) for sections in leading))
                groups = ((key, list(versions)) for key, versions in itertools.groupby(staged_rows, _FIRST))
                self._merge(shape, stage, groups, self._stored(shape, stage) if stored else iter(()), writer)

    def _insert(self, shape: _Shape, stage: TableStage, writer: "_Writer", complete: bool) -> None:
        """Rows of a table with nothing stored and no set keyed by a leading
        part of its key, each key's copies folded, in key order. `complete`:
        every copy comes from a line naming its set, and no set is named twice."""
        fill, pad = shape.fill, shape.pad
        every = (lambda record: True) if complete else None
        count = 0
        inserts = writer.inserts
        for _, versions in itertools.groupby(merged(stage.rows), _FIRST):
            record = next(versions)
            following = list(versions)
            if not following:
                inserts.append(fill[record[2]](record + pad))
            else:
                inserts.append(self._fold(shape, shape.empty, [record, *following], -1, every))
            count += 1
            if len(inserts) >= WINDOW:
                inserts = writer.flush(new=len(inserts))
                self._report(stage.name, count)
        writer.flush(new=len(inserts))

    def _insert_sets(self, shape: _Shape, stage: TableStage, sections: list[Section], writer: "_Writer") -> None:
        """A table with nothing stored whose rows all come in sets keyed by a
        leading part of its key (credit names, ISRCs, media): each set's last
        naming's rows, in key order."""
        set_fill, pad = shape.set_fill, shape.pad
        entries: dict[int, Callable] = {}
        inserts = writer.inserts
        count = 0
        for _, group in itertools.groupby(merged(sections), _FIRST):
            for record in group:
                pass
            members = record[2]
            if len(members) > 1:
                keyed = []
                for member in members:
                    key_of = entries.get(member[0])
                    if key_of is None:
                        key_of = entries[member[0]] = self.column_sets.entry(shape.table, member[0])[1]
                    keyed.append((key_of(member[1:]), member))
                keyed.sort(key=_FIRST)
                if any(keyed[i][0] == keyed[i + 1][0] for i in range(len(keyed) - 1)):
                    self._insert_folded(shape, record, writer)
                    continue
                members = [member for _, member in keyed]
            for member in members:
                inserts.append(set_fill[member[0]](member + pad))
            count += 1
            if len(inserts) >= WINDOW:
                inserts = writer.flush(new=len(inserts))
                self._report(stage.name, count)
        writer.flush(new=len(inserts))

    def _insert_folded(self, shape: _Shape, record: list, writer: "_Writer") -> None:
        """A set whose line gave one of its rows more than once: the copies folded."""
        expanded = self._expand(shape, [record], staged=True)
        next(expanded)  # the marker
        for _, versions in itertools.groupby(expanded, _FIRST):
            writer.inserts.append(self._fold(shape, shape.empty, list(versions), record[1]))

    def _fold(self, shape: _Shape, base: list | tuple, versions: list, last_named: int,
              complete_line: Callable[[list], bool] | None = None) -> list:
        """A key's row: `base` with each surviving copy's columns laid over it,
        in line order; a copy from a line naming the row's set starts afresh."""
        row = list(base)
        line_seen = -1
        overlay, empty = shape.overlay, shape.empty
        for record in versions:
            line = record[1] >> LINE_SHIFT
            complete = line == last_named or (complete_line is not None and complete_line(record))
            if complete and line != line_seen:
                row = list(empty)
            line_seen = line
            for index, at in overlay[record[2]]:
                row[index] = record[at]
        for index, value in shape.stamps.items():
            row[index] = value
        return row

    def _expand(self, shape: _Shape, sections: list, staged: bool = False) -> Iterator[list]:
        """A table's staged sets keyed by a leading part of its key, as the
        merge reads them: per set, a marker [set key, last line naming it],
        then the rows that line gave the set, as staged rows in key order.
        Rows earlier lines gave the set are dropped here: the last wins.
        `staged`: `sections` are set records already read."""
        entries = {}
        for _, last in itertools.groupby(sections if staged else merged(sections), _FIRST):
            for record in last:
                pass
            set_key, line, members = record
            yield [set_key, line]
            rows = []
            place = line << LINE_SHIFT
            for member in members:
                number = member[0]
                entry = entries.get(number)
                if entry is None:
                    entry = entries[number] = self.column_sets.entry(shape.table, number)
                _, key_of, kept = entry
                values = member[1:]
                key = key_of(values)
                rows.append([key if shape.single else list(key), place, number, *kept(values)])
                place += 1
            rows.sort(key=_FIRST)
            yield from rows

    def _stored(self, shape: _Shape, stage: TableStage) -> Iterator[tuple]:
        """The table's rows before the merge, in key order: (key, rowid, values,
        whether one of its sets keyed otherwise than by a key prefix is named),
        asked of the set lookups in memory, or of their file in the query."""
        columns = ", ".join(f"t.[{c}]" for c in shape.columns)
        others = [set_columns for set_columns in stage.sets if not is_prefix(set_columns, shape.key)]
        in_memory = [([shape.columns.index(c) for c in set_columns], self.lookups.getter(stage.name, set_columns))
                     for set_columns in others if self.lookups.in_memory(stage.name, set_columns)]
        extra = "".join(f", ({self.lookups.sql(stage.name, set_columns, 't')}) IS NOT NULL"
                        for set_columns in others if not self.lookups.in_memory(stage.name, set_columns))
        order = ", ".join(f"t.[{c}]" for c in shape.key)
        width = len(shape.columns)
        previous = None
        for row in self.snapshot.execute(f"SELECT t.rowid, {columns}{extra} FROM [{stage.name}] t ORDER BY {order}"):
            values = row[1:1 + width]
            key = shape.stored_key(values)
            try:
                ordered = previous is None or previous < key
            except TypeError:
                ordered = False
            if not ordered:
                raise MergeError(f"{stage.name}: stored keys of another type than the staged ones, or not in "
                                 f"their order ({previous!r}, then {key!r})")
            previous = key
            yield key, row[0], values, any(row[1 + width:]) or any(
                last_of([values[i] for i in positions]) is not None for positions, last_of in in_memory)

    def _merge(self, shape: _Shape, stage: TableStage, groups, olds, writer: "_Writer") -> None:
        """Staged copies beside stored rows and named sets, key by key."""
        try:
            with self.lookups.read_transaction():
                self._merge_keys(shape, stage, groups, olds, writer)
        except TypeError as exc:  # a staged key against a stored one of another type
            raise MergeError(f"{stage.name}: stored keys of another type than the staged ones ({exc})") from None

    def _merge_keys(self, shape: _Shape, stage: TableStage, groups, olds, writer: "_Writer") -> None:
        # the set being merged per set key length (a leading part of the key):
        # [set key, last line naming it], from the markers in the staged stream
        naming: dict[int, list] = {}
        other_sets = [columns for columns in stage.sets if not is_prefix(columns, shape.key)]
        other = self._other_sets(shape, stage, other_sets) if other_sets else None
        fill, pad = shape.fill, shape.pad
        group = next(groups, None)
        old = next(olds, None)
        count = 0
        while group is not None or old is not None:
            if old is None or (group is not None and group[0] < old[0]):
                key, versions, stored = group[0], group[1], None
                group = next(groups, None)
            elif group is None or old[0] < group[0]:
                key, versions, stored = old[0], (), old
                old = next(olds, None)
            else:
                key, versions, stored = group[0], group[1], old
                group, old = next(groups, None), next(olds, None)
            if versions and len(versions[0]) == 2:  # markers: the sets starting here
                for marker in [record for record in versions if len(record) == 2]:
                    naming[0 if shape.single else len(marker[0])] = marker
                versions = [record for record in versions if len(record) > 2]
                if not versions and stored is None:
                    continue
            last_named = -1
            for size, (set_key, line) in naming.items():
                if (key[:size] if size else key) == set_key and line > last_named:
                    last_named = line
            if last_named >= 0:  # copies from before the last naming of their set are dropped
                versions = [record for record in versions if record[1] >> LINE_SHIFT >= last_named]
            complete_line = None
            if other is not None:
                versions, complete_line = other.judge(versions)
            in_named_set = last_named >= 0 or (stored is not None and stored[3])
            if versions:
                if stored is None or in_named_set:
                    if len(versions) == 1 and other is None:
                        record = versions[0]
                        row = fill[record[2]](record + pad)
                    else:
                        row = self._fold(shape, shape.empty, versions, last_named, complete_line)
                else:
                    row = self._fold(shape, stored[2], versions, last_named, complete_line)
                writer.put(row, stored)
            elif stored is not None and in_named_set:
                writer.delete(stored)
            elif stored is not None:
                writer.keep(stored)
            count += 1
            if count % WINDOW == 0:
                self._report(stage.name, count)

    def _other_sets(self, shape: _Shape, stage: TableStage, other_sets: list) -> "_OtherSets":
        return _OtherSets(shape, self.column_sets, stage.name, other_sets, self.lookups,
                          trivial=not self.partial.get(stage.name) and not any(
                              self.lookups.repeated(stage.name, columns) for columns in other_sets))

    def _report(self, table: str, count: int) -> None:
        if self.progress is not None:
            self.progress(table, count)


class _OtherSets:
    """Named sets of a table keyed outside its key (a release's tracks: a
    track is keyed by its own id). Without a set named twice and with every
    staged row from a line naming its set, each staged row is its set's last
    naming's (`trivial`); otherwise each row's set is looked up."""

    def __init__(self, shape: _Shape, column_sets: ColumnSets, table: str, other_sets: list,
                 lookups: "SetLookups", trivial: bool):
        self.trivial = trivial
        self.getters: list[tuple[Callable, dict]] = []
        if trivial:
            return
        for columns in other_sets:
            last_of = lookups.getter(table, columns)
            per_set = {}
            for number, _ in enumerate(column_sets.sets.get(table, ())):
                staged = column_sets.staged_columns(table, number)
                per_set[number] = [3 + staged.index(c) if c in staged else None for c in columns]
            self.getters.append((last_of, per_set))

    def _lasts(self, record: list) -> list[int]:
        found = []
        for last_of, per_set in self.getters:
            key = [record[at] if at is not None else None for at in per_set[record[2]]]
            last = last_of(key)
            if last is not None:
                found.append(last)
        return found

    def judge(self, versions: list) -> tuple[list, Callable[[list], bool]]:
        """The copies of a key whose line is not before their set's last
        naming, and whether a copy's line names its set (each copy's sets
        looked up once)."""
        if self.trivial:
            return versions, _always
        surviving, naming = [], set()
        for record in versions:
            line = record[1] >> LINE_SHIFT
            lasts = self._lasts(record)
            if all(line >= last for last in lasts):
                surviving.append(record)
                if any(line == last for last in lasts):
                    naming.add(id(record))
        return surviving, lambda record: id(record) in naming


def _always(record: list) -> bool:
    return True


class _Writer:
    """Writes a table's rows in key order, a window of rows at a time, on the
    merging thread. (Not on a thread of its own: SQLite releases the GIL for
    each row it writes, and the folding thread, holding it meanwhile, made
    each row wait for it; with two processes taking turns, the write lock
    was held that much longer.)

    In place (no `target`): new rows, changed rows, refreshed stamps and
    dropped rows, inside the caller's transaction. Into `target` (a rebuilt
    table): every row of the new content, in transactions of its own of
    about `commit_rows` rows, or each window in a transaction of its own
    when it takes `turns` with another process."""

    def __init__(self, db: sqlite_utils.Database, shape: _Shape, changes: TableChanges, target: str | None = None,
                 commit_rows: int = 0, turns: TakingTurns | None = None):
        self.db, self.shape, self.changes = db, shape, changes
        self.target, self.commit_rows, self.turns = target, commit_rows, turns
        table = target or shape.table
        listed = ", ".join(f"[{c}]" for c in shape.columns)
        self.insert_sql = f"INSERT INTO [{table}] ({listed}) VALUES ({', '.join('?' for _ in shape.columns)})"
        written = shape.data_index + shape.stamp_index
        self.update_of = operator.itemgetter(*written)
        self.update_sql = (f"UPDATE [{table}] SET {', '.join(f'[{shape.columns[i]}] = ?' for i in written)} "
                           "WHERE rowid = ?")
        self.stamp_of = operator.itemgetter(*shape.stamp_index) if shape.stamp_index else None
        self.stamp_sql = (f"UPDATE [{table}] SET "
                          f"{', '.join(f'[{shape.columns[i]}] = ?' for i in shape.stamp_index)} WHERE rowid = ?")
        self.delete_sql = f"DELETE FROM [{table}] WHERE rowid = ?"
        self.inserts: list = []
        self.updates: list = []
        self.stamps: list = []
        self.deletes: list = []
        self._uncommitted = 0

    def __enter__(self) -> "_Writer":
        return self

    def __exit__(self, kind, error, trace) -> None:
        if kind is None:
            self.flush()
        if self.target is not None and self.turns is None:  # its own transactions of about commit_rows rows
            if kind is None:
                self.db.conn.commit()
            else:  # not recorded as built: a rerun drops the table
                self.db.conn.rollback()

    def _write(self, window: list[tuple[str, list]]) -> None:
        conn = self.db.conn
        if self.turns is not None:
            with self.turns.transaction(conn):
                for sql, rows in window:
                    conn.executemany(sql, rows)
            return
        for sql, rows in window:
            conn.executemany(sql, rows)
            self._uncommitted += len(rows)
        if self.target is not None and self._uncommitted >= self.commit_rows:
            conn.commit()
            self._uncommitted = 0

    def put(self, row: Any, stored: tuple | None) -> None:
        if stored is None:
            self.inserts.append(row)
            self.changes.new += 1
        else:
            data_of = self.shape.data_of
            changed = data_of(stored[2]) != data_of(row)
            if changed:
                self.changes.updated += 1
            else:
                self.changes.unchanged += 1
                if not self.shape.stamps_carried:
                    row = stored[2]  # a child row as it was keeps its stamps: its page is not rewritten
            if self.target is not None:
                self.inserts.append(row)
            elif changed:
                self.updates.append((*self.update_of(row), stored[1]))
            elif self.stamp_of is not None and self.stamp_of(stored[2]) != self.stamp_of(row):
                stamps = self.stamp_of(row)
                self.stamps.append((*stamps, stored[1]) if isinstance(stamps, tuple) else (stamps, stored[1]))
        if len(self.inserts) + len(self.updates) + len(self.stamps) >= WINDOW:
            self.flush()

    def keep(self, stored: tuple) -> None:
        """A stored row the dump does not touch: copied into a rebuilt table as it is."""
        if self.target is not None:
            self.inserts.append(stored[2])
            if len(self.inserts) >= WINDOW:
                self.flush()

    def delete(self, stored: tuple) -> None:
        self.changes.deleted += 1
        if self.target is None:
            self.deletes.append((stored[1],))

    def flush(self, new: int = 0) -> list:
        """Write the window; returns the list new inserts go to.
        `new`: inserts added to the list directly, to count."""
        self.changes.new += new
        window = [(sql, rows) for sql, rows in ((self.delete_sql, self.deletes), (self.update_sql, self.updates),
                                                (self.stamp_sql, self.stamps), (self.insert_sql, self.inserts))
                  if rows]
        if window:
            self._write(window)
            self.inserts, self.updates, self.stamps, self.deletes = [], [], [], []
        return self.inserts


@contextmanager
def write_transaction(db: sqlite_utils.Database) -> Iterator[None]:
    """One write transaction (BEGIN IMMEDIATE): committed whole or not at all."""
    db.execute("BEGIN IMMEDIATE")
    try:
        yield
    except BaseException:
        db.conn.rollback()
        raise
    db.conn.commit()
