"""Import the MusicBrainz JSON data dumps: staged while read, merged once.

Every line goes through the same normalizer and CC0 filter as an API
response. An import has two steps, so that what a line costs does not
depend on how large the database already is:

1. Staging (staging.py): the lines' rows are buffered, sorted in memory a
   chunk at a time and written as compressed sorted runs to a staging folder
   (`--temp-dir`, by default `<database>.import/` beside the database). Each
   chunk is fsynced, then recorded with the position after its last line in
   `dump_import` (`lines_staged`, `stage`; manifest.py): an interrupted import resumes
   after its last chunk (a compressed stream cannot seek, so the lines before
   are read again and skipped without being parsed).
2. Merge (stage_merge.py, merge.py): once the last line is staged, every table's runs are
   merged in key order into the database in one transaction, together with
   the `dump_import` row saying `complete`. Readers see the old state or the
   new one; a merge that dies is rolled back and done again by the next run.
   Tables built beside (a first import) are shared with a second process
   (build_process.py) when --processes allows.

A dump stopped by a malformed line (without --skip-bad-lines) or a truncated
archive has the lines before it merged (as a partial merge; the status says
`failed`), so nothing read is lost; a rerun continues after them.
"""

from __future__ import annotations

import gc
import itertools
import json
import logging
import shutil
import sqlite3
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import orjson
import sqlite_utils

from harvester import ledger
from harvester.dumps.manifest import Stage, import_state, save_state, stage_name, table_keys
from harvester.dumps.merge import TableChanges
from harvester.dumps.parallel import (RANGE_BYTES_PER_CHUNK_BYTE, RangeJob, RangeResult, StagingProcesses,
                                      StagingSettings, describe_bad_line)
from harvester.dumps.reading import (DumpError, _open_parts, _Part, _readable, _Unreadable, dump_time, entity_of_file,
                                     is_archive, is_stream, open_raw)
from harvester.dumps.runs import Section
from harvester.dumps.stage_merge import ENTITY_TABLES, StageMerge, database_file
from harvester.dumps.staging import FILTER_ENTRY_BYTES, ChunkWriter, Stager
from harvester.errors import DatabaseError, HarvesterError, NormalizeError, UsageError, as_interrupted
from harvester.normalize import DUMP_ENTITY_TYPES, normalize_entity
from harvester.settings import DEFAULT_IMPORT_MEMORY_MB, DEFAULT_IMPORT_PROCESSES
from harvester.signals import stops_deferred
from harvester.store import describe_sqlite_error, utc_now

log = logging.getLogger(__name__)

# A chunk closes at whichever comes first: its share of the memory budget
# (see MEMORY_SHARES), `--batch-size` lines when given, or BATCH_SECONDS.
# An interrupted import loses at most the chunk it was reading.
BATCH_LINES = None
BATCH_SECONDS = 30.0
BAD_LINES_LISTED = 5
PROGRESS_SECONDS = 0.5
# How the memory budget is shared (measured: benchmarks/README.md). Staging:
# the rows of the chunk being read, and for a while those of the chunk being
# written; the repeat filter. Merge: SQLite's page cache, as much again for
# the set lookups' file (lookups.SetLookups) and for its sorts when it builds
# indexes; the set lookups held in memory (lookups.LastLines, 12 bytes a set:
# 6.5 M relationship target sets at a million release lines, ~35 M expected
# in the whole release dump, 455 MB). Python keeps most of what staging
# freed; the shares add up to about 95 % of the budget (the measured peak:
# benchmarks/README.md).
MEMORY_SHARES = {"chunk": 0.18, "filter": 0.07, "cache": 0.15, "lookups": 0.25}
# Disk needed, per byte of JSON lines (measured on generated release lines,
# 100,000 of 22.1 kB: 0.49 GB staged, a 2.11 GB database; see
# benchmarks/README.md): the staged runs, and what the merge adds to the
# database (its WAL holds as much again until the merge commits).
STAGED_PER_BYTE = 0.23
DATABASE_PER_BYTE = 0.95


@dataclass(frozen=True)
class Progress:
    """Where an import stands, for a progress display."""

    path: Path
    entity_type: str
    bytes_read: int
    bytes_total: int
    lines: int
    lines_this_run: int
    seconds: float
    phase: str = "staging"  # staging, then merging
    detail: str = ""


