"""Import the MusicBrainz JSON data dumps: streamed, batched, resumable.

A published dump is `<entity>.tar.xz` holding `TIMESTAMP`, `COPYING`, ... and
`mbdump/<entity>`: JSON Lines, one WS/2 lookup document per line. The archive
is read as a stream (never unpacked, never held in memory) and every line
goes through the same normalizer, CC0 filter and store as an API response.

Lines are committed in batches. Each batch's rows and the import's position
(`dump_import.lines_committed`) commit in one transaction, data first, so an
interrupted import resumes after its last batch: compressed streams cannot
seek, so the committed lines are read again and skipped without being parsed.
"""

from __future__ import annotations

import gc
import io
import itertools
import json
import lzma
import queue
import re
import sqlite3
import tarfile
import threading
import time
import zlib
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, Callable, Iterator

import sqlite_utils

from harvester import ledger
from harvester.errors import DatabaseError, HarvesterError, NormalizeError, UsageError
from harvester.normalize import ENTITY_TYPES, Normalized, normalize_entity
from harvester.store import describe_sqlite_error, save, utc_now

BATCH_LINES = 5000
BATCH_SECONDS = 1.0
READ_BUFFER = 1 << 20
BAD_LINES_LISTED = 5
# While importing: the keys are random UUIDs, so every batch dirties pages
# all over each index. Rarer WAL checkpoints (100,000 pages, ~400 MB of WAL)
# copy a page dirtied by many batches once instead of once per batch; the
# page cache gets a fixed 64 MiB, so memory stays flat however large the dump.
CACHE_KIB = 64 * 1024
WAL_PAGES = 100_000

