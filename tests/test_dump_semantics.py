"""What an import means: the database after `import-dump` equals the truth
computed from the lines, one after another, by tests/dump_truth.py (plain
dictionaries, the rules as the README states them), and hand-checked values
read from the lines themselves.

Covers nested repeats (artists, labels, groups and recordings recurring
across lines), a poorer nested copy before and after a richer one in one
dump and across two imports, child sets named by several lines, a newer
dump of the same catalogue (new / updated / unchanged counts), and the
supplementary and raw-document tables."""

from __future__ import annotations

import copy
import json
from collections import Counter

import pytest
from click.testing import CliRunner

from benchmarks.release_dump import ReleaseDump
from harvester.cli import cli
from harvester.dumps import build_process
from harvester.normalize import TABLE_OF
from harvester.settings import DEFAULT_IMPORT_MEMORY_MB
from harvester.store import open_db
from tests.conftest import load_ws2
from tests.dump_truth import apply_dump, changes, copy_state, differences

T1, T2 = "2025-11-22T00:00:52Z", "2025-11-26T00:00:48Z"


@pytest.fixture(params=["one process", "staging processes", "second build process"])
def importer(request, tmp_path, monkeypatch):
    """import-dump of documents as a JSON Lines file, in-process, outside any config; staged by the
    importer itself, or by two staging processes in ranges of a few lines (column sets met in
    several ranges at once, ranges staged again), or with a second process building the tables
    that need no set lookups beside, however small the dump (build_process.py)."""
    import os
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(build_process, "SECOND_PROCESS_RECORDS", 0)
    for var in [v for v in os.environ if v.startswith("MBHARVEST_")]:
        monkeypatch.delenv(var)
    counter = iter(range(1000))

    def run(entity: str, docs: list[dict], timestamp: str, *options: str):
        path = tmp_path / f"lines{next(counter)}.jsonl"
        path.write_bytes(b"".join(json.dumps(d, ensure_ascii=False).encode() + b"\n" for d in docs))
        staging = {"staging processes": ["--processes", "2", "--batch-size", "3"],
                   "second build process": ["--processes", "2"]}.get(request.param, ["--processes", "1"])
        result = CliRunner().invoke(cli, ["import-dump", "--db", str(tmp_path / "mb.db"), "--entity", entity,
                                          "--timestamp", timestamp, str(path), *staging, *options])
        assert result.exit_code == 0, result.output
        return open_db(tmp_path / "mb.db")
    return run


def credit(artist: dict, name: str | None = None) -> list[dict]:
    return [{"name": name or artist["name"], "joinphrase": "", "artist": artist}]


def release(release_id: str, title: str, artist: dict, tracks: list[tuple[str, str, list[str]]]) -> dict:
    """A release line: its tracks (id, recording id, ISRCs), credited to `artist`."""
    return {"id": release_id, "title": title, "artist-credit": credit(artist), "media": [
        {"position": 1, "format": "CD", "track-count": len(tracks), "tracks": [
            {"id": track_id, "number": str(n), "position": n, "title": f"{title} {n}", "length": 1000 * n,
             "artist-credit": credit(artist),
             "recording": {"id": recording_id, "title": f"{title} {n}", "isrcs": isrcs,
                           "artist-credit": credit(artist)}}
            for n, (track_id, recording_id, isrcs) in enumerate(tracks, 1)]}]}


def mbid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


# -- a generated catalogue: nested repeats, compilations, editions --

def test_generated_release_dump_equals_the_truth_and_repeats_are_stored_once(importer):
    docs = list(ReleaseDump(400, seed=3).documents())
    credited = [c["artist"]["id"] for d in docs for m in d["media"] for t in m["tracks"]
                for c in t["artist-credit"] + t["recording"]["artist-credit"]]
    assert len(credited) > 3 * len(set(credited))  # artists recur across lines many times
    recordings = [t["recording"]["id"] for d in docs for m in d["media"] for t in m["tracks"]]
    assert len(recordings) > len(set(recordings))  # editions and compilations carry recordings again
    db = importer("release", docs, T1)
    truth = apply_dump({}, "release", docs, T1)
    assert differences(db, truth) == {}
    performers = {rel["artist"]["id"] for d in docs for m in d["media"] for t in m["tracks"]
                  for rel in t["recording"].get("relations") or () if rel.get("target-type") == "artist"}
    assert db.execute("SELECT count(*) FROM artist").fetchone()[0] == len(set(credited) | performers | {
        c["artist"]["id"] for d in docs for c in d["artist-credit"] + d["release-group"]["artist-credit"]})
    for table in ("recording", "release", "artist", "label", "release_group"):
        db.execute(f"INSERT INTO {table}_fts ({table}_fts) VALUES ('integrity-check')")


