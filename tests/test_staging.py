"""The staging's repeat filter against what it promises: every copy of a
row is staged, or dropped only because an identical copy of its key comes
next and is staged (or dropped the same way) after it."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from harvester.dumps.staging import RepeatFilter

# a copy: (table, key, column set, values); small spaces so that keys and values recur
copies = st.lists(st.tuples(st.sampled_from(["artist", "label"]), st.integers(0, 5), st.integers(0, 1),
                            st.tuples(st.sampled_from(["a", "b"]))), max_size=80)


@settings(max_examples=300, deadline=None)
@given(copies=copies, entries=st.integers(1, 8), drain_every=st.integers(5, 100))
def test_repeat_filter_drops_only_copies_an_identical_later_copy_stands_for(copies, entries, drain_every):
    repeat_filter = RepeatFilter(entries)
    streams: dict[str, list] = {"artist": [], "label": []}
    repeats = 0
    for seq, (table, key, number, values) in enumerate(copies):
        repeat_filter.add(streams[table], table, key, seq, number, values)
        assert len(repeat_filter.runs) <= entries
        if seq % drain_every == drain_every - 1:
            repeats += repeat_filter.repeats
            repeat_filter.repeats = 0
            repeat_filter.drain()
    repeats += repeat_filter.repeats
    repeat_filter.drain()

    staged = {(table, *record[:3], *record[3:]) for table, records in streams.items() for record in records}
    assert len(staged) + repeats == len(copies)
    for table, records in streams.items():
        for record in records:  # each staged record is one of the copies, at that copy's place
            key, seq, number, *values = record
            assert copies[seq] == (table, key, number, tuple(values))
        seqs_of_key: dict = {}
        for key, seq, *_ in records:  # appended in dump order within a key (the stable sort relies on it)
            assert seq > seqs_of_key.get(key, -1)
            seqs_of_key[key] = seq
    for seq, (table, key, number, values) in enumerate(copies):
        if (table, key, seq, number, *values) in staged:
            continue
        following = [later for later in range(seq + 1, len(copies)) if copies[later][:2] == (table, key)]
        assert following, f"copy {seq} was dropped with no later copy of its key"
        assert copies[following[0]] == copies[seq], f"copy {seq} was dropped before a different copy"
