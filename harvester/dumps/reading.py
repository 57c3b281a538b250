"""Reading a dump file as a stream: archives, bare JSON Lines files, FIFOs, stdin.

A published dump is `<entity>.tar.xz` holding `TIMESTAMP`, `COPYING`, ... and
`mbdump/<entity>`: JSON Lines, one WS/2 lookup document per line. The archive
is read as a stream (never unpacked, never held in memory), so it may also
come through a pipe: `-` is standard input, and a FIFO is read like a file.
A stream cannot be read twice, so an interrupted import of one resumes only
if the same lines come again (the skipped lines are read, not parsed).
"""

from __future__ import annotations

import io
import lzma
import os
import queue
import re
import stat
import sys
import tarfile
import threading
import zlib
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import IO, TYPE_CHECKING, Iterator

from harvester.errors import HarvesterError, UsageError
from harvester.normalize import DUMP_ENTITY_TYPES

if TYPE_CHECKING:
    from harvester.dumps.importer import ImportOptions

READ_BUFFER = 1 << 20
XZ_MAGIC = b"\xfd7zXZ\x00"
COMPRESSED_MAGIC = (XZ_MAGIC, b"\x1f\x8b", b"BZh")  # xz, gzip, bzip2: a stream holding an archive
STDIN = "-"
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
class _Part:
    """One data member of a dump (or a bare file): what it is and its lines."""

    entity_type: str
    dump_time: str
    lines: Iterator[bytes]
    size: int | None  # bytes of the lines, when known before reading them (a file, a tar member)


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


def is_stream(path: Path) -> bool:
    """Standard input or a FIFO: read once, size unknown."""
    if str(path) == STDIN:
        return True
    try:
        return stat.S_ISFIFO(os.stat(path).st_mode)
    except OSError:
        return False


def open_raw(path: Path) -> IO[bytes]:
    """The file's bytes, buffered (standard input for `-`)."""
    if str(path) == STDIN:
        return io.BufferedReader(io.FileIO(os.dup(sys.stdin.fileno()), "rb"), READ_BUFFER)
    try:
        return open(path, "rb", buffering=READ_BUFFER)
    except OSError as exc:
        raise UsageError(f"{path}: cannot read ({exc.strerror})") from None


def _holds_archive(path: Path, raw: IO[bytes]) -> bool:
    """An archive by its name or, for a stream, by its first bytes."""
    if is_archive(path):
        return True
    if not is_stream(path):
        return False
    head = raw.peek(len(XZ_MAGIC))
    return any(head.startswith(magic) for magic in COMPRESSED_MAGIC)


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
    if stem in DUMP_ENTITY_TYPES:
        return stem
    raise UsageError(f"{path}: cannot tell which entity this file holds; name it mbdump/<entity> "
                     f"or give --entity ({', '.join(DUMP_ENTITY_TYPES)})")


@contextmanager
def _open_parts(path: Path, raw: IO[bytes], options: ImportOptions) -> Iterator[Iterator[_Part]]:
    """The data parts of a dump file, read as a stream from `raw`."""
    if not _holds_archive(path, raw):
        streamed = is_stream(path)
        if options.timestamp is None and streamed:
            raise UsageError(f"{path}: a stream of JSON lines has no date: give the dump's --timestamp")
        stamp = options.timestamp or datetime.fromtimestamp(path.stat().st_mtime, timezone.utc).isoformat()
        size = None if streamed else path.stat().st_size
        yield iter([_Part(entity_of_file(path, options.entity_type), dump_time(stamp, what=str(path)), iter(raw),
                          size)])
        return
    stream: IO[bytes] = raw
    if raw.peek(len(XZ_MAGIC))[:len(XZ_MAGIC)] == XZ_MAGIC:
        stream = _XzOnThread(raw)
    try:
        try:
            tar = tarfile.open(fileobj=stream, mode="r|*", bufsize=READ_BUFFER)
        except _READ_ERRORS as exc:
            raise DumpError(f"{path}: not a readable tar archive ({exc})") from None
        with tar:
            yield _archive_parts(path, tar, options)
    finally:
        if stream is not raw:
            stream.close()


class _XzOnThread(io.RawIOBase):
    """An xz stream's decompressed bytes, decompressed on a thread of its
    own: lzma releases the GIL, so decompression (a third of the reading
    thread's work) runs beside the JSON parsing instead of before it. A read
    error is raised to the reader, at the point of the stream it happened."""

    CHUNK = 256 << 10

    def __init__(self, raw: IO[bytes]):
        super().__init__()
        self._chunks: queue.Queue = queue.Queue(maxsize=8)
        self._stopping = threading.Event()
        self._pending = memoryview(b"")
        self._ended = False
        self._thread = threading.Thread(target=self._work, args=(raw,), name="dump-xz", daemon=True)
        self._thread.start()

    def _put(self, item: bytes | BaseException | None) -> bool:
        while not self._stopping.is_set():
            try:
                self._chunks.put(item, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def _work(self, raw: IO[bytes]) -> None:
        decompressor = lzma.LZMADecompressor(lzma.FORMAT_XZ)
        try:
            while not decompressor.eof:
                data = raw.read(self.CHUNK)
                if not data:
                    raise EOFError("Compressed file ended before the end-of-stream marker was reached")
                out = decompressor.decompress(data)
                if out and not self._put(out):
                    return
            self._put(None)
        except BaseException as exc:  # raised again in the reading thread
            self._put(exc)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            if self._ended:
                return 0
            item = self._chunks.get()
            if item is None or isinstance(item, BaseException):
                self._ended = True
                if item is None:
                    return 0
                raise item
            self._pending = memoryview(item)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size

    def close(self) -> None:
        self._stopping.set()
        self._thread.join()
        super().close()


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
            if entity_type not in DUMP_ENTITY_TYPES:
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
            yield _Part(entity_type, when, iter(member_file), member.size)
            return
    except _READ_ERRORS as exc:
        raise DumpError(f"{path}: the archive is truncated or corrupt ({type(exc).__name__}: {exc})") from None
    wanted = f"mbdump/{options.entity_type}" if options.entity_type else "mbdump/<entity> member"
    found = f" (it holds {', '.join(unknown)}; importable: {', '.join(DUMP_ENTITY_TYPES)})" if unknown else ""
    raise UsageError(f"{path}: holds no {wanted} to import{found}")


