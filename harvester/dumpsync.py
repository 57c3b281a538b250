"""`mbharvest sync-dumps`: keep a full copy current from the official JSON dumps.

A run reads `LATEST` on the dump server and stops there (one small request)
when that dump is already imported. Otherwise it downloads the dump's
archives into `<dump dir>/<dump name>/`, one at a time, each into a `.part`
file that a later run resumes with a `Range` request, checked against
`SHA256SUMS` before it is renamed into place; imports them through the dump
importer, referenced types first; marks gone what the dump no longer
carries; records the run in the ledger; and removes downloads beyond `keep`.

The dumps have no tombstones: a deleted or merged-away entity simply stops
appearing. The importer stamps every entity row a line carries (nested copies
and unchanged rows too) with `source = dump:<TIMESTAMP>`, so once every archive
that carries a type is imported completely, a row of that type whose source
is an older dump was not carried: it gets `gone_at` = the dump's time. Rows
fetched through the API (`ws2:...`) are never marked by a dump. Recordings
are carried by two archives (the recording dump holds only those on no
release; all others sit inside release lines), so they need both. A row
marked gone before the dump's time that the dump carries again is live again.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import sqlite3
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, TypeVar

import requests
import sqlite_utils
import tenacity

from harvester import ledger
from harvester.client import (RETRY_STATUSES, RetryPolicy, TransientFailure, check_contact,
                              describe_network_failure, parse_retry_after, server_host, user_agent)
from harvester.dumps import DumpResult, ImportOptions, Progress, format_progress, import_dumps
from harvester.dumps.runs import fsync_file
from harvester.errors import DatabaseError, HarvesterError, RequestFailed, as_interrupted
from harvester.normalize import DUMP_ENTITY_TYPES, TABLE_OF
from harvester.progress import format_duration
from harvester.settings import Settings
from harvester.store import describe_sqlite_error, open_db, utc_now

log = logging.getLogger("harvester.dumpsync")

COMMAND = "sync-dumps"
# Referenced types before the types whose lines nest copies of them (areas
# sit in artists, labels, places and release events; everything relates to
# everything, so the rest by how much their lines nest).
IMPORT_ORDER = ("area", "artist", "label", "place", "event", "instrument", "series", "work",
                "release-group", "recording", "release")
# Every table a dump type fills (the rows gone-marking and the new count look at).
DUMP_TABLES = tuple(TABLE_OF[entity] for entity in DUMP_ENTITY_TYPES)
# The archives that together carry every entity of a type (default: its own).
CARRIERS = {"recording": ("recording", "release")}
DUMP_NAME_RE = re.compile(r"^\d{8}-\d{6}$")
SUMS_LINE_RE = re.compile(r"^([0-9a-fA-F]{64}) [ *](\S.*)$")
SUMS_FILE = "SHA256SUMS"
PART_SUFFIX = ".part"
# What one read returns at most: it blocks until that much arrives, so a
# small chunk keeps the .part file (and the progress line) close behind the
# network; hashing what an earlier run left reads larger blocks.
DOWNLOAD_CHUNK = 64 << 10
REHASH_CHUNK = 1 << 20
ALREADY_IMPORTED = "already-imported"

T = TypeVar("T")


class DumpSyncError(HarvesterError):
    """The dump server's tree is not what a dump folder should be (exit 1)."""


class ArchiveCorrupt(DumpSyncError):
    """A downloaded archive's SHA-256 differs from SHA256SUMS; it was deleted, nothing from it imported."""


def carriers(entity_type: str) -> tuple[str, ...]:
    return CARRIERS.get(entity_type, (entity_type,))


def import_order(entity_types: Iterable[str]) -> list[str]:
    wanted = set(entity_types)
    return [entity for entity in IMPORT_ORDER if entity in wanted]


def archive_name(entity_type: str) -> str:
    return f"{entity_type}.tar.xz"


# ---- progress ---------------------------------------------------------------------


@dataclass(frozen=True)
class DownloadProgress:
    """Where a download stands, for a progress display."""

    file_name: str
    bytes_done: int
    bytes_total: int | None
    bytes_this_run: int
    seconds: float


