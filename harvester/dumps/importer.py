"""Import the MusicBrainz JSON data dumps: streamed, batched, resumable.

Every line goes through the same normalizer, CC0 filter and store as an API
response.

Lines are committed in batches. Each batch's rows and the import's position
(`dump_import.lines_committed`) commit in one transaction, data first, so an
interrupted import resumes after its last batch: compressed streams cannot
seek, so the committed lines are read again and skipped without being parsed.
"""

from __future__ import annotations

import gc
import itertools
import json
import os
import queue
import sqlite3
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterator

import orjson
import sqlite_utils

from harvester import ledger
from harvester.dumps.reading import (READ_BUFFER, DumpError, _open_parts, _Part, _readable, _Unreadable, dump_time,
                                    entity_of_file, is_archive)
from harvester.errors import DatabaseError, HarvesterError, NormalizeError, UsageError
from harvester.normalize import ENTITY_TYPES, Normalized, normalize_entity
from harvester.store import (TABLES_V1, Writes, describe_sqlite_error, finish_bulk_load, prepare_save, run_writes,
                             start_bulk_load, utc_now)

# A batch closes at whichever comes first. Larger batches commit less often
# (each commit writes every page the batch dirtied, and random MBIDs dirty
# pages everywhere); the byte cap keeps memory flat for long lines (a
# release line is ~25 kB, a recording line ~2 kB).
BATCH_LINES = 20_000
BATCH_BYTES = 24 << 20
BATCH_SECONDS = 2.0
BAD_LINES_LISTED = 5
# While importing: the keys are random UUIDs, so every batch dirties pages
# all over each index. Rarer WAL checkpoints (100,000 pages, ~400 MB of WAL)
# copy a page dirtied by many batches once instead of once per batch; the
# page cache gets a fixed 64 MiB, so memory stays flat however large the dump.
CACHE_KIB = 64 * 1024
WAL_PAGES = 100_000
# Tables whose indexes and full-text triggers an import into them while empty
# builds once at its end (the ledger is written row by row and stays as is).
BULK_LOAD_TABLES = tuple(name for name in TABLES_V1 if name != "harvest_run")


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

    def summary(self) -> str:
        rate = self.lines_normalized / self.seconds if self.seconds > 0 else 0.0
        text = (f"{self.path}: {self.entity_type} {self.source}: {self.status}; "
                f"{self.lines_normalized:,} lines imported in {self.seconds:.1f} s ({rate:,.0f}/s), "
                f"{self.entities_written:,} entities written")
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
    batch_lines: int = BATCH_LINES
    batch_bytes: int = BATCH_BYTES
    batch_seconds: float = BATCH_SECONDS


def check_paths(paths: list[Path], options: ImportOptions) -> None:
    """Refuse bad usage before any import starts."""
    if options.entity_type is not None and options.entity_type not in ENTITY_TYPES:
        raise UsageError(f"unknown entity type {options.entity_type!r} (known: {', '.join(ENTITY_TYPES)})")
    if options.timestamp is not None:
        dump_time(options.timestamp, what="--timestamp")
    if options.batch_lines < 1:
        raise UsageError("the batch size must be at least 1 line")
    for path in paths:
        if not path.exists():
            raise UsageError(f"{path}: no such file")
        if not path.is_file():
            raise UsageError(f"{path}: not a file")
        if not is_archive(path):
            entity_of_file(path, options.entity_type)


@contextmanager
def _cyclic_gc_paused() -> Iterator[None]:
    """JSON documents are trees, freed by reference counting; the cyclic
    collector would rescan every live batch object thousands of times per
    batch (it halves the import rate), so it rests during the import."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _import_state(db: sqlite_utils.Database, key: dict) -> dict | None:
    row = db.execute(
        "SELECT status, lines_committed, lines_skipped, entities_written FROM dump_import "
        "WHERE entity_type = ? AND dump_timestamp = ? AND size_bytes = ?",
        (key["entity_type"], key["dump_timestamp"], key["size_bytes"])).fetchone()
    if row is None:
        return None
    return dict(zip(("status", "lines_committed", "lines_skipped", "entities_written"), row))


_RECORD_POSITION = """
INSERT INTO dump_import (entity_type, dump_timestamp, size_bytes, path, status, lines_committed, lines_skipped,
                         entities_written, started_at, updated_at, finished_at)
VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
ON CONFLICT (entity_type, dump_timestamp, size_bytes) DO UPDATE SET
    path = excluded.path, status = excluded.status, lines_committed = excluded.lines_committed,
    lines_skipped = excluded.lines_skipped, updated_at = excluded.updated_at, finished_at = excluded.finished_at,
    entities_written = dump_import.entities_written + excluded.entities_written
"""


class _Committer:
    """Commits batches, in order, on a second thread.

    SQLite releases the GIL while it writes (B-trees, full-text triggers,
    commit), so the next batch is read and normalized meanwhile. A batch is
    handed over only once the one before is committed, so at most two
    batches live at a time; the first error is raised in the reading thread."""

    def __init__(self, commit: Callable[..., None]):
        self._commit = commit
        self._queue: queue.Queue = queue.Queue(maxsize=1)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._work, name="dump-commit", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            try:
                if item is None:
                    return
                if self._error is None:
                    self._commit(*item)
            except BaseException as exc:  # handed to the reading thread
                self._error = exc
            finally:
                self._queue.task_done()

    def _raise(self) -> None:
        """The first commit error, again on every call: nothing after it is committed."""
        if self._error is not None:
            raise self._error

    def submit(self, *item) -> None:
        self.drain()
        self._queue.put(item)

    def drain(self) -> None:
        """Wait until every submitted batch is committed."""
        self._queue.join()
        self._raise()

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()


class _Importer:
    """Reads one part's lines into batches and commits them with the position."""

    def __init__(self, db: sqlite_utils.Database, path: Path, part: _Part, options: ImportOptions,
                 key: dict, result: DumpResult, skipped: int):
        self.db, self.path, self.part, self.options = db, path, part, options
        self.key, self.result = key, result
        self.source = f"dump:{part.dump_time}"
        self.skipped = skipped

    def submit(self, committer: "_Committer", batch: Normalized, position: int, status: str) -> None:
        """Hand a batch to the commit thread, its statements prepared here."""
        writes = prepare_save(batch, source=self.source, fetched_at=self.part.dump_time) if batch.rows else Writes([])
        committer.submit(writes, position, status, self.skipped)

    def commit(self, writes: Writes, position: int, status: str, skipped: int) -> None:
        """The batch's rows, then the position after it: one transaction."""
        now = utc_now()
        with self.db.atomic():
            written = run_writes(self.db, writes)
            self.db.execute(_RECORD_POSITION, (
                self.key["entity_type"], self.key["dump_timestamp"], self.key["size_bytes"], str(self.path),
                status, position, skipped, written, now, now, now if status == "complete" else None))
        self.result.entities_written += written

    def run(self, resume_after: int, stop_at: float | None,
            progress: Callable[[int, int], None] | None) -> bool:
        """Import lines after `resume_after`; True when the part is finished,
        False when stopped at the budget (between batches)."""
        committer = _Committer(self.commit)
        try:
            finished = self._read(committer, resume_after, stop_at, progress)
            committer.drain()
            return finished
        finally:
            committer.close()

    def _read(self, committer: _Committer, resume_after: int, stop_at: float | None,
              progress: Callable[[int, int], None] | None) -> bool:
        entity_type, options, result = self.part.entity_type, self.options, self.result
        lines = _readable(self.part.lines)
        position = 0
        batch = Normalized()
        try:
            for _ in itertools.islice(lines, resume_after):
                position += 1
            result.lines_resumed_past = position
            in_batch, batch_bytes, batch_started = 0, 0, time.monotonic()
            for line in lines:
                position += 1
                batch_bytes += len(line)
                if line.strip():
                    try:
                        doc = orjson.loads(line)
                        batch.extend(normalize_entity(entity_type, doc, supplementary=options.supplementary,
                                                      keep_document=options.keep_documents))
                        result.lines_normalized += 1
                    except (ValueError, NormalizeError) as exc:
                        self._bad_line(committer, batch, position, _describe_bad_line(exc))
                        batch = Normalized()
                in_batch += 1
                if (in_batch >= options.batch_lines or batch_bytes >= options.batch_bytes
                        or time.monotonic() - batch_started >= options.batch_seconds):
                    stopping = stop_at is not None and time.monotonic() >= stop_at
                    self.submit(committer, batch, position, "partial" if stopping else "running")
                    result.lines_read = position
                    if progress is not None:
                        progress(position, result.lines_normalized)
                    if stopping:
                        return False
                    batch, in_batch, batch_bytes, batch_started = Normalized(), 0, 0, time.monotonic()
        except _Unreadable as exc:
            self.submit(committer, batch if position > resume_after else Normalized(), max(position, resume_after),
                        "failed")
            committer.drain()
            raise DumpError(f"{self.path}: the archive is truncated or corrupt after line {position:,} "
                            f"({exc}); every line before it is saved") from None
        result.lines_read = position
        self.submit(committer, batch, position, "complete")
        return True

    def _bad_line(self, committer: _Committer, batch: Normalized, number: int, message: str) -> None:
        """Commit the lines before a bad line; then stop, or pass over it."""
        if not self.options.skip_bad_lines:
            self.submit(committer, batch, number - 1, "failed")
            committer.drain()
            raise DumpError(f"{self.path}: line {number}: {message} (every line before it is saved; "
                            f"--skip-bad-lines passes over such lines)")
        self.submit(committer, batch, number - 1, "running")
        self.skipped += 1
        self.result.bad_lines += 1
        if len(self.result.first_bad_lines) < BAD_LINES_LISTED:
            self.result.first_bad_lines.append(number)