def test_a_newer_dump_into_the_populated_database_equals_the_truth_and_counts_its_changes(importer):
    first = list(ReleaseDump(300, seed=5, edition=1).documents())
    second = list(ReleaseDump(300, seed=5, edition=2).documents())
    gone = {d["id"] for d in first} - {d["id"] for d in second}
    added = {d["id"] for d in second} - {d["id"] for d in first}
    assert gone and added
    importer("release", first, T1)
    before = apply_dump({}, "release", first, T1)
    after = apply_dump(copy_state(before), "release", second, T2)
    db = importer("release", second, T2)
    assert differences(db, after) == {}
    counted = json.loads(db.execute("SELECT changes FROM dump_import WHERE dump_timestamp = ?", [T2]).fetchone()[0])
    expected = changes(before, after, f"dump:{T2}")
    assert counted == {table: expected[table] for table in counted}
    assert counted["release"]["new"] == len(added) and counted["release"]["updated"] > 0
    # releases the newer dump no longer carries are left as they were (no tombstones in dumps)
    assert {row[0] for row in db.execute("SELECT id FROM release WHERE source = ?", [f"dump:{T1}"])} == gone
    run = db.execute("SELECT new, updated, unchanged FROM harvest_run ORDER BY id DESC LIMIT 1").fetchone()
    entity_tables = tuple(TABLE_OF.values())  # every dump entity type's table (works and areas too)
    assert run == tuple(sum(expected[t][kind] for t in entity_tables if t in expected)
                        for kind in ("new", "updated", "unchanged"))


def test_supplementary_tables_and_documents_equal_the_truth(importer):
    docs = list(ReleaseDump(120, seed=9).documents())
    docs[0]["rating"] = {"value": 4.5, "votes-count": 2}
    db = importer("release", docs, T1, "--include-supplementary", "--keep-documents")
    truth = apply_dump({}, "release", docs, T1, supplementary=True, keep_documents=True)
    assert truth["tag"] and truth["document"] and truth["annotation"] and truth["rating"]
    assert differences(db, truth) == {}


# -- a poorer nested copy never blanks a richer one --

RICH = {"id": mbid(1), "name": "Rich Name", "sort-name": "Name, Rich", "type": "Person", "country": "GB",
        "gender": "Female", "disambiguation": "the rich one", "life-span": {"begin": "1970", "ended": False}}
POOR = {"id": mbid(1), "name": "Poor Name"}


def test_a_poorer_copy_before_and_after_a_richer_one_in_one_dump(importer):
    docs = [release(mbid(10), "First", POOR, [(mbid(100), mbid(200), [])]),
            release(mbid(11), "Second", RICH, [(mbid(101), mbid(201), [])]),
            release(mbid(12), "Third", dict(POOR, name="Last Name"), [(mbid(102), mbid(202), [])])]
    db = importer("release", docs, T1)
    row = db.execute("SELECT name, sort_name, type, country, gender, disambiguation, begin_date, ended "
                     "FROM artist WHERE id = ?", [mbid(1)]).fetchone()
    # each column: the last line that has it
    assert row == ("Last Name", "Name, Rich", "Person", "GB", "Female", "the rich one", "1970", 0)
    assert differences(db, apply_dump({}, "release", docs, T1)) == {}


@pytest.mark.parametrize("order", ["artist dump first", "release dump first"])
def test_a_poorer_copy_never_blanks_a_richer_one_across_two_imports(importer, order):
    artist = load_ws2("picard/artist.json")
    assert {"country", "life-span", "disambiguation", "gender"} <= set(artist)
    poor = {"id": artist["id"], "name": "Renamed In Credit", "sort-name": artist["sort-name"]}
    releases = [release(mbid(20), "Credited", poor, [(mbid(120), mbid(220), ["GBAAA0000001"])])]
    steps = [("artist", [artist], T1), ("release", releases, T2)]
    if order == "release dump first":
        steps.reverse()
    truth: dict = {}
    for entity, docs, stamp in steps:
        db = importer(entity, docs, stamp)
        truth = apply_dump(truth, entity, docs, stamp)
    assert differences(db, truth) == {}
    country, disambiguation, name = db.execute(
        "SELECT country, disambiguation, name FROM artist WHERE id = ?", [artist["id"]]).fetchone()
    assert (country, disambiguation) == (artist["country"], artist["disambiguation"])
    assert name == (poor["name"] if order == "artist dump first" else artist["name"])


# -- child sets --

