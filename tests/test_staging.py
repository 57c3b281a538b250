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


def test_a_set_named_again_in_a_chunk_keeps_only_its_last_naming_and_sets_keyed_otherwise_keep_every_one():
    from harvester.dumps.manifest import table_keys
    from harvester.dumps.staging import ColumnSets, Stager, StageCounts, sets_stream
    from harvester.normalize import Normalized

    keys = table_keys()
    counts = StageCounts()
    stager = Stager(keys, ColumnSets(keys), 100, counts)
    names = {1: ["A", "B"], 2: ["C"], 3: ["D", "E", "F"]}
    for line, aliases in names.items():
        normalized = Normalized()
        normalized.clear_children("alias", entity_type="artist", entity_id="x")
        normalized.clear_children("alias", entity_type="artist", entity_id=f"only-{line}")
        normalized.clear_children("relationship", target_id="x", target_type="artist")
        for position, name in enumerate(aliases):
            normalized.add("alias", {"entity_type": "artist", "entity_id": "x", "position": position, "name": name})
        stager.add(line, normalized, 100)
    assert counts.sets == 9  # every naming seen
    taken = stager.take()
    aliases = sorted(taken[sets_stream("alias", ("entity_type", "entity_id"))], key=lambda record: record[0])
    assert [(record[0], record[1]) for record in aliases] == [
        (("artist", "only-1"), 1), (("artist", "only-2"), 2), (("artist", "only-3"), 3), (("artist", "x"), 3)]
    assert [member[-1] for member in aliases[-1][2]] == names[3]  # the last naming's rows, not the earlier ones
    # a set keyed outside its table's key is looked up by its namings: each one stays
    assert [record[1] for record in taken[sets_stream("relationship", ("target_id", "target_type"))]] == [1, 2, 3]
    # the chunk's namings start afresh
    normalized = Normalized()
    normalized.clear_children("alias", entity_type="artist", entity_id="x")
    stager.add(4, normalized, 100)
    assert [(record[0], record[1]) for record in stager.take()[sets_stream("alias", ("entity_type", "entity_id"))]] == [
        (("artist", "x"), 4)]