def format_download(progress: DownloadProgress) -> str:
    """`release.tar.xz: 1,204.3/21,338.0 MB (6%), 38.2 MB/s, ETA 0:08:47`."""
    rate = progress.bytes_this_run / progress.seconds if progress.seconds > 0 else 0.0
    total = f"/{progress.bytes_total / 1e6:,.1f}" if progress.bytes_total else ""
    text = f"{progress.file_name}: {progress.bytes_done / 1e6:,.1f}{total} MB"
    if progress.bytes_total:
        text += f" ({progress.bytes_done / progress.bytes_total:.0%})"
    text += f", {rate / 1e6:,.1f} MB/s"
    if progress.bytes_total and rate > 0:
        text += f", ETA {format_duration((progress.bytes_total - progress.bytes_done) / rate)}"
    return text


def format_sync_progress(event: DownloadProgress | Progress) -> str:
    """One line for either phase: a download, then the import."""
    return format_download(event) if isinstance(event, DownloadProgress) else format_progress(event)


# ---- the dump server --------------------------------------------------------------------


class _PartDigest:
    """The SHA-256 of a `.part` file so far, kept beside the writes so a resumed
    download is not read twice; a new process hashes what an earlier one left."""

    def __init__(self, part: Path):
        self.hasher = hashlib.sha256()
        self.size = 0
        if part.exists():
            with open(part, "rb") as fh:
                while chunk := fh.read(REHASH_CHUNK):
                    self.update(chunk)

    def update(self, chunk: bytes) -> None:
        self.hasher.update(chunk)
        self.size += len(chunk)

    def restart(self) -> None:
        self.hasher = hashlib.sha256()
        self.size = 0


def _content_range(value: str | None) -> tuple[int | None, int | None]:
    """`bytes 100-199/1000` -> (100, 1000); `bytes */1000` -> (None, 1000)."""
    match = re.match(r"^bytes (?:(\d+)-\d+|\*)/(\d+|\*)$", (value or "").strip())
    if not match:
        return None, None
    start, total = match.groups()
    return (int(start) if start else None), (int(total) if total != "*" else None)