TAR_SUFFIXES = (".tar", ".tar.xz", ".txz", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2")
_READ_ERRORS = (EOFError, tarfile.TarError, lzma.LZMAError, zlib.error, OSError)


class DumpError(HarvesterError):
    """A dump is corrupt, truncated or holds a malformed line (exit 1)."""


class _Unreadable(Exception):
    """The compressed stream or the archive broke while its lines were read."""


def _readable(lines: Iterator[bytes]) -> Iterator[bytes]:
    """The lines, with a failure to read them told apart from every other error."""
    try:
        yield from lines
    except _READ_ERRORS as exc:
        raise _Unreadable(f"{type(exc).__name__}: {exc}") from exc


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
    batch_seconds: float = BATCH_SECONDS


@dataclass(frozen=True)
class _Part:
    """One data member of a dump (or a bare file): what it is and its lines."""

    entity_type: str
    dump_time: str
    lines: Iterator[bytes]


def dump_time(text: str, *, what: str) -> str:
    """`2025-11-22 00:00:52.535446+00` (a dump's TIMESTAMP) -> `2025-11-22T00:00:52Z`."""
    cleaned = text.strip().replace(" ", "T", 1)
    if re.search(r"[+-]\d{2}$", cleaned):
        cleaned += ":00"
    if cleaned.endswith("Z"):
        cleaned = cleaned[:-1] + "+00:00"
    try:
        moment = datetime.fromisoformat(cleaned)
    except ValueError:
        raise UsageError(f"{what}: {text.strip()[:60]!r} is not a date and time") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def is_archive(path: Path) -> bool:
    return path.name.lower().endswith(TAR_SUFFIXES)


def entity_of_member(name: str) -> str | None:
    """`mbdump/release-group` -> `release-group`; None for any other member."""
    parts = [p for p in name.split("/") if p not in ("", ".")]
    if len(parts) == 2 and parts[0] == "mbdump":
        return parts[1]
    return None


def entity_of_file(path: Path, given: str | None) -> str:
    """A bare file's entity type: --entity, else its name (`mbdump/recording`, `recording.jsonl`)."""
    if given is not None:
        return given
    stem = path.name
    for suffix in (".jsonl", ".json", ".ndjson"):
        if stem.endswith(suffix):
            stem = stem[: -len(suffix)]
    if stem in ENTITY_TYPES:
        return stem
    raise UsageError(f"{path}: cannot tell which entity this file holds; name it mbdump/<entity> "
                     f"or give --entity ({', '.join(ENTITY_TYPES)})")


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
def _open_parts(path: Path, raw: IO[bytes], options: ImportOptions) -> Iterator[Iterator[_Part]]:
    """The data parts of a dump file, read as a stream from `raw`."""
    if not is_archive(path):
        stamp = options.timestamp or datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat()
        lines = iter(raw)
        yield iter([_Part(entity_of_file(path, options.entity_type), dump_time(stamp, what=str(path)), lines)])
        return
    try:
        tar = tarfile.open(fileobj=raw, mode="r|*", bufsize=READ_BUFFER)
    except _READ_ERRORS as exc:
        raise DumpError(f"{path}: not a readable tar archive ({exc})") from None
    with tar:
        yield _archive_parts(path, tar, options)


def _archive_parts(path: Path, tar: tarfile.TarFile, options: ImportOptions) -> Iterator[_Part]:
    """The first `mbdump/<entity>` member (published archives hold one),
    stamped with the archive's TIMESTAMP member when it comes before it."""
    stamp = None
    unknown = []
    try:
        for member in tar:
            name = member.name[2:] if member.name.startswith("./") else member.name
            if name == "TIMESTAMP" and member.isfile():
                stamp = tar.extractfile(member).read(200).decode("utf-8", "replace")
                continue
            entity_type = entity_of_member(name)
            if entity_type is None or not member.isfile():
                continue
            if entity_type not in ENTITY_TYPES:
                unknown.append(name)
                continue
            if options.entity_type not in (None, entity_type):
                unknown.append(name)
                continue
            if stamp is not None:
                when = dump_time(stamp, what=f"{path}: TIMESTAMP")
            elif options.timestamp is not None:
                when = dump_time(options.timestamp, what="--timestamp")
            else:
                when = datetime.fromtimestamp(member.mtime, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
            member_file = io.BufferedReader(tar.extractfile(member), READ_BUFFER)
            yield _Part(entity_type, when, iter(member_file))
            return
    except _READ_ERRORS as exc:
        raise DumpError(f"{path}: the archive is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    wanted = f"mbdump/{options.entity_type}" if options.entity_type else "mbdump/<entity> member"
    found = f" (it holds {', '.join(unknown)}; importable: {', '.join(ENTITY_TYPES)})" if unknown else ""
    raise UsageError(f"{path}: holds no {wanted} to import{found}")


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

    def commit(self, batch: Normalized, position: int, status: str, skipped: int) -> None:
        """The batch's rows, then the position after it: one transaction."""
        now = utc_now()
        with self.db.atomic():
            written = save(self.db, batch, source=self.source, fetched_at=self.part.dump_time) if batch.rows else 0
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
            in_batch, batch_started = 0, time.monotonic()
            for line in lines:
                position += 1
                if line.strip():
                    try:
                        doc = json.loads(line)
                        batch.extend(normalize_entity(entity_type, doc, supplementary=options.supplementary,
                                                      keep_document=options.keep_documents))
                        result.lines_normalized += 1
                    except (ValueError, NormalizeError) as exc:
                        self._bad_line(committer, batch, position, _describe_bad_line(exc))
                        batch = Normalized()
                in_batch += 1
                if in_batch >= options.batch_lines or time.monotonic() - batch_started >= options.batch_seconds:
                    stopping = stop_at is not None and time.monotonic() >= stop_at
                    committer.submit(batch, position, "partial" if stopping else "running", self.skipped)
                    result.lines_read = position
                    if progress is not None:
                        progress(position, result.lines_normalized)
                    if stopping:
                        return False
                    batch, in_batch, batch_started = Normalized(), 0, time.monotonic()
        except _Unreadable as exc:
            committer.submit(batch if position > resume_after else Normalized(), max(position, resume_after),
                             "failed", self.skipped)
            committer.drain()
            raise DumpError(f"{self.path}: the archive is truncated or corrupt after line {position:,} "
                            f"({exc}); every line before it is saved") from None
        result.lines_read = position
        committer.submit(batch, position, "complete", self.skipped)
        return True

    def _bad_line(self, committer: _Committer, batch: Normalized, number: int, message: str) -> None:
        """Commit the lines before a bad line; then stop, or pass over it."""
        if not self.options.skip_bad_lines:
            committer.submit(batch, number - 1, "failed", self.skipped)
            committer.drain()
            raise DumpError(f"{self.path}: line {number}: {message} (every line before it is saved; "
                            f"--skip-bad-lines passes over such lines)")
        committer.submit(batch, number - 1, "running", self.skipped)
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
    cache_size = db.execute("PRAGMA cache_size").fetchone()[0]
    autocheckpoint = db.execute("PRAGMA wal_autocheckpoint").fetchone()[0]
    db.execute(f"PRAGMA cache_size = -{CACHE_KIB}")
    db.execute(f"PRAGMA wal_autocheckpoint = {WAL_PAGES}")
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
        db.execute(f"PRAGMA cache_size = {cache_size}")
        db.execute(f"PRAGMA wal_autocheckpoint = {autocheckpoint}")
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