def _describe_bad_line(exc: Exception) -> str:
    if isinstance(exc, NormalizeError):
        return str(exc)
    if isinstance(exc, json.JSONDecodeError):
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    return f"not valid JSON ({exc})"


def import_dump(db: sqlite_utils.Database, path: Path, options: ImportOptions, *,
                stop_at: float | None = None, progress: Callable[[Progress], None] | None = None) -> DumpResult:
    """Import one dump file (archive or bare JSON Lines); resumes where an
    earlier import of the same dump stopped. `stop_at` (time.monotonic())
    stops it cleanly between batches with status partial."""
    path = Path(path)
    size = path.stat().st_size
    started = time.monotonic()
    try:
        raw = open(path, "rb", buffering=READ_BUFFER)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None
    with raw, _open_parts(path, raw, options) as parts, _cyclic_gc_paused():
        part = next(parts)
        key = {"entity_type": part.entity_type, "dump_timestamp": part.dump_time, "size_bytes": size}
        result = DumpResult(path=path, entity_type=part.entity_type, source=f"dump:{part.dump_time}",
                            status="partial")
        state = _import_state(db, key)
        if state is not None and state["status"] == "complete":
            result.status = "already-imported"
            result.lines_read = state["lines_committed"]
            return result
        importer = _Importer(db, path, part, options, key, result, state["lines_skipped"] if state else 0)
        resume_after = state["lines_committed"] if state else 0

        def report(lines: int, lines_this_run: int) -> None:
            if progress is not None:
                progress(Progress(path, part.entity_type, raw.tell(), size, lines, lines_this_run,
                                  time.monotonic() - started))

        try:
            finished = importer.run(resume_after, stop_at, report)
        finally:
            result.seconds = time.monotonic() - started
        result.status = "complete" if finished else "partial"
        return result


def _finish_run(db: sqlite_utils.Database, run_id: int, args: dict, results: list[DumpResult], status: str,
                written: int, error: str | None = None) -> None:
    """Close the ledger row; its args gain the dumps' TIMESTAMPs (the data card cites them)."""
    stamps = sorted({r.source.removeprefix("dump:") for r in results if r.source.startswith("dump:")})
    with db.atomic():
        ledger.update_run(db, run_id, finished_at=utc_now(), status=status, entities_written=written, error=error,
                          args=json.dumps({**args, "dump_timestamp": ", ".join(stamps) or None}, sort_keys=True))


