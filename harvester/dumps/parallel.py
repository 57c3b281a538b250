"""Staging on several processes (`import-dump --processes N`).

One Python process stages ~500 release lines a second, bound by the
interpreter: parsing, the normalizer and staging the rows hold its lock.
Here each staging process takes a range of consecutive lines, stages it
exactly as the importer's own Stager does and writes its chunks; the
importer accepts the ranges in line order, so the manifest moves over
whole ranges as in serial staging and an interrupted import resumes the
same way (a range not yet accepted is staged again).

Column sets (staging.ColumnSets) are numbered by the importer. A range
starts from the sets known when it was sent; one that met new sets is
accepted when no range accepted meanwhile numbered other sets of the same
table, and else staged again from the sets now known (in practice only the
first ranges of an import meet new sets).
"""

from __future__ import annotations

import ctypes
import gc
import os
import pickle
import signal
import socket
import subprocess
import sys
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import orjson

from harvester.dumps.runs import Section
from harvester.dumps.staging import ColumnSets, Stager, StageCounts, write_chunk
from harvester.errors import NormalizeError
from harvester.normalize import normalize_entity

# The bytes of a range's lines, per byte of a process's chunk budget: staged
# release lines take ~1.3 times their bytes (Stager.memory); the range is half
# of that, so a process holds its lines and their staged rows within its share.
RANGE_BYTES_PER_CHUNK_BYTE = 0.4
PR_SET_PDEATHSIG = 1
ENTRY = "import sys; from harvester.dumps.parallel import main; main(sys.argv[1:])"


@dataclass(frozen=True)
class StagingSettings:
    """What every range of one import is staged with."""

    entity_type: str
    keys: dict[str, tuple[str, ...]]
    supplementary: bool
    keep_documents: bool
    skip_bad_lines: bool
    chunk_bytes: int  # a process's share of the chunk budget
    filter_entries: int


@dataclass
class RangeJob:
    """A range of lines for a staging process."""

    number: int
    first: int  # the position of its first line
    lines: list[bytes]
    folder: Path
    column_sets: dict  # the importer's column sets when it was sent (ColumnSets.as_json)
    key_types: dict


@dataclass
class RangeResult:
    """A staged range: its chunks (in line order) and what staging it saw."""

    number: int
    end: int  # the position of its last line staged
    chunks: list[dict[str, Section]]
    column_sets: dict
    key_types: dict
    counts: StageCounts
    normalized: int = 0
    bad: list[tuple[int, str]] = field(default_factory=list)
    stopped: bool = False  # a bad line stopped it (without --skip-bad-lines): it is bad[-1]


def describe_bad_line(exc: Exception) -> str:
    if isinstance(exc, NormalizeError):
        return str(exc)
    if isinstance(exc, orjson.JSONDecodeError):
        return f"not valid JSON ({exc.msg} at column {exc.colno})"
    return f"not valid JSON ({exc})"


def stage_range(job: RangeJob, settings: StagingSettings) -> RangeResult:
    """Stage a range's lines as the importer does, a chunk file each time
    the process's share of the chunk budget is full."""
    column_sets = ColumnSets.from_json(settings.keys, job.column_sets)
    column_sets.adopt_types(job.key_types)
    counts = StageCounts()
    stager = Stager(settings.keys, column_sets, settings.filter_entries, counts)
    result = RangeResult(job.number, job.first - 1, [], {}, {}, counts)

    def write() -> None:
        buffers = stager.take()
        if buffers:
            path = job.folder / f"chunk-{os.getppid()}-{job.number:06d}-{len(result.chunks):03d}.run"
            result.chunks.append(write_chunk(path, buffers))

    position = job.first - 1
    for line in job.lines:
        position += 1
        if line.strip():
            try:
                stager.add(position, normalize_entity(settings.entity_type, orjson.loads(line),
                                                      supplementary=settings.supplementary,
                                                      keep_document=settings.keep_documents), len(line))
                result.normalized += 1
            except (ValueError, NormalizeError) as exc:  # JSON, the normalizer, a row the store cannot hold
                result.bad.append((position, describe_bad_line(exc)))
                if not settings.skip_bad_lines:
                    result.stopped = True
                    position -= 1
                    break
        if stager.memory() >= settings.chunk_bytes:
            write()
    write()
    result.end = position
    result.column_sets = column_sets.as_json()
    result.key_types = column_sets.key_types()
    return result


