"""A dump's whole stage into the database: the tables rebuilt beside, then one transaction.

Tables rebuilt beside (merge.py decides which) are written first, each in
transactions of its own and recorded as built in the stage, so a rerun after
a kill skips it (with --processes 2 or more, a second process builds those
that need no set lookups meanwhile: build_process.py); then one transaction
merges the other tables in place, swaps the rebuilt ones in, recounts their
summaries and says where the import stands: readers see all of it or none.
"""

from __future__ import annotations

import itertools
import json
import logging
import shutil
import sqlite3
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Callable, Iterator

import sqlite_utils

from harvester.dumps import build_process
from harvester.dumps.build_process import BuildJob, BuildProcess
from harvester.dumps.lookups import SetLookups
from harvester.dumps.manifest import Stage, table_keys
from harvester.dumps.merge import (NEW_PREFIX, Merge, TableChanges, is_prefix, new_tables, table_stages,
                                   write_transaction)
from harvester.dumps.parallel import bytes_written
from harvester.dumps.turns import TakingTurns, create_flags
from harvester.normalize import TABLE_OF
from harvester.store import PRIMARY_KEYS, utc_now
from harvester.views import rebuild_summaries

log = logging.getLogger(__name__)

ENTITY_TABLES = frozenset(TABLE_OF.values())
# A table rebuilt beside its old self commits every quarter of the memory
# budget's worth of rows (about ROW_BYTES each), at least WINDOW_ROWS: the WAL
# stays that small, checkpointed after each commit. Two processes building
# commit every window instead, and checkpoint as seldom.
ROW_BYTES = 200
WINDOW_ROWS = 20_000


def database_file(db: sqlite_utils.Database) -> Path | None:
    """The database's file (None in memory)."""
    name = db.execute("PRAGMA database_list").fetchone()[2]
    return Path(name) if name else None


@contextmanager
def _merge_step(entity_type: str, what: str) -> Iterator[None]:
    """Log how long one merge step took and what it wrote (-vv, --log-file):
    where a merge's time and disk writes go, per table."""
    started, before = time.monotonic(), bytes_written()
    yield
    after = bytes_written()
    _log_step(entity_type, what, time.monotonic() - started,
              after - before if before is not None and after is not None else None)


def _log_step(entity_type: str, what: str, seconds: float, written: int | None) -> None:
    log.info("%s merge, %s: %.1f s%s", entity_type, what, seconds,
             f", {written / 1e6:,.0f} MB written" if written is not None else "")


def _table_order(table: str) -> tuple[int, str]:
    order = list(PRIMARY_KEYS)
    return (order.index(table) if table in order else len(order), table)