@dataclass
class DumpResult:
    """What importing one dump file did."""

    path: Path
    entity_type: str
    source: str
    status: str  # complete, partial, already-imported
    lines_read: int = 0
    lines_resumed_past: int = 0
    lines_normalized: int = 0
    entities_written: int = 0
    bad_lines: int = 0
    first_bad_lines: list[int] = field(default_factory=list)
    seconds: float = 0.0
    merge_seconds: float = 0.0
    changes: dict[str, TableChanges] = field(default_factory=dict)  # per table, from the merge

    @property
    def new(self) -> int:
        return self.entity_changes().new

    @property
    def updated(self) -> int:
        return self.entity_changes().updated

    @property
    def unchanged(self) -> int:
        return self.entity_changes().unchanged

    def entity_changes(self) -> TableChanges:
        """New, updated and unchanged rows of the entity tables (every dump type's: artist ... work)."""
        total = TableChanges()
        for table, changes in self.changes.items():
            if table in ENTITY_TABLES:
                total.new += changes.new
                total.updated += changes.updated
                total.unchanged += changes.unchanged
                total.deleted += changes.deleted
        return total

    def summary(self) -> str:
        rate = self.lines_normalized / self.seconds if self.seconds > 0 else 0.0
        text = (f"{self.path}: {self.entity_type} {self.source}: {self.status}; "
                f"{self.lines_normalized:,} lines imported in {self.seconds:.1f} s ({rate:,.0f}/s"
                f"{f', merge {self.merge_seconds:.1f} s' if self.merge_seconds else ''}), "
                f"{self.entities_written:,} entities written")
        if self.changes:
            total = self.entity_changes()
            text += f" ({total.new:,} new, {total.updated:,} updated, {total.unchanged:,} unchanged)"
        if self.lines_resumed_past:
            text += f", resumed after line {self.lines_resumed_past:,}"
        if self.bad_lines:
            text += f", {self.skipped_text()}"
        return text

    def skipped_text(self) -> str:
        first = ", ".join(str(n) for n in self.first_bad_lines)
        return f"{self.bad_lines:,} bad lines skipped (first: line {first})"


@dataclass(frozen=True)
class ImportOptions:
    entity_type: str | None = None
    timestamp: str | None = None
    supplementary: bool = False
    keep_documents: bool = False
    skip_bad_lines: bool = False
    batch_lines: int | None = BATCH_LINES
    batch_seconds: float = BATCH_SECONDS
    memory_mb: int = DEFAULT_IMPORT_MEMORY_MB
    temp_dir: Path | None = None
    processes: int = DEFAULT_IMPORT_PROCESSES  # staging processes (parallel.py); 1 stages in the importer's own process