def die_with_parent(parent: int) -> None:
    """A helper process (staging, building) must not outlive the importer
    (kill -9 included): a rerun would meet it still writing."""
    if sys.platform.startswith("linux"):
        try:
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
        except (OSError, AttributeError):
            pass
    if os.getppid() != parent:
        os._exit(0)


def serve(connection: Connection, parent: int) -> None:
    """A staging process: its settings, then each range received staged, until
    told to stop or the importer is gone."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C and SIGTERM are the importer's to handle
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    die_with_parent(parent)
    gc.disable()  # as in the importer: documents are trees, freed by reference counting
    try:
        settings = connection.recv()
    except (EOFError, OSError):
        return
    while True:
        try:
            job = connection.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        try:
            answer: Any = stage_range(job, settings)
        except BaseException as exc:  # raised again in the importer
            answer = exc if _picklable(exc) else RuntimeError(f"{type(exc).__name__}: {exc}")
        try:
            connection.send(answer)
        except OSError:
            return


def _picklable(exc: BaseException) -> bool:
    try:
        pickle.dumps(exc)
        return True
    except Exception:
        return False


class StagingProcessError(RuntimeError):
    """A staging process ended without answering (killed, out of memory)."""


def bytes_written() -> int | None:
    """This process's bytes written to storage so far (Linux /proc; None elsewhere)."""
    try:
        with open("/proc/self/io", "rb") as io:
            for line in io:
                if line.startswith(b"write_bytes:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return None


def start_process(entry: str) -> tuple[subprocess.Popen, Connection]:
    """A helper process running `entry` (Python code calling its module's
    main with the socket's descriptor and the importer's pid), and the
    connection to it. A fresh interpreter (not multiprocessing's fork or
    spawn): it inherits nothing of the importer (threads, SQLite's locks),
    never runs the importer's own main module again, and imports this
    harvester (the importer's sys.path)."""
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join(path for path in sys.path if path)}
    mine, theirs = socket.socketpair()
    try:
        process = subprocess.Popen([sys.executable, "-c", entry, str(theirs.fileno()), str(os.getpid())],
                                   pass_fds=[theirs.fileno()], stdin=subprocess.DEVNULL, env=environment)
    except BaseException:
        mine.close()
        raise
    finally:
        theirs.close()
    return process, Connection(mine.detach())


class StagingProcesses:
    """N staging processes; ranges go round the processes in line order and
    come back in the same order."""

    def __init__(self, count: int, settings: StagingSettings):
        self.processes: list[subprocess.Popen] = []
        self.connections: list[Connection] = []
        self.pending: list[RangeJob | None] = [None] * count
        try:
            for _ in range(count):
                process, connection = start_process(ENTRY)
                self.processes.append(process)
                self.connections.append(connection)
                connection.send(settings)
        except BaseException:
            self.close()
            raise

    def __enter__(self) -> "StagingProcesses":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def slot(self, number: int) -> int:
        return number % len(self.processes)

    def send(self, job: RangeJob) -> None:
        slot = self.slot(job.number)
        assert self.pending[slot] is None, "a range is sent to a process only once its last one is accepted"
        self.pending[slot] = job
        self.connections[slot].send(job)

    def outstanding(self, slot: int) -> RangeJob | None:
        return self.pending[slot]

    def receive(self, slot: int) -> RangeResult:
        """The staged range of a process (its exception raised here)."""
        try:
            answer = self.connections[slot].recv()
        except (EOFError, OSError):
            process = self.processes[slot]
            try:
                code = process.wait(timeout=1)
            except subprocess.TimeoutExpired:
                code = None
            raise StagingProcessError(f"staging process {slot + 1} ended without answering "
                                      f"(exit code {code})") from None
        if isinstance(answer, BaseException):
            raise answer
        return answer

    def resend(self, slot: int, column_sets: dict, key_types: dict) -> None:
        """Stage the outstanding range of a process again, from these column sets."""
        job = self.pending[slot]
        assert job is not None
        job.column_sets, job.key_types = column_sets, key_types
        self.connections[slot].send(job)

    def done(self, slot: int) -> None:
        self.pending[slot] = None

    def close(self) -> None:
        """Stop every process: at once (a range in progress is abandoned; its
        files, never recorded, are removed by the next run)."""
        for process in self.processes:
            if process.poll() is None:
                process.kill()
        for process in self.processes:
            process.wait()
        for connection in self.connections:
            connection.close()
        self.processes, self.connections = [], []


def main(argv: list[str]) -> None:
    """A staging process's entry (ENTRY): the socket to the importer, the importer's pid."""
    descriptor, parent = (int(value) for value in argv)
    serve(Connection(descriptor), parent)