class DumpFetcher:
    """GETs from the dump server: identified (User-Agent with the contact), one
    request at a time, transient failures retried with exponential backoff and
    jitter, never sooner than Retry-After. The dump server is not the WS/2
    service, so its 1 req/s limiter does not apply."""

    def __init__(self, server: str, contact: str | None, *, connect_timeout: float = 10.0,
                 read_timeout: float = 45.0, retry: RetryPolicy = RetryPolicy(),
                 session: requests.Session | None = None, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep, rng: random.Random | None = None):
        self.contact = check_contact(contact)
        server_host(server)
        self.server = server.rstrip("/")
        self.timeout = (connect_timeout, read_timeout)
        self.retry = retry
        self.clock = clock
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.session = session or requests.Session()
        # identity: a compressed transfer would make byte ranges and sizes mean something else
        self.session.headers.update({"User-Agent": user_agent(self.contact), "Accept-Encoding": "identity"})
        self.requests_made = 0
        self.bytes_received = 0

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> "DumpFetcher":
        options: dict[str, Any] = {"connect_timeout": settings.connect_timeout, "read_timeout": settings.read_timeout}
        options.update(overrides)
        return cls(settings.dump_server, settings.contact, **options)

    def close(self) -> None:
        self.session.close()

    def url(self, *parts: str) -> str:
        return "/".join((self.server, *parts))

    def latest(self) -> str:
        """The newest dump's folder name, from LATEST."""
        text = self.text("LATEST").strip()
        if not DUMP_NAME_RE.match(text):
            raise DumpSyncError(f"{self.url('LATEST')} holds {text[:40]!r}, not a dump folder name (YYYYMMDD-HHMMSS); "
                                "is --dump-server the json-dumps folder?")
        return text

    def text(self, *parts: str) -> str:
        url = self.url(*parts)

        def attempt() -> str:
            with self._get(url, {}) as response:
                try:
                    return response.content.decode("utf-8", "replace")
                except requests.RequestException as exc:
                    raise TransientFailure(f"connection dropped ({type(exc).__name__})") from None

        return self._retrying(attempt, url)

    def download(self, url: str, target: Path, sha256: str, *, stop_at: float | None = None,
                 progress: Callable[[DownloadProgress], None] | None = None) -> bool:
        """Fetch `url` into `target` through `target.part`, continuing a part an
        earlier run left. True once `target` is in place with the SHA-256 given;
        False when stopped at `stop_at` (time.monotonic(); the part is kept).
        A digest that differs deletes the part and raises ArchiveCorrupt."""
        part = target.with_name(target.name + PART_SUFFIX)
        try:
            digest = _PartDigest(part)
            started, resumed_at = time.monotonic(), digest.size

            def report(total: int | None) -> None:
                if progress is not None:
                    progress(DownloadProgress(target.name, digest.size, total, digest.size - resumed_at,
                                              time.monotonic() - started))

            if not self._retrying(lambda: self._fetch_rest(url, part, digest, stop_at, report), url):
                return False
            actual = digest.hasher.hexdigest()
            if actual != sha256.lower():
                part.unlink()
                raise ArchiveCorrupt(f"{url}: SHA-256 {actual} differs from {sha256.lower()} in {SUMS_FILE}; "
                                     f"the download was deleted and nothing from it imported (run again to fetch it "
                                     f"anew)")
            fsync_file(part)
            os.replace(part, target)
            fsync_file(target.parent)
        except OSError as exc:
            raise DumpSyncError(f"{part}: cannot write the download ({exc.strerror or exc}); what is saved so far "
                                "is kept") from None
        return True

    def _fetch_rest(self, url: str, part: Path, digest: _PartDigest, stop_at: float | None,
                    report: Callable[[int | None], None]) -> bool:
        """One attempt: the bytes after what the part holds (all of them when
        the server ignores Range). True when the file is whole, False when stopped."""
        headers = {"Range": f"bytes={digest.size}-"} if digest.size else {}
        with self._get(url, headers) as response:
            start, total = _content_range(response.headers.get("Content-Range"))
            if response.status_code == 416:
                if total == digest.size:
                    return True  # the part already held the whole file
                digest.restart()
                part.unlink(missing_ok=True)
                raise TransientFailure(f"the partial download does not fit the file ({total} bytes); starting over")
            if response.status_code == 206:
                if start != digest.size:
                    digest.restart()
                    part.unlink(missing_ok=True)
                    raise TransientFailure(f"asked for bytes from {digest.size}, got them from {start}; starting over")
                mode = "ab"
            else:
                if digest.size:
                    log.info("%s: the server ignored Range; downloading it again from the start", url)
                digest.restart()
                length = response.headers.get("Content-Length")
                total = int(length) if length and length.isdigit() else None
                mode = "wb"
            with open(part, mode) as fh:
                try:
                    for chunk in response.iter_content(DOWNLOAD_CHUNK):
                        fh.write(chunk)
                        digest.update(chunk)
                        self.bytes_received += len(chunk)
                        report(total)
                        if stop_at is not None and time.monotonic() >= stop_at:
                            return False
                except requests.RequestException as exc:
                    raise TransientFailure(f"connection dropped after {digest.size:,} bytes "
                                           f"({type(exc).__name__})") from None
        if total is not None and digest.size != total:
            raise TransientFailure(f"connection closed after {digest.size:,} of {total:,} bytes")
        return True

    def _get(self, url: str, headers: dict[str, str]) -> requests.Response:
        """One request, streamed; 200, 206 and 416 are answers, 5xx and 429 transient.
        Counted when it reached the server (as the WS/2 client counts)."""
        try:
            response = self.session.get(url, headers=headers, stream=True, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as exc:
            failure = describe_network_failure(exc, url, self.timeout)
            self.requests_made += int(failure.sent)
            raise failure from None
        self.requests_made += 1
        status = response.status_code
        log.info("GET %s%s -> %d", url, f" ({headers['Range']})" if "Range" in headers else "", status)
        if status in (200, 206, 416):
            return response
        response.close()
        if status in RETRY_STATUSES or status == 429:
            raise TransientFailure(f"HTTP {status}", status,
                                   parse_retry_after(response.headers.get("Retry-After"), self.clock()))
        if status == 404:
            raise DumpSyncError(f"{url}: not on the dump server (404); the server keeps only its two newest dumps")
        raise RequestFailed(url, 1, f"HTTP {status}")

    def _retrying(self, attempt: Callable[[], T], url: str) -> T:
        """attempt() until it succeeds; transient failures wait the policy's
        backoff (at least Retry-After) and give up after its attempts in a row
        without progress (an attempt that received bytes starts a new count)."""
        streak = {"first": 1, "received": self.bytes_received}

        def stop(state: tenacity.RetryCallState) -> bool:
            if self.bytes_received > streak["received"]:
                streak.update(first=state.attempt_number, received=self.bytes_received)
            return state.attempt_number - streak["first"] + 1 >= self.retry.attempts

        def announce(state: tenacity.RetryCallState) -> None:
            """One warning per retry (on a terminal or with -v, in the log file; not in cron's mail)."""
            wait = state.next_action.sleep if state.next_action else 0.0
            log.warning("%s: %s [retry in %.1f s]", url, getattr(state.outcome.exception(), "reason", ""), wait,
                        extra={"retry": True})

        retrying = tenacity.Retrying(stop=stop, wait=self.retry.wait(self.rng),
                                     retry=tenacity.retry_if_exception_type(TransientFailure), sleep=self.sleep,
                                     before_sleep=announce, reraise=False)
        try:
            return retrying(attempt)
        except tenacity.RetryError as exhausted:
            failure = exhausted.last_attempt.exception()
            raise RequestFailed(url, exhausted.last_attempt.attempt_number,
                                getattr(failure, "reason", str(failure))) from None


def parse_sums(text: str, where: str) -> dict[str, str]:
    """`<hex digest> *<file name>` lines -> {file name: digest}."""
    sums = {}
    for line in text.splitlines():
        match = SUMS_LINE_RE.match(line.strip())
        if match:
            sums[match.group(2)] = match.group(1).lower()
    if not sums:
        raise DumpSyncError(f"{where}: no '<sha256> *<file>' lines in it")
    return sums


def dump_sums(fetcher: DumpFetcher, folder: Path, dump: str) -> dict[str, str]:
    """The dump's SHA256SUMS: fetched once, then kept in its download folder."""
    saved = folder / SUMS_FILE
    if saved.exists():
        return parse_sums(saved.read_text(encoding="utf-8"), str(saved))
    text = fetcher.text(dump, SUMS_FILE)
    sums = parse_sums(text, fetcher.url(dump, SUMS_FILE))
    folder.mkdir(parents=True, exist_ok=True)
    fresh = saved.with_name(saved.name + PART_SUFFIX)
    fresh.write_text(text, encoding="utf-8")
    os.replace(fresh, saved)
    return sums


def prune_downloads(dump_dir: Path, current: str, keep: int) -> list[Path]:
    """After `current` is imported completely: keep it and the newest keep - 1
    dump folders before it; from the older ones, remove what this command
    downloads (archives, parts, SHA256SUMS) and the folder once it is empty."""
    folders = sorted((path for path in dump_dir.iterdir()
                      if path.is_dir() and DUMP_NAME_RE.match(path.name) and path.name <= current), reverse=True)
    removed = []
    for folder in folders[keep:]:
        for path in folder.iterdir():
            if path.name in (SUMS_FILE, SUMS_FILE + PART_SUFFIX) or path.name.endswith((".tar.xz", ".tar.xz.part")):
                path.unlink()
        try:
            folder.rmdir()
        except OSError:
            log.info("%s: kept the folder (it holds files sync-dumps did not put there)", folder)
        removed.append(folder)
    return removed


# ---- the run ------------------------------------------------------------------------


@dataclass(frozen=True)
class Archive:
    entity_type: str
    url: str
    sha256: str
    path: Path


@dataclass
class SyncOutcome:
    """What one sync-dumps run did."""

    run_id: int
    dump: str | None = None
    status: str = ledger.RUNNING  # complete, partial, failed, interrupted, already-imported
    requests: int = 0
    downloaded: list[str] = field(default_factory=list)
    bytes_downloaded: int = 0
    results: list[DumpResult] = field(default_factory=list)
    new: int | None = None
    updated: int | None = None
    unchanged: int | None = None
    gone: dict[str, int] = field(default_factory=dict)  # table -> rows marked gone
    back: dict[str, int] = field(default_factory=dict)  # table -> rows live again
    unchecked: list[str] = field(default_factory=list)  # entity types not checked for deletions
    removed: list[Path] = field(default_factory=list)
    stop_reason: str | None = None

    @property
    def entities_written(self) -> int:
        return sum(result.entities_written for result in self.results)

    def summary(self) -> str:
        if self.status == ALREADY_IMPORTED:
            return f"{COMMAND}: {self.dump} is already imported; nothing to do [run {self.run_id}]"
        text = (f"{COMMAND} {self.dump}: {self.status}, {self.requests} requests, {len(self.downloaded)} archives "
                f"downloaded ({self.bytes_downloaded / 1e6:,.1f} MB), {len(self.results)} imported, "
                f"{self.entities_written:,} entities written")
        if self.status == ledger.COMPLETE:
            marked = ", ".join(f"{table} {n:,}" for table, n in self.gone.items() if n)
            text += (f", {'?' if self.new is None else format(self.new, ',')} new, {sum(self.gone.values()):,} gone"
                     + (f" ({marked})" if marked else ""))
            if any(self.back.values()):
                text += f", {sum(self.back.values()):,} back"
            if self.unchecked:
                text += "; not checked for deletions: " + ", ".join(
                    f"{entity} (needs {' and '.join(archive_name(c) for c in carriers(entity))})"
                    for entity in self.unchecked)
            if self.removed:
                text += f"; removed downloads: {', '.join(path.name for path in self.removed)}"
        if self.stop_reason:
            text += f" ({self.stop_reason}; run it again to continue)"
        return text + f" [run {self.run_id}]"


def dump_counts(db: sqlite_utils.Database, dump: str) -> tuple[int, int, int]:
    """new / updated / unchanged entities of a dump, each entity counted once
    however many of its archives carry it (an artist comes in the artist
    archive and again in every credit of the release archive), over every
    run that imported part of it: new are the rows it added, updated what
    its imports' merges changed, unchanged the rest of what it carries."""
    stamps = sorted(set(_imported(db, dump).values()))
    marks = ", ".join("?" for _ in stamps)
    rows_before = db.execute("SELECT rows_before FROM dump_sync WHERE dump_name = ?", [dump]).fetchone()[0]
    new = _entity_rows(db) - rows_before
    carried = sum(db.execute(f"SELECT count(*) FROM [{table}] WHERE source IN ({marks})",
                             [f"dump:{stamp}" for stamp in stamps]).fetchone()[0] for table in DUMP_TABLES)
    updated = 0
    for (changes,) in db.execute(f"SELECT changes FROM dump_import WHERE dump_timestamp IN ({marks}) "
                                 "AND changes IS NOT NULL", stamps):
        updated += sum(counts.get("updated", 0) for table, counts in json.loads(changes).items()
                       if table in DUMP_TABLES)
    return new, updated, carried - new - updated


def _entity_rows(db: sqlite_utils.Database) -> int:
    return sum(db.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0] for table in DUMP_TABLES)