def check_paths(paths: list[Path], options: ImportOptions) -> None:
    """Refuse bad usage before any import starts."""
    if options.entity_type is not None and options.entity_type not in DUMP_ENTITY_TYPES:
        raise UsageError(f"unknown entity type {options.entity_type!r} (known: {', '.join(DUMP_ENTITY_TYPES)})")
    if options.timestamp is not None:
        dump_time(options.timestamp, what="--timestamp")
    if options.batch_lines is not None and options.batch_lines < 1:
        raise UsageError("the batch size must be at least 1 line")
    if options.memory_mb < 64:
        raise UsageError("--memory must be at least 64 MB")
    if options.processes < 1:
        raise UsageError("--processes must be at least 1")
    for path in paths:
        if is_stream(path):
            continue
        if not path.exists():
            raise UsageError(f"{path}: no such file")
        if not path.is_file():
            raise UsageError(f"{path}: not a file")
        if not is_archive(path):
            entity_of_file(path, options.entity_type)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """JSON documents are trees, freed by reference counting; the cyclic
    collector would rescan every staged row thousands of times per chunk
    (it halves the import rate), so it rests during the import."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _then_raising(lines: list[bytes], error: BaseException) -> Iterator[bytes]:
    """The lines read before a dump became unreadable, then its error."""
    yield from lines
    raise error


def staging_root(db: sqlite_utils.Database, options: ImportOptions) -> Path:
    """Where staged runs go: --temp-dir, else `<database>.import/` beside it."""
    if options.temp_dir is not None:
        return Path(options.temp_dir)
    path = database_file(db)
    if path is None:
        raise UsageError("an in-memory database needs a --temp-dir for its staged runs")
    return path.with_name(path.name + ".import")


def _free_bytes(folder: Path) -> int | None:
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return None


def check_space(folder: Path, db_path: Path | None, line_bytes: int) -> None:
    """Refuse to start an import that will not fit: the staged runs in
    `folder`, and the database's growth twice over (its WAL holds the new
    pages until the merge commits)."""
    staged = int(line_bytes * STAGED_PER_BYTE)
    growth = int(line_bytes * DATABASE_PER_BYTE)
    needs: dict[int, tuple[Path, int]] = {}
    for where, needed in ((folder, staged), (db_path.parent if db_path else None, 2 * growth)):
        if where is None:
            continue
        probe = where
        while not probe.exists() and probe != probe.parent:
            probe = probe.parent
        device = probe.stat().st_dev
        known = needs.get(device, (probe, 0))
        needs[device] = (known[0], known[1] + needed)
    for where, needed in needs.values():
        free = _free_bytes(where)
        if free is not None and free < needed:
            raise DumpError(f"{where}: this import needs about {needed / 1e9:,.1f} GB of free disk there, "
                            f"{free / 1e9:,.1f} GB are free (staged runs: about {staged / 1e9:,.1f} GB, in "
                            f"--temp-dir; the database grows by about {growth / 1e9:,.1f} GB, and its WAL "
                            f"holds as much again until the merge commits)")


class _Import:
    """Stages one dump part's lines, then merges them."""

    def __init__(self, db: sqlite_utils.Database, path: Path, part: _Part, options: ImportOptions, key: dict,
                 result: DumpResult, state: dict | None, root: Path, check_stop: Callable[[], None]):
        self.db, self.path, self.part, self.options = db, path, part, options
        self.check_stop = check_stop  # raises Interrupted once a stop signal came (safe points only)
        self.key, self.result = key, result
        self.stamp = {"fetched_at": part.dump_time, "source": f"dump:{part.dump_time}"}
        self.stage = self._restore(state, root / stage_name(key))
        budget = options.memory_mb << 20
        self.chunk_bytes = int(budget * MEMORY_SHARES["chunk"])
        # a range for a staging process: RANGE_BYTES_PER_CHUNK_BYTE of a process's share of the chunk budget
        self.range_bytes = max(1, int(self.chunk_bytes // options.processes * RANGE_BYTES_PER_CHUNK_BYTE))
        self.stager = Stager(table_keys(), self.stage.column_sets, int(budget * MEMORY_SHARES["filter"]) //
                             FILTER_ENTRY_BYTES, self.stage.counts)
        self.writer = ChunkWriter()
        self.committed = state["lines_committed"] if state else 0
        self.skipped_before = self.stage.skipped
        self.chunk_number = len(self.stage.chunks)

    def _restore(self, state: dict | None, folder: Path) -> Stage:
        """The staged chunks of an earlier run of this import, if they are all
        there; otherwise a fresh stage starting after the lines already merged.
        Files of the folder that no chunk names (a chunk cut short) are removed."""
        stage = None
        if state and state["stage"]:
            stage = Stage.from_json(state["stage"])  # where it was staged, whatever --temp-dir says now
            if not stage.intact():
                stage = None
        if stage is None:
            stage = Stage(folder, lines=state["lines_committed"] if state else 0,
                           skipped=state["lines_skipped"] if state else 0)
        stage.folder.mkdir(parents=True, exist_ok=True)
        keep = stage.files()
        for leftover in stage.folder.iterdir():
            if leftover not in keep:
                leftover.unlink()
        return stage

    def _save(self, status: str) -> None:
        save_state(self.db, self.key, self.path, status, self.committed, self.stage)

    # -- staging --

    def run(self, stop_at: float | None, progress: Callable[[int, int], None] | None,
            merging: Callable[[str], None] | None) -> bool:
        """Stage the lines after the staged ones, then merge; True when the
        dump is imported, False when stopped at the budget (after a chunk)."""
        self._save("running")
        try:
            finished = self._read(stop_at, progress)
        finally:
            self.writer.wait()
        if not finished:
            self._save("partial")
            return False
        self.merge("complete", merging)
        return True

    def _read(self, stop_at: float | None, progress: Callable[[int, int], None] | None) -> bool:
        entity_type, options, result, stager = self.part.entity_type, self.options, self.result, self.stager
        lines = _readable(self.part.lines)
        position = 0
        try:
            for _ in itertools.islice(lines, self.stage.lines):
                position += 1
            if position < self.stage.lines:  # a stream (no size in the key) shorter than what was staged
                raise DumpError(f"{self.path}: it ends after {position:,} lines, but an earlier run staged "
                                f"{self.stage.lines:,} lines of this dump ({self.key['entity_type']}, "
                                f"{self.key['dump_timestamp']}): not the same input; give the whole dump again "
                                f"to continue that import")
            result.lines_resumed_past = position
            if options.processes > 1:
                first, rest = self._first_range(lines)
                if rest is not None:
                    return self._read_in_processes(itertools.chain(first, rest), position, stop_at, progress)
                lines = first  # the rest of the dump fits in one range: staged here, no process started
            in_chunk, chunk_started = 0, time.monotonic()
            for position, line in self._numbered(lines, position, progress):
                if line.strip():
                    try:
                        normalized = normalize_entity(entity_type, orjson.loads(line),
                                                      supplementary=options.supplementary,
                                                      keep_document=options.keep_documents)
                    except (ValueError, NormalizeError) as exc:
                        self._bad_line(position, describe_bad_line(exc))
                        continue
                    try:
                        stager.add(position, normalized, len(line))
                    except ValueError as exc:
                        self._bad_line(position, str(exc))
                        continue
                    result.lines_normalized += 1
                in_chunk += 1
                if stager.memory() >= self.chunk_bytes or self._batch_full(in_chunk, chunk_started):
                    self._chunk(position)
                    result.lines_read = position
                    if progress is not None:
                        progress(position, result.lines_normalized)
                    if stop_at is not None and time.monotonic() >= stop_at:
                        return False
                    in_chunk, chunk_started = 0, time.monotonic()
        except _Unreadable as exc:
            self._unreadable(position, exc)
        self.check_stop()  # a stream cut short by the signal that stops us too is not the dump's end
        result.lines_read = position
        self._chunk(position)
        return True

    def _numbered(self, lines: Iterator[bytes], position: int,
                  progress: Callable[[int, int], None] | None) -> Iterator[tuple[int, bytes]]:
        """The lines after line `position`, numbered; between two, a stop
        signal is looked for and progress reported (every PROGRESS_SECONDS)."""
        reported = time.monotonic()
        for line in lines:
            self.check_stop()
            position += 1
            if progress is not None and not position % 256 and time.monotonic() - reported >= PROGRESS_SECONDS:
                reported = time.monotonic()
                self.result.lines_read = position
                progress(position, self.result.lines_normalized)
            yield position, line

    def _batch_full(self, lines: int, started: float) -> bool:
        """A chunk (or a range for a staging process) of `lines` lines begun
        at `started` closes at --batch-size lines or BATCH_SECONDS; the
        caller looks at its memory share."""
        return ((self.options.batch_lines is not None and lines >= self.options.batch_lines)
                or time.monotonic() - started >= self.options.batch_seconds)

    def _range_full(self, size: int, lines: int, started: float) -> bool:
        """A range for a staging process closes at `range_bytes`, or as a chunk would (_batch_full)."""
        return size >= self.range_bytes or self._batch_full(lines, started)

    def _first_range(self, lines: Iterator[bytes]) -> tuple[Iterator[bytes], Iterator[bytes] | None]:
        """The lines of a first range, and the lines after it; None for those
        when the dump ends (or cannot be read further) within the first range:
        a dump that small is staged faster than processes start."""
        first: list[bytes] = []
        size, started = 0, time.monotonic()
        try:
            for line in lines:
                self.check_stop()
                first.append(line)
                size += len(line)
                if self._range_full(size, len(first), started):
                    return iter(first), lines
        except _Unreadable as exc:
            return _then_raising(first, exc), None
        return iter(first), None

    def _read_in_processes(self, lines: Iterator[bytes], position: int, stop_at: float | None,
                           progress: Callable[[int, int], None] | None) -> bool:
        """Stage the lines on `--processes` processes (parallel.py), a range of
        consecutive lines each; ranges are accepted in line order."""
        options, result = self.options, self.result
        share = self.chunk_bytes // options.processes
        settings = StagingSettings(self.part.entity_type, table_keys(), options.supplementary, options.keep_documents,
                                   options.skip_bad_lines, share, self.stager.filter.entries // options.processes)
        log.info("%s staging on %d processes, ranges of up to %.0f MB", self.part.entity_type, options.processes,
                 self.range_bytes / 1e6)
        with StagingProcesses(options.processes, settings) as staging:
            batch: list[bytes] = []
            size, started = 0, time.monotonic()
            try:
                for position, line in self._numbered(lines, position, progress):
                    batch.append(line)
                    size += len(line)
                    if self._range_full(size, len(batch), started):
                        self._send_range(staging, position - len(batch) + 1, batch)
                        result.lines_read = position
                        batch, size, started = [], 0, time.monotonic()
                        if stop_at is not None and time.monotonic() >= stop_at:
                            self._accept_ranges(staging)
                            return False
            except _Unreadable as exc:  # the lines read before are staged, then merged
                if batch:
                    self._send_range(staging, position - len(batch) + 1, batch)
                self._accept_ranges(staging)
                staging.close()
                self._unreadable(position, exc)
            self.check_stop()  # a stream cut short by the signal that stops us too is not the dump's end
            result.lines_read = position
            if batch:
                self._send_range(staging, position - len(batch) + 1, batch)
            self._accept_ranges(staging)
        return True

    def _send_range(self, staging: StagingProcesses, first: int, lines: list[bytes]) -> None:
        """Send a range to its process, once that process's last range is accepted."""
        self.chunk_number += 1
        job = RangeJob(self.chunk_number, first, lines, self.stage.folder, self.stage.column_sets.as_json(),
                       self.stage.column_sets.key_types())
        self._accept_ranges(staging, through=job.number - len(staging.pending))
        staging.send(job)

    def _accept_ranges(self, staging: StagingProcesses, through: int | None = None) -> None:
        """Accept, in line order, the ranges sent up to range `through` (None: every range sent)."""
        waiting = sorted((job.number, slot) for slot in range(len(staging.pending))
                         if (job := staging.outstanding(slot)) is not None)
        for number, slot in waiting:
            if through is not None and number > through:
                break
            staged = staging.receive(slot)
            while not self.stage.column_sets.adopt(staged.column_sets, staged.key_types):
                staging.resend(slot, self.stage.column_sets.as_json(), self.stage.column_sets.key_types())
                staged = staging.receive(slot)
            staging.done(slot)
            self._record_range(staging, staged)

    def _record_range(self, staging: StagingProcesses, staged: RangeResult) -> None:
        """A staged range joins the stage; its lines are staged once this is saved."""
        counts = self.stage.counts
        counts.rows += staged.counts.rows
        counts.repeats += staged.counts.repeats
        counts.sets += staged.counts.sets
        for table, rows in staged.counts.partial.items():
            counts.partial[table] = counts.partial.get(table, 0) + rows
        self.result.lines_normalized += staged.normalized
        stopping = staged.bad.pop() if staged.stopped else None
        for number, message in staged.bad:
            self._bad_line(number, message)
        self.stage.chunks.extend(staged.chunks)
        self.stage.lines = staged.end
        self.stage.skipped = self.skipped_before + self.result.bad_lines
        self._save("running")
        if stopping is not None:
            staging.close()  # nothing more is staged: the lines before the bad one are merged
            self._bad_line(*stopping)

    def _unreadable(self, position: int, exc: _Unreadable) -> None:
        """The archive ends in the middle or is corrupt after `position`: what was read before is merged."""
        self._fail(max(position, self.stage.lines),
                   f"{self.path}: the archive is truncated or corrupt after line {position:,} ({exc}); "
                   f"every line before it is saved")

    def _chunk(self, position: int) -> None:
        """Write what is buffered as a chunk; the position moves once it is on disk."""
        buffers = self.stager.take()
        skipped = self.skipped_before + self.result.bad_lines

        def recorded(sections: dict[str, Section]) -> None:
            if sections:
                self.stage.chunks.append(sections)
            self.stage.lines = position
            self.stage.skipped = skipped
            self._save("running")

        self.chunk_number += 1
        path = self.stage.folder / f"chunk-{self.chunk_number:06d}.run" if buffers else None
        self.writer.submit(path, buffers, recorded)

    def _bad_line(self, number: int, message: str) -> None:
        """Pass over a bad line, or merge the lines before it and stop."""
        if not self.options.skip_bad_lines:
            self._fail(number - 1, f"{self.path}: line {number}: {message} (every line before it is saved; "
                                   f"--skip-bad-lines passes over such lines)")
        self.result.bad_lines += 1
        if len(self.result.first_bad_lines) < BAD_LINES_LISTED:
            self.result.first_bad_lines.append(number)

    def _fail(self, position: int, message: str) -> None:
        """Merge the lines staged before `position`, mark the import failed, raise."""
        self._chunk(position)
        self.writer.wait()
        self.merge("failed", None)
        raise DumpError(message)

    def merge(self, status: str, merging: Callable[[str], None] | None) -> None:
        """Every staged chunk into the database (stage_merge.py); the import's row then says `status`."""
        started = time.monotonic()
        merge = StageMerge(self.db, self.stage, self.key, self.stamp, memory_mb=self.options.memory_mb,
                           cache_share=MEMORY_SHARES["cache"], lookups_share=MEMORY_SHARES["lookups"],
                           save=self._save, check_stop=self.check_stop,
                           merging=merging, processes=self.options.processes)
        self.stage = merge.run(status)
        self.committed = self.stage.lines
        self.result.changes = merge.changes
        self.result.entities_written += merge.written
        self.result.merge_seconds += time.monotonic() - started



def _keep_going() -> None:
    """No stop signal to look for (import_dump called by itself)."""


def import_dump(db: sqlite_utils.Database, path: Path, options: ImportOptions, *,
                stop_at: float | None = None, progress: Callable[[Progress], None] | None = None,
                check_stop: Callable[[], None] = _keep_going) -> DumpResult:
    """Import one dump file (archive, bare JSON Lines, FIFO or `-`); resumes
    where an earlier import of the same dump stopped. `stop_at`
    (time.monotonic()) stops it cleanly after a chunk with status partial;
    `check_stop` is called where stopping is safe (it raises to stop)."""
    path = Path(path)
    streamed = is_stream(path)
    size = 0 if streamed else path.stat().st_size
    started = time.monotonic()
    raw = open_raw(path)
    with raw, _open_parts(path, raw, options) as parts, _cyclic_gc_paused():
        part = next(parts)
        key = {"entity_type": part.entity_type, "dump_timestamp": part.dump_time, "size_bytes": size}
        result = DumpResult(path=path, entity_type=part.entity_type, source=f"dump:{part.dump_time}",
                            status="partial")
        state = import_state(db, key)
        root = staging_root(db, options)
        if state is not None and state["status"] == "complete":
            result.status = "already-imported"
            result.lines_read = state["lines_committed"]
            shutil.rmtree(root / stage_name(key), ignore_errors=True)
            return result
        importer = _Import(db, path, part, options, key, result, state, root, check_stop)
        if part.size is not None and importer.stage.lines == 0:
            check_space(importer.stage.folder, database_file(db), part.size)

        def report(lines: int, lines_this_run: int) -> None:
            if progress is not None:
                progress(Progress(path, part.entity_type, 0 if streamed else raw.tell(), size, lines,
                                  lines_this_run, time.monotonic() - started))

        def merging(detail: str) -> None:
            if progress is not None:
                progress(Progress(path, part.entity_type, size, size, result.lines_read, result.lines_normalized,
                                  time.monotonic() - started, "merging", detail))

        try:
            finished = importer.run(stop_at, report, merging)
        finally:
            result.seconds = time.monotonic() - started
        result.status = "complete" if finished else "partial"
        return result


def _finish_run(db: sqlite_utils.Database, run_id: int, args: dict, results: list[DumpResult], status: str,
                error: str | None = None) -> None:
    """Close the ledger row; its args gain the dumps' TIMESTAMPs (the data card cites them)."""
    stamps = sorted({r.source.removeprefix("dump:") for r in results if r.source.startswith("dump:")})
    changes = [r.entity_changes() for r in results]
    with db.atomic():
        ledger.update_run(db, run_id, finished_at=utc_now(), status=status,
                          entities_written=sum(r.entities_written for r in results), error=error,
                          new=sum(c.new for c in changes), updated=sum(c.updated for c in changes),
                          unchanged=sum(c.unchanged for c in changes),
                          args=json.dumps({**args, "dump_timestamp": ", ".join(stamps) or None}, sort_keys=True))


def import_dumps(db: sqlite_utils.Database, paths: list[Path], options: ImportOptions, *,
                 max_runtime: float | None = None,
                 progress: Callable[[Progress], None] | None = None,
                 on_result: Callable[[DumpResult], None] | None = None,
                 run_id: int | None = None) -> list[DumpResult]:
    """Import dump files in order, recorded as one `import-dump` run in the
    ledger: complete, partial (stopped at --max-runtime; rerun continues),
    interrupted (Ctrl-C, SIGTERM) or failed (the error is recorded and
    raised). With `run_id`, a caller's run (sync-dumps) holds the import:
    no ledger row of its own is started or closed."""
    paths = [Path(p) for p in paths]
    check_paths(paths, options)
    stop_at = time.monotonic() + max_runtime if max_runtime is not None else None
    args = {"paths": [str(p) for p in paths], "entity": options.entity_type,
            "supplementary": options.supplementary, "keep_documents": options.keep_documents}
    own_run = run_id is None
    if own_run:
        run_id = ledger.start_run(db, "import-dump", args, utc_now())
    results: list[DumpResult] = []
    db_path = database_file(db) or "the database"
    with stops_deferred() as stops:
        try:
            for path in paths:
                try:
                    result = import_dump(db, path, options, stop_at=stop_at, progress=progress,
                                         check_stop=stops.check)
                except sqlite3.Error as exc:
                    raise DatabaseError(describe_sqlite_error(db_path, exc)) from None
                except OSError as exc:
                    raise DumpError(f"{path}: {exc.strerror or exc} "
                                    f"(staged runs: {staging_root(db, options)})") from None
                results.append(result)
                if on_result is not None:
                    on_result(result)
                if result.status == "partial":
                    break
        except KeyboardInterrupt as exc:
            if own_run:
                _finish_run(db, run_id, args, results, ledger.INTERRUPTED,
                            f"interrupted by {as_interrupted(exc).signal_name}; every staged chunk is kept")
            raise
        except BaseException as exc:
            if own_run:
                message = str(exc) if isinstance(exc, HarvesterError) else f"{type(exc).__name__}: {exc}"
                _finish_run(db, run_id, args, results, ledger.FAILED, message)
            raise
        finally:
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # give the large WAL back (a no-op while others read)
        complete = len(results) == len(paths) and all(r.status != "partial" for r in results)
        if own_run:
            _finish_run(db, run_id, args, results, ledger.COMPLETE if complete else ledger.PARTIAL)
    return results


def format_progress(progress: Progress) -> str:
    """`recording.tar.xz: 41.2/120.5 MB (34%), 812,000 recording lines, 23,410/s, ETA 0:00:56`."""
    if progress.phase == "merging":
        return (f"{progress.path.name}: merging {progress.lines:,} {progress.entity_type} lines into the "
                f"database{f' ({progress.detail})' if progress.detail else ''}, {progress.seconds:,.0f} s")
    share = progress.bytes_read / progress.bytes_total if progress.bytes_total else None
    rate = progress.lines_this_run / progress.seconds if progress.seconds > 0 else 0.0
    read = (f"{progress.bytes_read / 1e6:,.1f}/{progress.bytes_total / 1e6:,.1f} MB ({share:.0%})"
            if share is not None else "a stream")
    text = f"{progress.path.name}: {read}, {progress.lines:,} {progress.entity_type} lines, {rate:,.0f}/s"
    if share is not None and 0 < share < 1 and progress.seconds > 0:
        remaining = progress.seconds * (1 - share) / share
        text += f", ETA {int(remaining // 3600)}:{int(remaining % 3600 // 60):02d}:{int(remaining % 60):02d}"
    return text