class StageMerge:
    """Merges one stage; `save(status)` records the stage as it stands (after
    each table built beside, and `failed` when the merge fails)."""

    def __init__(self, db: sqlite_utils.Database, stage: Stage, key: dict, stamp: dict, *, memory_mb: int,
                 cache_share: float, lookups_share: float, save: Callable[[str], None],
                 check_stop: Callable[[], None],
                 merging: Callable[[str], None] | None, processes: int = 1):
        self.db, self.stage, self.key, self.stamp = db, stage, key, stamp
        self.memory_mb, self.cache_share, self.lookups_share = memory_mb, cache_share, lookups_share
        self.processes = processes  # more than 1: a second process may build tables beside (build_process.py)
        self.save, self.check_stop, self.merging = save, check_stop, merging
        self.changes: dict[str, TableChanges] = {}
        self.written = 0  # entity rows the dump carried
        # while tables are built beside: the second process, the tables it may still be given
        self.helper: BuildProcess | None = None
        self.shared: list[str] = []

    def run(self, status: str) -> Stage:
        """Merge every staged chunk; the import's row then says `status`.
        Returns what is left of the stage: its position, nothing to merge."""
        stages = table_stages(self.stage.chunks)
        db_path = database_file(self.db)
        snapshot = sqlite3.connect(str(db_path) if db_path else ":memory:", check_same_thread=False)
        cache_kib = int((self.memory_mb << 10) * self.cache_share)
        lookups = SetLookups(self.stage.folder / "named.db", [self.db.conn, snapshot], cache_kib,
                             int((self.memory_mb << 20) * self.lookups_share))
        pragmas = {name: self.db.execute(f"PRAGMA {name}").fetchone()[0]
                   for name in ("cache_size", "threads", "legacy_alter_table")}
        commit_rows = max(WINDOW_ROWS, (self.memory_mb << 20) // 4 // ROW_BYTES)
        try:
            with self._failed_if_raising():
                self._merge(stages, snapshot, lookups, commit_rows, cache_kib, status)
        finally:
            lookups.close()
            snapshot.close()
            self.db.execute("PRAGMA temp_store_directory = ''")
            for name, value in pragmas.items():
                self.db.execute(f"PRAGMA {name} = {value}")
        for chunk in self.stage.folder.glob("chunk-*.run"):
            chunk.unlink()
        if status == "complete":
            shutil.rmtree(self.stage.folder, ignore_errors=True)
        return self.stage.merged()

    @contextmanager
    def _failed_if_raising(self) -> Iterator[None]:
        """A merge that fails is rolled back; the import's row then says failed
        (when the database still takes a write; its stage is kept either way)."""
        try:
            yield
        except BaseException:
            try:
                self.save("failed")
            except sqlite3.Error:
                pass
            raise

    def _shared_tables(self, todo: list[str], stages: dict) -> list[str]:
        """The tables either process may build, the largest first: those that
        need no set lookups (every set keyed by a leading part of the table's
        key), when the importer has tables of its own to build and a second
        process is worth its start (none otherwise)."""
        keys = table_keys()
        shared = [table for table in todo if all(is_prefix(columns, keys[table]) for columns in stages[table].sets)]
        records = {table: sum(section.records for section in itertools.chain(
            stages[table].rows, *stages[table].sets.values())) for table in shared}
        if (self.processes < 2 or len(shared) == len(todo) or database_file(self.db) is None
                or sum(records.values()) < build_process.SECOND_PROCESS_RECORDS):
            return []
        return sorted(shared, key=lambda table: -records[table])

    def _tend(self, wait: float = 0.0) -> bool:
        """Hear the table the second process has built, if it has (waiting up
        to `wait` seconds), and give it the next one; True when one was built."""
        if self.helper is None:
            return False
        done = self.helper.finished(wait)
        if done is not None:
            _log_step(self.key["entity_type"], f"{done.table} built beside by the second process",
                      done.seconds, done.written)
            self.stage.built[done.table] = done.changes
        if self.helper.building is None and self.shared:
            self.helper.give(self.shared.pop(0))
        return done is not None

    def _save_built(self, turns: TakingTurns | None) -> None:
        """Record the tables built so far (the second process may be writing: in turns)."""
        if turns is None:
            self.save("running")
        else:
            with turns.transaction(self.db.conn):
                self.save("running")

    def _build_beside(self, merge: Merge, stages: dict, todo: list[str], lookups: SetLookups, commit_rows: int,
                      cache_kib: int) -> None:
        """Build the tables `todo` beside, the set lookups first; with a second
        process, the importer's own tables, then whichever shared one is next."""
        entity_type, stage, merging, built = self.key["entity_type"], self.stage, self.merging, self.stage.built
        self.shared = self._shared_tables(todo, stages)
        own = [table for table in todo if table not in self.shared]
        turns = None
        autocheckpoint = self.db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
        if self.shared:
            checkpoint_pages = commit_rows * ROW_BYTES // self.db.execute("PRAGMA page_size").fetchone()[0]
            flags = create_flags(stage.folder / "turns")
            turns = TakingTurns(flags, 0)
            self.helper = BuildProcess(BuildJob(str(database_file(self.db)), stage.as_json(), self.stamp,
                                                ENTITY_TABLES, commit_rows, cache_kib // 2, checkpoint_pages,
                                                str(flags)))
            self.helper.give(self.shared.pop(0))
            self.db.execute(f"PRAGMA wal_autocheckpoint = {checkpoint_pages}")
        try:
            with _merge_step(entity_type, "set lookups"):
                lookups.build(stages, table_keys(), frozenset(t for t, n in stage.counts.partial.items() if n))
            self.db.execute(f"PRAGMA cache_size = -{cache_kib // 2 if self.helper is not None else cache_kib}")
            while own or self.shared or (self.helper is not None and self.helper.building is not None):
                self.check_stop()
                if own or self.shared:
                    table = own.pop(0) if own else self.shared.pop(0)
                    if merging is not None:
                        merging(f"{table}: building")
                    with _merge_step(entity_type, f"{table} built beside"):
                        built[table] = merge.build(stages[table], commit_rows, turns).as_json()
                    self._tend()
                elif not self._tend(wait=1.0):
                    if merging is not None:
                        merging(f"{self.helper.building}: building in a second process")
                    continue
                self._save_built(turns)
        finally:
            if self.helper is not None:
                self.helper.close()
                self.helper = None
            if turns is not None:
                turns.close()
                self.db.execute(f"PRAGMA wal_autocheckpoint = {autocheckpoint}")
        if turns is not None:  # the WAL checkpointed, as one process leaves it after its last table
            self.db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def _merge(self, stages: dict, snapshot: sqlite3.Connection, lookups: SetLookups, commit_rows: int,
               cache_kib: int, status: str) -> None:
        entity_type, stage, merging = self.key["entity_type"], self.stage, self.merging
        self.db.execute("PRAGMA threads = 0")  # the index sorts: no helper threads, each needing as much memory
        self.db.execute(f"PRAGMA temp_store_directory = '{str(stage.folder).replace(chr(39), chr(39) * 2)}'")

        def report(table: str, keys: int) -> None:
            self.check_stop()  # every window: between two, nothing is being written
            self._tend()  # recorded in the database after the table
            if merging is not None:
                merging(f"{table}: {keys:,} keys")

        merge = Merge(self.db, snapshot, stage.column_sets, table_keys(), self.stamp, ENTITY_TABLES,
                      stage.counts.partial, lookups, report)
        order = sorted(stages, key=_table_order)
        built = stage.built
        for leftover in new_tables(self.db):
            if leftover[len(NEW_PREFIX):] not in built:
                self.db.execute(f"DROP TABLE [{leftover}]")
        present = set(new_tables(self.db))
        for table in [table for table in built if NEW_PREFIX + table not in present]:
            del built[table]
        rebuilt = [table for table in order if table in built or merge.rebuilds(stages[table])]
        todo = [table for table in rebuilt if table not in built]
        self._build_beside(merge, stages, todo, lookups, commit_rows, cache_kib)
        self.db.execute(f"PRAGMA cache_size = -{cache_kib}")
        self.db.execute("PRAGMA legacy_alter_table = ON")  # a swap renames a table: views name it, not its copy
        # the steps below, then the commit, which checkpoints the WAL into the database
        with _merge_step(entity_type, "the transaction, its commit included"), write_transaction(self.db):
            for table in order:
                self.check_stop()  # rolls the transaction back: the database stays as it was
                if merging is not None:
                    merging(table)
                if table in built:
                    with _merge_step(entity_type, f"{table} swapped in"):
                        merge.swap(table)
                    merge.changes[table] = TableChanges(**built[table])
                else:
                    with _merge_step(entity_type, f"{table} merged in place"):
                        merge.table(stages[table])
            # a table built beside never fired the summary triggers: its summaries are recounted
            with _merge_step(entity_type, "summaries recounted"):
                rebuild_summaries(self.db, set(built))
            now = utc_now()
            written = sum(c.new + c.updated + c.unchanged for t, c in merge.changes.items() if t in ENTITY_TABLES)
            self.db.execute(
                "UPDATE dump_import SET status = ?, lines_committed = ?, lines_staged = ?, lines_skipped = ?, "
                "stage = ?, changes = ?, entities_written = entities_written + ?, updated_at = ?, "
                "finished_at = ? WHERE entity_type = ? AND dump_timestamp = ? AND size_bytes = ?",
                [status, stage.lines, stage.lines, stage.skipped,
                 stage.merged().as_json() if status != "complete" else None,
                 json.dumps({t: c.as_json() for t, c in sorted(merge.changes.items())}), written, now,
                 now if status == "complete" else None,
                 self.key["entity_type"], self.key["dump_timestamp"], self.key["size_bytes"]])
        self.changes, self.written = merge.changes, written
