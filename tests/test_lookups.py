"""The merge's set lookups held in memory (dumps.lookups.LastLines): every
named set answers its last line, every other key None, whatever the hashes
do; sets the hashes cannot tell apart answer AMBIGUOUS (the file answers)."""

from __future__ import annotations

import random
import zlib
from collections import Counter

import orjson

from harvester.dumps.lookups import AMBIGUOUS, LastLines


def named_sets(count: int, seed: int) -> dict[tuple, int]:
    rng = random.Random(seed)
    kinds = ("recording", "release", "artist", "work")
    return {(f"{rng.getrandbits(128):032x}", rng.choice(kinds)): rng.randrange(5_000_000) for _ in range(count)}


def sealed(sets: dict[tuple, int], **hashes) -> LastLines:
    index = LastLines(len(sets), **hashes)
    for key, line in sets.items():
        index.add(key, line)
    index.seal()
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


def test_sets_of_one_hash_are_told_apart_by_the_check_and_a_key_named_by_none_is_none():
    sets = named_sets(2_000, seed=3)
    index = sealed(sets, hash_of=lambda key: 12345)  # every set in one bucket, one hash: the check's 16 bits decide
    checks = Counter(zlib.crc32(orjson.dumps(key)) & 0xFFFF for key in sets)
    shared = {key for key in sets if checks[zlib.crc32(orjson.dumps(key)) & 0xFFFF] > 1}
    assert 0 < len(shared) < 200  # ~2,000^2 / 2^17 pairs share a check
    assert all(index.get(key) == (AMBIGUOUS if key in shared else line) for key, line in sets.items())
    for key in named_sets(500, seed=4):
        assert index.get(key) == (AMBIGUOUS if checks[zlib.crc32(orjson.dumps(key)) & 0xFFFF] > 1 else
                                  line_of(sets, key))


def line_of(sets: dict[tuple, int], key: tuple) -> int | None:
    """What a key whose check matches one set's answers: that set's line (a false match, 1 in 2^16 here)."""
    check = zlib.crc32(orjson.dumps(key)) & 0xFFFF
    found = [line for other, line in sets.items() if zlib.crc32(orjson.dumps(other)) & 0xFFFF == check]
    return found[0] if found else None


def test_sets_the_hashes_cannot_tell_apart_answer_ambiguous_and_the_others_stay_exact():
    sets = named_sets(3_000, seed=5)
    # one hash for every key, and a check of 8 values: each set shares its packed value with others
    index = sealed(sets, hash_of=lambda key: -7, check_of=lambda key: int(key[0][:2], 16) % 8)
    answers = [index.get(key) for key in sets]
    assert set(answers) == {AMBIGUOUS}
    # a check nobody else has: exact again
    lone = dict(list(sets.items())[:3])
    index = sealed(lone, hash_of=lambda key: -7, check_of=lambda key: {k: n for n, k in enumerate(lone)}[key])
    assert [index.get(key) for key in lone] == list(lone.values())


def test_a_handful_of_sets_needs_one_bucket():
    index = sealed({("a", "b"): 3, ("c", "d"): 0})
    assert index.bits == 0 and len(index.packed) == 1
    assert (index.get(("a", "b")), index.get(("c", "d")), index.get(("a", "d"))) == (3, 0, None)