def _imported(db: sqlite_utils.Database, dump: str) -> dict[str, str]:
    """entity type -> its archive's TIMESTAMP, for this dump's archives imported completely."""
    return dict(db.execute("SELECT entity_type, dump_timestamp FROM dump_sync_file "
                           "WHERE dump_name = ? AND imported_at IS NOT NULL", [dump]).fetchall())


def _already_done(db: sqlite_utils.Database, dump: str, entity_types: list[str]) -> bool:
    """Whether the deletions of this dump (or a newer one) were applied for every type asked for."""
    for name, complete in db.execute("SELECT dump_name, entities_complete FROM dump_sync "
                                     "WHERE completed_at IS NOT NULL AND dump_name >= ?", [dump]).fetchall():
        if name > dump:
            log.warning("LATEST names %s, older than %s already imported; nothing to do", dump, name)
            return True
        if set(entity_types) <= set(json.loads(complete or "[]")):
            return True
    return False


class _Sync:
    """One run's steps; `outcome` records what happened as it happens."""

    def __init__(self, db: sqlite_utils.Database, fetcher: DumpFetcher, outcome: SyncOutcome, *,
                 dump_dir: Path, keep: int, options: ImportOptions, stop_at: float | None,
                 progress: Callable[[Any], None] | None, on_result: Callable[[DumpResult], None] | None,
                 now: Callable[[], str]):
        self.db, self.fetcher, self.outcome = db, fetcher, outcome
        self.dump_dir, self.keep, self.options, self.stop_at = dump_dir, keep, options, stop_at
        self.progress, self.on_result, self.now = progress, on_result, now
        self.archives: list[Archive] = []

    def out_of_time(self) -> bool:
        return self.stop_at is not None and time.monotonic() >= self.stop_at

    def stop(self) -> None:
        self.outcome.status = ledger.PARTIAL
        self.outcome.stop_reason = "stopped at --max-runtime"

    def run(self, entity_types: list[str]) -> None:
        dump = self.outcome.dump = self.fetcher.latest()
        if _already_done(self.db, dump, entity_types):
            self.outcome.status = ALREADY_IMPORTED
            return
        folder = self.dump_dir / dump
        sums = dump_sums(self.fetcher, folder, dump)
        missing = [archive_name(entity) for entity in entity_types if archive_name(entity) not in sums]
        if missing:
            raise DumpSyncError(f"{self.fetcher.url(dump, SUMS_FILE)} lists no {', '.join(missing)}: "
                                f"this dump cannot be synced as asked")
        self.archives = [Archive(entity, self.fetcher.url(dump, archive_name(entity)), sums[archive_name(entity)],
                                 folder / archive_name(entity)) for entity in entity_types]
        self.record_archives(dump)
        imported = _imported(self.db, dump)
        pending = [archive for archive in self.archives if archive.entity_type not in imported]
        for archive in pending:
            if not archive.path.exists() and not self.download(dump, archive):
                return self.stop()
        if pending and not self.import_archives(dump, pending):
            return self.stop()
        self.apply_deletions(dump)
        self.outcome.status = ledger.COMPLETE
        self.outcome.removed = prune_downloads(self.dump_dir, dump, self.keep)

    def record_archives(self, dump: str) -> None:
        with self.db.atomic():
            if self.db.execute("SELECT 1 FROM dump_sync WHERE dump_name = ?", [dump]).fetchone() is None:
                self.db.execute("INSERT INTO dump_sync (dump_name, server, rows_before, started_at) VALUES (?, ?, ?, ?)",
                                [dump, self.fetcher.server, _entity_rows(self.db), self.now()])
            for archive in self.archives:
                self.db.execute(
                    "INSERT INTO dump_sync_file (dump_name, entity_type, file_name, url, sha256) VALUES (?, ?, ?, ?, ?) "
                    "ON CONFLICT (dump_name, entity_type) DO UPDATE SET url = excluded.url, sha256 = excluded.sha256",
                    [dump, archive.entity_type, archive.path.name, archive.url, archive.sha256])

    def download(self, dump: str, archive: Archive) -> bool:
        received = self.fetcher.bytes_received
        finished = self.fetcher.download(archive.url, archive.path, archive.sha256, stop_at=self.stop_at,
                                         progress=self.progress)
        self.outcome.bytes_downloaded += self.fetcher.bytes_received - received
        if finished:
            self.outcome.downloaded.append(archive.path.name)
            with self.db.atomic():
                self.db.execute("UPDATE dump_sync_file SET size_bytes = ?, downloaded_at = ? "
                                "WHERE dump_name = ? AND entity_type = ?",
                                [archive.path.stat().st_size, self.now(), dump, archive.entity_type])
        return finished

    def import_archives(self, dump: str, pending: list[Archive]) -> bool:
        """Import in order; each archive imported completely is recorded at
        once (a crash later does not import it again). True when all are."""
        if self.out_of_time():
            return False
        by_path = {archive.path: archive for archive in pending}

        def recorded(result: DumpResult) -> None:
            self.outcome.results.append(result)
            if result.status in ("complete", "already-imported"):
                with self.db.atomic():
                    self.db.execute("UPDATE dump_sync_file SET dump_timestamp = ?, imported_at = ? "
                                    "WHERE dump_name = ? AND entity_type = ?",
                                    [result.source.removeprefix("dump:"), self.now(), dump,
                                     by_path[Path(result.path)].entity_type])
            if self.on_result is not None:
                self.on_result(result)

        remaining = None if self.stop_at is None else max(self.stop_at - time.monotonic(), 0.0)
        import_dumps(self.db, [archive.path for archive in pending], self.options, max_runtime=remaining,
                     progress=self.progress, on_result=recorded, run_id=self.outcome.run_id)
        return set(_imported(self.db, dump)) >= {archive.entity_type for archive in pending}

    def apply_deletions(self, dump: str) -> None:
        applied = apply_deletions(self.db, dump, self.now())
        self.outcome.gone, self.outcome.back, self.outcome.unchecked = applied.gone, applied.back, applied.unchecked
        self.outcome.new, self.outcome.updated, self.outcome.unchanged = dump_counts(self.db, dump)


