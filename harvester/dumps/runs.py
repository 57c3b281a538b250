"""Sorted runs on disk: how staged rows wait for the merge.

A chunk file holds one section per stream (a table's rows, or a table's
named child sets), each section sorted and cut into blocks:
`<4-byte length><zlib(JSON array of records)>`. A record is a JSON array
whose first element is its key (a value, or an array of a composite key's
values) and whose second is its place in the dump, so the chunks' sections
of one stream are merged by comparing records as they are: Python compares
lists element by element, as SQLite compares the columns of a key, as long
as each column holds one type (staging.py checks that it does).

The merge reads every chunk's section of a stream at once, so what one
reader holds is paid once per chunk, and a large dump has hundreds of
chunks (~85 a million release lines at the default --memory, several times
more with less): blocks are small (~32 kB of JSON, ~0.13 MB as Python
objects; 256 kB blocks held ~1 MB each) and a reader keeps no file open
between two blocks (a descriptor per chunk and stream ran into the
open-files limit, 1,024 on many systems).
"""

from __future__ import annotations

import heapq
import os
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Iterable, Iterator

import orjson

BLOCK_BYTES = 32 << 10  # JSON per block: measured, 2.6 % larger runs than 256 kB blocks, reading 10 % slower
FIRST_BLOCK_RECORDS = 64  # the first block's records, before the block size is known
ZLIB_LEVEL = 1  # ~4x smaller at a few hundred MB/s: the runs cost a tenth of the database's writes
_LENGTH = struct.Struct("<I")


@dataclass(frozen=True)
class Section:
    """Where one stream's sorted records sit in a chunk file."""

    path: Path
    offset: int
    length: int
    records: int

    def as_json(self) -> list:
        return [self.path.name, self.offset, self.length, self.records]

    @classmethod
    def from_json(cls, folder: Path, value: list) -> "Section":
        name, offset, length, records = value
        return cls(folder / name, offset, length, records)


def write_section(out: BinaryIO, path: Path, records: list) -> Section:
    """Append sorted records to an open chunk file as one section of
    blocks of about BLOCK_BYTES of JSON (the records per block adapt to
    their size)."""
    start = out.tell()
    per_block = FIRST_BLOCK_RECORDS
    index = 0
    while index < len(records):
        data = orjson.dumps(records[index:index + per_block])
        packed = zlib.compress(data, ZLIB_LEVEL)
        out.write(_LENGTH.pack(len(packed)))
        out.write(packed)
        index += per_block
        per_block = max(16, per_block * BLOCK_BYTES // max(1, len(data)))
    return Section(path, start, out.tell() - start, len(records))


def read_section(section: Section) -> Iterator[list]:
    """The records of one section, a block at a time; the file is open only
    while a block is read."""
    offset, end = section.offset, section.offset + section.length
    while offset < end:
        fd = os.open(section.path, os.O_RDONLY)
        try:
            header = os.pread(fd, _LENGTH.size, offset)
            size = _LENGTH.unpack(header)[0] if len(header) == _LENGTH.size else 0
            packed = os.pread(fd, size, offset + _LENGTH.size)
        finally:
            os.close(fd)
        if not size or len(packed) != size:
            raise OSError(f"{section.path}: a staged block is cut short")
        offset += _LENGTH.size + size
        yield from orjson.loads(zlib.decompress(packed))


def merged(sections: Iterable[Section]) -> Iterator[list]:
    """The records of several sorted sections, in one sorted stream."""
    readers = [read_section(section) for section in sections if section.records]
    if len(readers) == 1:
        return readers[0]
    return heapq.merge(*readers)


def fsync_file(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