def test_a_child_set_named_by_two_lines_takes_the_last_and_a_newer_dump_replaces_it(importer):
    artist = {"id": mbid(2), "name": "A"}
    other = {"id": mbid(3), "name": "B"}
    recording = mbid(300)
    docs = [
        release(mbid(30), "One", artist, [(mbid(130), recording, ["GBAAA0000001", "GBAAA0000002"])]),
        # the same recording on another release: its ISRCs and credit named again, differently
        release(mbid(31), "Two", other, [(mbid(131), recording, ["GBAAA0000003"])]),
    ]
    db = importer("release", docs, T1)
    assert db.execute("SELECT isrc FROM recording_isrc WHERE recording_id = ?", [recording]).fetchall() == [
        ("GBAAA0000003",)]
    assert db.execute("SELECT artist_id FROM artist_credit_name WHERE entity_id = ?", [recording]).fetchall() == [
        (other["id"],)]
    truth = apply_dump({}, "release", docs, T1)
    assert differences(db, truth) == {}
    # the newer dump: release One now has two tracks, release Two is gone, the recording keeps one ISRC
    newer = [release(mbid(30), "One", artist, [(mbid(130), recording, ["GBAAA0000001"]),
                                               (mbid(132), mbid(301), [])])]
    db = importer("release", newer, T2)
    truth = apply_dump(truth, "release", newer, T2)
    assert differences(db, truth) == {}
    assert db.execute("SELECT isrc, source FROM recording_isrc WHERE recording_id = ?", [recording]).fetchall() == [
        ("GBAAA0000001", f"dump:{T2}")]
    counted = json.loads(db.execute("SELECT changes FROM dump_import WHERE dump_timestamp = ?", [T2]).fetchone()[0])
    assert counted["recording_isrc"] == {"new": 1, "updated": 0, "unchanged": 0, "deleted": 1}
    assert counted["track"] == {"new": 1, "updated": 0, "unchanged": 1, "deleted": 0}


@pytest.mark.parametrize("others", [0, 8], ids=["merged in place", "built beside"])
def test_a_newer_dump_stamps_every_entity_it_carries_and_only_the_child_rows_it_changes(importer, tmp_path, others):
    """sync-dumps reads an entity row's source as "carried by that dump";
    a child row keeps its stamps unless the newer dump changes it (so the
    pages of a child table it hardly changes are not rewritten). With 8
    other new releases the track and ISRC tables are small next to what the
    dump brings, so they are rebuilt beside rather than merged in place."""
    artist = {"id": mbid(5), "name": "D"}
    kept = (mbid(150), mbid(500), ["GBAAA0000005"])
    importer("release", [release(mbid(50), "Same", artist, [kept, (mbid(151), mbid(501), [])])], T1)
    more = [release(mbid(60 + n), f"Other {n}", artist, [(mbid(160 + 2 * n + i), mbid(600 + 2 * n + i),
                                                           [f"GBBBB00000{2 * n + i:02d}"]) for i in range(2)])
            for n in range(others)]
    log = tmp_path / "merge.log"
    db = importer("release", [release(mbid(50), "Same", artist, [kept, (mbid(151), mbid(501), ["GBAAA0000006"])]),
                              *more], T2, "--log-file", str(log))
    path = "built beside" if others else "merged in place"
    assert f"track {path}" in log.read_text() and f"recording_isrc {path}" in log.read_text()
    old, new = f"dump:{T1}", f"dump:{T2}"
    for table in ("release", "recording", "artist"):  # entities carried, changed or not
        assert {source for (source,) in db.execute(f"SELECT source FROM [{table}]")} == {new}, table
    assert db.execute("SELECT source, fetched_at FROM track WHERE id IN (?, ?)", [mbid(150), mbid(151)]).fetchall() \
        == [(old, T1)] * 2  # as they were
    assert dict(db.execute("SELECT isrc, source FROM recording_isrc WHERE recording_id IN (?, ?)",
                           [mbid(500), mbid(501)])) == {"GBAAA0000005": old, "GBAAA0000006": new}
    assert {source for (source,) in db.execute("SELECT source FROM artist_credit_name WHERE entity_id = ?",
                                               [mbid(50)])} == {old}
    assert db.execute("SELECT count(*) FROM track WHERE source = ?", [new]).fetchone()[0] == 2 * others
    counted = json.loads(db.execute("SELECT changes FROM dump_import WHERE dump_timestamp = ?", [T2]).fetchone()[0])
    assert counted["track"] == {"new": 2 * others, "updated": 0, "unchanged": 2, "deleted": 0}
    assert counted["release"] == {"new": others, "updated": 0, "unchanged": 1, "deleted": 0}


def test_the_same_set_twice_in_one_line_is_one_set(importer):
    artist = {"id": mbid(4), "name": "C"}
    docs = [release(mbid(40), "Twice", artist, [(mbid(140), mbid(400), ["GBAAA0000004"]),
                                                 (mbid(141), mbid(400), ["GBAAA0000004"])])]
    db = importer("release", docs, T1)
    assert db.execute("SELECT count(*) FROM recording_isrc").fetchone()[0] == 1
    assert db.execute("SELECT count(*) FROM track").fetchone()[0] == 2
    assert differences(db, apply_dump({}, "release", docs, T1)) == {}