@dataclass(frozen=True)
class Deletions:
    gone: dict[str, int]  # table -> rows marked gone
    back: dict[str, int]  # table -> rows live again
    unchecked: list[str]  # entity types imported but not checked (an archive that carries them is missing)


def apply_deletions(db: sqlite_utils.Database, dump: str, now: str) -> Deletions:
    """Mark gone what `dump` no longer carries, for every type whose carrying
    archives are all imported; bring back what it carries again; record the
    dump as done for its imported types. One transaction.

    Each table is scanned once for the marking (there is no index on source;
    one scan a dump is cheaper than an index every import keeps up to date);
    bringing rows back walks only the rows already gone (the gone_at indexes)."""
    imported = _imported(db, dump)
    sources = sorted({f"dump:{stamp}" for stamp in imported.values()})
    dump_time = max(imported.values())
    covered = [entity for entity in DUMP_ENTITY_TYPES if all(c in imported for c in carriers(entity))]
    gone, back = {}, {}
    marks = ", ".join("?" for _ in sources)
    with db.atomic():
        for entity in covered:
            table = TABLE_OF[entity]
            gone[table] = db.execute(
                f"UPDATE [{table}] SET gone_at = ? WHERE gone_at IS NULL AND source >= 'dump:' AND source < ?",
                [dump_time, sources[0]]).rowcount
        for table in DUMP_TABLES:
            back[table] = db.execute(f"UPDATE [{table}] SET gone_at = NULL WHERE gone_at < ? AND source IN ({marks})",
                                     [dump_time, *sources]).rowcount
        db.execute("UPDATE dump_sync SET entities_complete = ?, completed_at = ? WHERE dump_name = ?",
                   [json.dumps(import_order(imported)), now, dump])
    for table, n in gone.items():
        if n:
            log.info("%s: %d %s rows no longer in the dump, marked gone at %s", dump, n, table, dump_time)
    return Deletions(gone, back, [entity for entity in import_order(imported) if entity not in covered])


