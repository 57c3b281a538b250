"""The merge's set lookups held in memory (dumps.lookups.LastLines): every
named set answers its last line, every other key None; sets the hashes
cannot tell apart are refused whole (the set lookups' file answers instead)."""

from __future__ import annotations

import random
import zlib
from collections import Counter

import orjson

from harvester.dumps.lookups import LastLines


def named_sets(count: int, seed: int) -> dict[tuple, int]:
    rng = random.Random(seed)
    kinds = ("recording", "release", "artist", "work")
    return {(f"{rng.getrandbits(128):032x}", rng.choice(kinds)): rng.randrange(5_000_000) for _ in range(count)}


def filled(sets: dict[tuple, int], **hashes) -> LastLines:
    index = LastLines(len(sets), **hashes)
    for key, line in sets.items():
        index.add(key, line)
    return index


def sealed(sets: dict[tuple, int], **hashes) -> LastLines:
    index = filled(sets, **hashes)
    assert index.seal()
    return index


def test_every_named_set_answers_its_line_and_every_other_key_none():
    sets = named_sets(50_000, seed=1)
    index = sealed(sets)
    assert index.bits == 8  # 50,000 sets: 195 a bucket
    assert all(index.get(key) == line for key, line in sets.items())
    others = named_sets(20_000, seed=2)
    assert not set(others) & set(sets)
    assert all(index.get(key) is None for key in others)
    # the same id under another type, and keys holding NULL (`=` in SQL never matches NULL)
    assert all(index.get((mbid, "label")) is None for mbid, _ in list(sets)[:1000])
    assert index.get((None, "recording")) is None


def check16(key: tuple) -> int:
    return zlib.crc32(orjson.dumps(key)) & 0xFFFF


def test_sets_of_one_hash_are_told_apart_by_the_check():
    # every set in one bucket with one hash: the check's 16 bits alone tell them apart
    sets = named_sets(3_000, seed=3)
    by_check = Counter(check16(key) for key in sets)
    apart = {key: line for key, line in sets.items() if by_check[check16(key)] == 1}
    assert 2_000 < len(apart) < len(sets)
    index = sealed(apart, hash_of=lambda key: 12345)
    assert all(index.get(key) == line for key, line in apart.items())
    for key in named_sets(500, seed=4):  # not named: None, unless its check is a named set's (forced here)
        same = [line for other, line in apart.items() if check16(other) == check16(key)]
        assert index.get(key) == (same[0] if same else None)


def test_sets_the_hashes_cannot_tell_apart_are_refused_whole():
    sets = named_sets(3_000, seed=3)
    assert not filled(sets, hash_of=lambda key: 12345).seal()  # two sets of one check among 3,000
    twins = list(sets)[:2]
    assert not filled(sets, hash_of=lambda key: 0 if key in twins else hash(key),
                      check_of=lambda key: 0 if key in twins else zlib.crc32(orjson.dumps(key))).seal()
    assert filled(sets).seal()


def test_a_handful_of_sets_needs_one_bucket():
    index = sealed({("a", "b"): 3, ("c", "d"): 0})
    assert index.bits == 0 and len(index.packed) == 1
    assert (index.get(("a", "b")), index.get(("c", "d")), index.get(("a", "d"))) == (3, 0, None)