# -- the set lookups: in memory, from the file --

@pytest.mark.parametrize("lookups", ["in memory", "hashes colliding", "from the file", "beyond the share"])
def test_the_set_lookups_answer_alike_from_memory_and_from_the_file(importer, monkeypatch, lookups):
    """Recordings recur across lines, so their relationships by target (a
    performer's) are looked up for every staged copy: from memory
    (LastLines); from the file when two recordings' sets are given one hash
    and one check (the kind is refused whole), when the memory share holds
    none, or fewer sets than the dump names."""
    from harvester.dumps import importer as dump_importer
    from harvester.dumps import lookups as set_lookups
    first = list(ReleaseDump(300, seed=7, edition=1).documents())
    second = list(ReleaseDump(300, seed=7, edition=2).documents())
    carried = Counter(t["recording"]["id"] for d in first for m in d["media"] for t in m["tracks"]
                      if any(r.get("target-type") == "artist" for r in t["recording"].get("relations") or ()))
    twins = {(recording, "recording") for recording, lines in carried.most_common(2)}
    assert len(twins) == 2 and carried.most_common(2)[1][1] > 1
    for recording_id, _ in twins:  # the first line carrying it credits one more engineer, the later ones do not
        track = next(t for d in first for m in d["media"] for t in m["tracks"] if t["recording"]["id"] == recording_id)
        track["recording"] = copy.deepcopy(track["recording"])
        extra = copy.deepcopy(next(r for r in track["recording"]["relations"] if r.get("target-type") == "artist"))
        extra["artist"] = {"id": mbid(900 + len(track["recording"]["relations"])), "name": "Dropped"}
        track["recording"]["relations"].append(extra)
    if lookups == "from the file":
        monkeypatch.setitem(dump_importer.MEMORY_SHARES, "lookups", 0)
    elif lookups == "beyond the share":  # room for 20 sets of the default budget: given up after them
        monkeypatch.setitem(dump_importer.MEMORY_SHARES, "lookups",
                            20 * set_lookups.ENTRY_BYTES / (DEFAULT_IMPORT_MEMORY_MB << 20))
    elif lookups == "hashes colliding":
        real_hash, real_check = set_lookups.set_hash, set_lookups.set_check
        monkeypatch.setattr(set_lookups, "set_hash", lambda key: 99 if key in twins else real_hash(key))
        monkeypatch.setattr(set_lookups, "set_check", lambda key: 0 if key in twins else real_check(key))
    answers, added = [], []
    real_get, real_add = set_lookups.LastLines.get, set_lookups.LastLines.add
    monkeypatch.setattr(set_lookups.LastLines, "get", lambda self, key: answers.append((key, real_get(self, key)))
                        or answers[-1][1])
    monkeypatch.setattr(set_lookups.LastLines, "add", lambda self, *a: added.append(a[0]) or real_add(self, *a))
    truth = apply_dump({}, "release", first, T1)
    assert differences(importer("release", first, T1), truth) == {}
    assert differences(importer("release", second, T2), apply_dump(truth, "release", second, T2)) == {}
    if lookups == "in memory":
        assert twins <= {key for key, _ in answers}
        assert any(answer is None for _, answer in answers) and any(answer for _, answer in answers)
    else:
        assert answers == []
        assert {"from the file": not added, "beyond the share": len(added) >= 20,
                "hashes colliding": twins <= set(added)}[lookups]


def test_a_newer_dump_naming_a_recordings_relationships_twice_drops_the_stored_one_it_no_longer_carries(importer):
    """The stored rows' sets by target are looked up too (in memory when named by several lines)."""
    artist = {"id": mbid(7), "name": "G"}
    performer = {"type": "performer", "target-type": "artist", "direction": "backward",
                 "artist": {"id": mbid(8), "name": "P"}}
    engineer = {"type": "engineer", "target-type": "artist", "direction": "backward",
                "artist": {"id": mbid(9), "name": "E"}}

    def dump(relations: list[dict]) -> list[dict]:
        docs = [release(mbid(70 + n), f"Carrier {n}", artist, [(mbid(170 + n), mbid(700), [])]) for n in range(2)]
        for doc in docs:
            doc["media"][0]["tracks"][0]["recording"]["relations"] = copy.deepcopy(relations)
        return docs
    first, second = dump([performer, engineer]), dump([performer])
    truth = apply_dump({}, "release", first, T1)
    assert differences(importer("release", first, T1), truth) == {}
    db = importer("release", second, T2)
    assert differences(db, apply_dump(truth, "release", second, T2)) == {}
    assert db.execute("SELECT entity_id, type FROM relationship WHERE target_id = ?", [mbid(700)]).fetchall() == [
        (mbid(8), "performer")]