def _finish(db: sqlite_utils.Database, outcome: SyncOutcome, args: dict[str, Any], sync: _Sync,
            error: str | None = None) -> None:
    """Close the ledger row. Its args name the dump and each archive's URL
    and SHA-256 (`dump_url`, `sha256`: a data card cites them) and TIMESTAMP."""
    imported = _imported(db, outcome.dump) if outcome.dump else {}
    args = {**args, "dump": outcome.dump,
            "dump_timestamp": max(imported.values()) if imported else None,
            "archives": [{"entity": a.entity_type, "dump_url": a.url, "sha256": a.sha256,
                          "dump_timestamp": imported.get(a.entity_type)} for a in sync.archives]}
    if outcome.status == ALREADY_IMPORTED:
        args["already_imported"] = True
    if outcome.unchecked:
        args["not_checked_for_deletions"] = outcome.unchecked
    status = ledger.COMPLETE if outcome.status == ALREADY_IMPORTED else outcome.status
    with db.atomic():
        ledger.update_run(db, outcome.run_id, finished_at=utc_now(), status=status, requests=outcome.requests,
                          entities_written=outcome.entities_written, new=outcome.new, updated=outcome.updated,
                          unchanged=outcome.unchanged, gone=sum(outcome.gone.values()) if outcome.gone else None,
                          error=error or outcome.stop_reason, args=json.dumps(args, sort_keys=True))


