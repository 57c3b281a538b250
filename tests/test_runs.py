"""Sorted runs on disk: what a merge of many chunks reads, and what it holds while reading."""

from __future__ import annotations

import os
import random
import tracemalloc
import uuid
import zlib
from pathlib import Path

import orjson
import pytest

from harvester.dumps.runs import BLOCK_BYTES, Section, merged, read_section, write_section

CHUNKS = 300  # a dump of a few million lines at the default --memory, or far fewer at a small one


def relationship_like(rng: random.Random, line: int) -> list:
    """A staged record shaped like a relationship row: key, place, column set, values."""
    key = [str(uuid.UUID(int=rng.getrandbits(128))), "recording", "artist", str(uuid.UUID(int=rng.getrandbits(128)))]
    return [key, line << 24, 0, "performer", "2c0b1a0e-0c4e-4f4e-9d1b-3b0e2c8b9d1e", "backward", None, None, 0,
            '["lead vocals"]', "{}", "{}", "", "", 0, "2025-11-22T00:00:52Z", "dump:2025-11-22T00:00:52Z"]


def write_chunks(folder: Path, records_each: int, rng: random.Random) -> tuple[list[Section], list[list]]:
    sections, everything = [], []
    for number in range(CHUNKS):
        records = sorted((relationship_like(rng, number * records_each + i) for i in range(records_each)),
                         key=lambda record: record[0])
        everything.extend(records)
        path = folder / f"chunk-{number:06d}.run"
        with open(path, "wb") as out:
            sections.append(write_section(out, path, records))
    return sections, everything


def blocks_of(section: Section) -> list[bytes]:
    data = section.path.read_bytes()[section.offset:section.offset + section.length]
    blocks, at = [], 0
    while at < len(data):
        size = int.from_bytes(data[at:at + 4], "little")
        blocks.append(zlib.decompress(data[at + 4:at + 4 + size]))
        at += 4 + size
    return blocks


def test_a_merge_of_many_chunks_yields_every_record_in_key_order(tmp_path):
    sections, everything = write_chunks(tmp_path, 40, random.Random(1))
    got = list(merged(sections))
    assert [record[0] for record in got] == sorted(record[0] for record in everything)
    assert sorted(map(orjson.dumps, got)) == sorted(map(orjson.dumps, everything))


@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts descriptors in /proc/self/fd (Linux)")
def test_a_merge_of_many_chunks_keeps_no_file_open_between_blocks(tmp_path):
    sections, _ = write_chunks(tmp_path, 40, random.Random(2))
    before = len(os.listdir("/proc/self/fd"))
    stream = merged(sections)
    for _ in range(CHUNKS * 2):  # every reader has read its first block and is part way into its section
        next(stream)
    assert len(os.listdir("/proc/self/fd")) - before < 10  # not one per chunk (1,024 is a common limit)


def test_what_each_chunk_reader_holds_stays_small(tmp_path):
    """The merge holds one block of each chunk; a large dump has hundreds of chunks."""
    sections, _ = write_chunks(tmp_path, 2_000, random.Random(3))
    for section in sections[:5]:
        sizes = [len(block) for block in blocks_of(section)]
        assert len(sizes) > 10 and max(sizes) <= 2 * BLOCK_BYTES
    tracemalloc.start()
    try:
        stream = merged(sections)
        next(stream)  # heapq.merge reads a first record of every chunk
        held, _ = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert held / CHUNKS < 0.3e6  # bytes per chunk reader (256 kB blocks held ~1.3 MB of objects)


def test_a_section_cut_short_is_an_error_not_a_short_read(tmp_path):
    path = tmp_path / "chunk-000001.run"
    with open(path, "wb") as out:
        section = write_section(out, path, [[f"{i:08d}", i, 0, "x" * 50] for i in range(5_000)])
    with open(path, "r+b") as out:
        out.truncate(section.length - 10)
    with pytest.raises(OSError, match="cut short"):
        list(read_section(section))