def _start_bulk_load(db: sqlite_utils.Database) -> list[str]:
    """Defer the indexes and full-text triggers of every empty table to the
    end of the import (building them once from the whole table is several
    times cheaper than keeping them up to date row by row); returns what was
    dropped. The caller holds the run lock, so a bulk load still recorded
    belongs to a dead import: it is finished first.

    Until the import ends, readers see those tables without their secondary
    indexes (slower queries) and full-text search does not find the new
    rows. Commits skip fsync (synchronous=OFF): a crash of the process loses
    nothing committed; an OS crash or power cut could lose the last batches
    or corrupt the database, which a fresh import then rebuilds."""
    with db.atomic():
        finish_bulk_load(db)
        empty = [table for table in BULK_LOAD_TABLES
                 if db.execute(f"SELECT 1 FROM [{table}] LIMIT 1").fetchone() is None]
        deferred = start_bulk_load(db, empty, utc_now())
    if deferred:
        db.execute("PRAGMA synchronous = OFF")
    return deferred


def import_dumps(db: sqlite_utils.Database, paths: list[Path], options: ImportOptions, *,
                 max_runtime: float | None = None,
                 progress: Callable[[Progress], None] | None = None,
                 on_result: Callable[[DumpResult], None] | None = None) -> list[DumpResult]:
    """Import dump files in order, recorded as one `import-dump` run in the
    ledger: complete, partial (stopped at --max-runtime; rerun continues) or
    failed (the error is recorded and raised)."""
    paths = [Path(p) for p in paths]
    check_paths(paths, options)
    stop_at = time.monotonic() + max_runtime if max_runtime is not None else None
    args = {"paths": [str(p) for p in paths], "entity": options.entity_type,
            "supplementary": options.supplementary, "keep_documents": options.keep_documents}
    run_id = ledger.start_run(db, "import-dump", args, utc_now())
    results: list[DumpResult] = []
    written = 0
    db_path = db.execute("PRAGMA database_list").fetchone()[2] or "the database"
    pragmas = {name: db.execute(f"PRAGMA {name}").fetchone()[0]
               for name in ("cache_size", "wal_autocheckpoint", "synchronous", "threads")}
    db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    db.execute(f"PRAGMA wal_autocheckpoint = {WAL_PAGES}")
    db.execute(f"PRAGMA threads = {os.cpu_count() or 1}")  # sorts for the deferred indexes use every core
    deferred = _start_bulk_load(db)
    try:
        for path in paths:
            try:
                result = import_dump(db, path, options, stop_at=stop_at, progress=progress)
            except sqlite3.Error as exc:
                raise DatabaseError(describe_sqlite_error(db_path, exc)) from None
            results.append(result)
            written += result.entities_written
            if on_result is not None:
                on_result(result)
            if result.status == "partial":
                break
    except BaseException as exc:
        message = str(exc) if isinstance(exc, HarvesterError) else f"{type(exc).__name__}: {exc}"
        _finish_run(db, run_id, args, results, "failed", written, message)
        raise
    finally:
        if deferred:
            with db.atomic():
                finish_bulk_load(db)
        for name, value in pragmas.items():
            db.execute(f"PRAGMA {name} = {value}")
        db.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # give the large WAL back (a no-op while others read)
    complete = len(results) == len(paths) and all(r.status != "partial" for r in results)
    _finish_run(db, run_id, args, results, "complete" if complete else "partial", written)
    return results


def format_progress(progress: Progress) -> str:
    """`recording.tar.xz: 41.2/120.5 MB (34%), 812,000 recordings, 23,410/s, ETA 0:00:56`."""
    share = progress.bytes_read / progress.bytes_total if progress.bytes_total else 1.0
    rate = progress.lines_this_run / progress.seconds if progress.seconds > 0 else 0.0
    text = (f"{progress.path.name}: {progress.bytes_read / 1e6:,.1f}/{progress.bytes_total / 1e6:,.1f} MB "
            f"({share:.0%}), {progress.lines:,} {progress.entity_type} lines, {rate:,.0f}/s")
    if 0 < share < 1 and progress.seconds > 0:
        remaining = progress.seconds * (1 - share) / share
        text += f", ETA {int(remaining // 3600)}:{int(remaining % 3600 // 60):02d}:{int(remaining % 60):02d}"
    return text