def run_sync(db: sqlite_utils.Database, fetcher: DumpFetcher, entity_types: Iterable[str], *, dump_dir: Path,
             keep: int = 1, options: ImportOptions = ImportOptions(), max_runtime: float | None = None,
             progress: Callable[[Any], None] | None = None,
             on_result: Callable[[DumpResult], None] | None = None,
             now: Callable[[], str] = utc_now) -> SyncOutcome:
    """One ledgered sync of the newest dump. The caller holds the run lock.

    Stops cleanly at `max_runtime` (status partial; the next run continues
    without downloading again what is complete and verified). A typed error
    is recorded as failed and raised again."""
    entity_types = import_order(entity_types)
    stop_at = time.monotonic() + max_runtime if max_runtime is not None else None
    args = {"server": fetcher.server, "entities": entity_types, "dump_dir": str(dump_dir), "keep": keep}
    outcome = SyncOutcome(run_id=ledger.start_run(db, COMMAND, args, now()))
    sync = _Sync(db, fetcher, outcome, dump_dir=Path(dump_dir), keep=keep, options=options, stop_at=stop_at,
                 progress=progress, on_result=on_result, now=now)
    requests_before = fetcher.requests_made
    try:
        sync.run(entity_types)
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):  # Ctrl-C or a stop signal
            outcome.status = ledger.INTERRUPTED
            message = (f"interrupted by {as_interrupted(exc).signal_name}; everything committed is kept and "
                       "a partial download continues where it stopped")
        else:
            outcome.status = ledger.FAILED
            message = str(exc) if isinstance(exc, HarvesterError) else f"{type(exc).__name__}: {exc}"
        outcome.requests = fetcher.requests_made - requests_before
        try:
            _finish(db, outcome, args, sync, message)
        except sqlite3.Error:  # a full disk may refuse the ledger row too
            pass
        raise
    outcome.requests = fetcher.requests_made - requests_before
    _finish(db, outcome, args, sync)
    return outcome


def sync_with_settings(settings: Settings, entity_types: Iterable[str], *, fetcher: DumpFetcher | None = None,
                       progress: Callable[[Any], None] | None = None,
                       on_result: Callable[[DumpResult], None] | None = None) -> SyncOutcome:
    """Identify, lock the database, sync and record. The contact and the
    server URL are checked before anything is opened or sent."""
    fetcher = fetcher or DumpFetcher.from_settings(settings)
    options = ImportOptions(supplementary=settings.include_supplementary, memory_mb=settings.import_memory_mb,
                            temp_dir=settings.import_temp_dir, processes=settings.import_processes)
    try:
        with ledger.run_lock(settings.db, COMMAND, utc_now()):
            db = open_db(settings.db)
            try:
                return run_sync(db, fetcher, entity_types, dump_dir=settings.dump_dir, keep=settings.dump_keep,
                                options=options, max_runtime=settings.max_runtime, progress=progress,
                                on_result=on_result)
            except sqlite3.Error as exc:
                raise DatabaseError(describe_sqlite_error(settings.db, exc)) from None
            finally:
                db.close()
    finally:
        fetcher.close()
