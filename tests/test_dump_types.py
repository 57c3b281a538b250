"""`mbharvest import-dump` on one archive of each of the eleven JSON dump types,
its lines shaped as the notes (docs: "What each line includes") describe.

Every line is a real WS/2 lookup body (CC0, tests/fixtures/ws2 and ws2-other)
turned into a dump line only by what a dump line differs in: the lists a
lookup gets from browse includes (`releases`, `release-groups`, `works`,
`recordings`) and per-user or per-search fields are left out, and the keys
every dump line carries (`aliases`, `annotation`, `tags`, `genres`,
`relations`, `rating` for the rated types, `isrcs` and `artist-credit` for
recordings, ...) are added empty where the lookup lacked them (the notes:
"Empty values appear as null, \"\" or []"). A type with fewer than three real
bodies gets copies of one with only its MBID replaced. The archive's members
are those of a published one, in their order; the lines are compact, not in
MBID order, with no newline after the last.

Expected rows are read from the lines' JSON (the walks of tests/test_open_data),
never from what the importer wrote."""

from __future__ import annotations

import io
import json
import tarfile
import uuid
from pathlib import Path

import pytest

from harvester.dumpsync import IMPORT_ORDER
from harvester.normalize import DUMP_ENTITY_TYPES, TABLE_OF
from tests.conftest import load_ws2
from tests.test_dumps import SOURCE, TIMESTAMP, db_of, ids, run  # noqa: F401  (run is a fixture)
from tests.test_open_data import entities_in, expected_relationships, load_other, stored_relationships

FETCHED_AT = "2025-11-22T00:00:52Z"

# type -> the real lookup bodies its lines are made of (distinct MBIDs)
BODIES = {
    "area": [(load_other, "musicbrainzws2/lookup/MbAreaResult.json"),
             (load_other, "hqub-musicbrainz/area-get.json")],
    "artist": [(load_ws2, "hqub-musicbrainz/artist-get.json"), (load_ws2, "musicbrainz-android/artist_lookup.json"),
               (load_ws2, "picard/artist_arabic.json"), (load_ws2, "picard/artist_ended.json")],
    "event": [(load_other, "musicbrainzws2/lookup/MbEventResult.json")],
    "instrument": [(load_other, "musicbrainzws2/lookup/MbInstrumentResult.json")],
    "label": [(load_ws2, "hqub-musicbrainz/label-get.json"), (load_ws2, "musicbrainz-android/label_lookup.json"),
              (load_ws2, "musicbrainzws2/lookup/MbLabelResult.json")],
    "place": [(load_other, "musicbrainzws2/lookup/MbPlaceResult.json")],
    "recording": [(load_ws2, "picard/recording.json"), (load_ws2, "picard/recording_multiple_works.json"),
                  (load_ws2, "sortipy/recordings-line1-ab80a174-1b7d-41c8-bddb-5edfd849d512.json"),
                  (load_ws2, "picard/recording_video.json")],
    "release": [(load_ws2, "picard/release.json"),
                (load_ws2, "sortipy/releases-line1-58558cec-d9f1-40e4-a857-f7af88883c12.json"),
                (load_ws2, "wrtag/release/be3a32ec-8d3d-41de-b102-12bcaaa33e78.json"),
                (load_ws2, "musicbrainz-android/release_lookup.json")],
    "release-group": [(load_ws2, "hqub-musicbrainz/releasegroup-get.json"),
                      (load_ws2, "musicbrainz-android/release-group_lookup.json"),
                      (load_ws2, "picard/release_group.json")],
    "series": [(load_other, "musicbrainzws2/lookup/MbSeriesResult.json")],
    "work": [(load_other, "hqub-musicbrainz/work-get.json"), (load_other, "musicbrainzws2/lookup/MbWorkResult.json")],
}
MIN_LINES = 3
# what a lookup may carry that no dump line does: browse-include lists, per-user and per-search fields
NOT_IN_DUMPS = ("releases", "release-groups", "works", "recordings", "collections", "user-tags", "user-genres",
                "user-rating", "count", "score")
RATED = {"artist", "event", "label", "work", "recording", "release-group"}
EXTRA_KEYS = {"recording": ("isrcs", "artist-credit"), "release-group": ("artist-credit",),
              "release": ("artist-credit", "label-info", "media")}


def dump_line(entity: str, body: dict) -> dict:
    line = {key: value for key, value in body.items() if key not in NOT_IN_DUMPS}
    for key in ("aliases", "tags", "genres", "relations", *EXTRA_KEYS.get(entity, ())):
        line.setdefault(key, [])
    line.setdefault("annotation", None)
    if entity in RATED:
        line.setdefault("rating", {"value": None, "votes-count": 0})
    return dict(reversed(list(line.items())))  # keys in no fixed order


def lines_of(entity: str) -> list[dict]:
    """The type's dump lines, not in MBID order."""
    docs = [dump_line(entity, load(path)) for load, path in BODIES[entity]]
    assert len({d["id"] for d in docs}) == len(docs)
    original = docs[0]
    for n in range(MIN_LINES - len(docs)):
        docs.append(dict(original, id=str(uuid.uuid5(uuid.NAMESPACE_URL, f"mbharvest-test/{entity}/{n}"))))
    docs.sort(key=lambda d: d["id"], reverse=True)
    return docs


def write_published_archive(path: Path, entity: str, docs: list[dict]) -> Path:
    """<entity>.tar.xz with the members of a published one, in their order."""
    data = b"\n".join(json.dumps(d, ensure_ascii=False, separators=(",", ":")).encode() for d in docs)
    members = [("TIMESTAMP", TIMESTAMP.encode() + b"\n"), ("COPYING", b"CC0 1.0 Universal\n"),
               ("README", b"MusicBrainz JSON dump\n"), ("REPLICATION_SEQUENCE", b"171234\n"),
               ("SCHEMA_SEQUENCE", b"30\n"), (f"mbdump/{entity}", data), ("JSON_DUMPS_SCHEMA_NUMBER", b"1\n")]
    with tarfile.open(path, "w:xz") as tar:
        for name, content in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(content), 1_763_769_652
            tar.addfile(info, io.BytesIO(content))
    return path


# -- what a line says its own row holds --

def span(key):
    return lambda d: (d.get("life-span") or {}).get(key)


def nested_id(*keys):
    return lambda d: next(((d.get(k) or {}).get("id") for k in keys if d.get(k)), None)


def codes(key):
    return lambda d: " ".join(d.get(key) or ()) or None


def field(key):
    return lambda d: d.get(key)


LIFE = {"begin_date": span("begin"), "end_date": span("end"), "ended": span("ended")}
COLUMNS = {
    "area": {"name": field("name"), "sort_name": field("sort-name"), "iso_3166_1": codes("iso-3166-1-codes"),
             "iso_3166_2": codes("iso-3166-2-codes"), "iso_3166_3": codes("iso-3166-3-codes"), **LIFE},
    "artist": {"name": field("name"), "sort_name": field("sort-name"), "country": field("country"),
               "gender": field("gender"), "area_id": nested_id("area"),
               "begin_area_id": nested_id("begin-area", "begin_area"),
               "end_area_id": nested_id("end-area", "end_area"), **LIFE},
    "event": {"name": field("name"), "time": field("time"), "cancelled": field("cancelled"),
              "setlist": field("setlist"), **LIFE},
    "instrument": {"name": field("name"), "description": field("description")},
    "label": {"name": field("name"), "sort_name": field("sort-name"), "country": field("country"),
              "label_code": lambda d: None if d.get("label-code") is None else str(d["label-code"]),
              "area_id": nested_id("area"), **LIFE},
    "place": {"name": field("name"), "address": field("address"), "area_id": nested_id("area"),
              "latitude": lambda d: (d.get("coordinates") or {}).get("latitude"),
              "longitude": lambda d: (d.get("coordinates") or {}).get("longitude"), **LIFE},
    "recording": {"title": field("title"), "length_ms": field("length"),
                  "first_release_date": field("first-release-date"), "video": field("video")},
    "release": {"title": field("title"), "status": field("status"), "date": field("date"),
                "country": field("country"), "barcode": field("barcode"), "packaging": field("packaging"),
                "release_group_id": nested_id("release-group"),
                "language": lambda d: (d.get("text-representation") or {}).get("language"),
                "script": lambda d: (d.get("text-representation") or {}).get("script")},
    "release-group": {"title": field("title"), "primary_type": field("primary-type"),
                      "first_release_date": field("first-release-date"),
                      "secondary_types": lambda d: None if d.get("secondary-types") is None else json.dumps(
                          d["secondary-types"], ensure_ascii=False, separators=(",", ":"))},
    "series": {"name": field("name")},
    "work": {"title": field("title"), "language": field("language")},
}
# columns where MusicBrainz's "" and null both mean "none" (dates, codes, free text a lookup leaves empty)
BLANK_IS_NULL = {"begin_date", "end_date", "date", "first_release_date", "barcode", "country", "time", "setlist",
                 "description", "address", "status", "packaging", "language", "script", "gender", "sort_name"}


def expected_row(entity: str, doc: dict) -> dict:
    row = {"type": doc.get("type"), "disambiguation": doc.get("disambiguation")}
    for column, read in COLUMNS[entity].items():
        value = read(doc)
        if isinstance(value, bool):
            value = int(value)
        if column in BLANK_IS_NULL and value == "":
            value = None
        row[column] = value
    if entity in ("recording", "release", "release-group"):
        del row["type"]  # none of these has a type of its own (a release group's is primary_type)
    row["source"], row["fetched_at"] = SOURCE, FETCHED_AT
    return row


def stored_row(db, table: str, entity_id: str, columns) -> dict:
    found = db.execute(f"SELECT {', '.join(f'[{c}]' for c in columns)} FROM [{table}] WHERE id = ?",
                       [entity_id]).fetchone()
    assert found is not None, (table, entity_id)
    return {column: (None if column in BLANK_IS_NULL and value == "" else value)
            for column, value in zip(columns, found)}


def same_type_ids(entity: str, docs: list[dict]) -> set[str]:
    """The line ids and every copy of the same type nested in the lines."""
    table = TABLE_OF[entity]
    return {obj["id"] for d in docs for kind, obj in entities_in(d, table) if kind == table}


def foreign_key_problems(db) -> list:
    db.execute("PRAGMA foreign_keys = ON")
    return db.execute("PRAGMA foreign_key_check").fetchall()


# -- the tests --

def test_the_lines_are_shaped_as_the_notes_describe():
    """The lines themselves: every type, at least three lines each with the keys every dump line carries, not in
    MBID order; the published member order and no newline after the last line."""
    assert set(BODIES) == set(DUMP_ENTITY_TYPES) == set(IMPORT_ORDER) and len(BODIES) == 11
    for entity in DUMP_ENTITY_TYPES:
        docs = lines_of(entity)
        assert len(docs) >= MIN_LINES and len({d["id"] for d in docs}) == len(docs)
        assert [d["id"] for d in docs] != sorted(d["id"] for d in docs)
        for doc in docs:
            assert {"id", "aliases", "annotation", "tags", "genres", "relations"} <= set(doc), entity
            assert not set(NOT_IN_DUMPS) & set(doc)
            assert ("rating" in doc) == (entity in RATED)


def test_the_archive_has_the_published_members_in_order(tmp_path):
    docs = lines_of("series")
    path = write_published_archive(tmp_path / "series.tar.xz", "series", docs)
    with tarfile.open(path) as tar:
        assert tar.getnames() == ["TIMESTAMP", "COPYING", "README", "REPLICATION_SEQUENCE", "SCHEMA_SEQUENCE",
                                  "mbdump/series", "JSON_DUMPS_SCHEMA_NUMBER"]
        data = tar.extractfile("mbdump/series").read()
    assert not data.endswith(b"\n") and [json.loads(line)["id"] for line in data.split(b"\n")] == [
        d["id"] for d in docs]
    assert data.split(b"\n")[0] == json.dumps(docs[0], ensure_ascii=False, separators=(",", ":")).encode()


@pytest.mark.parametrize("entity", DUMP_ENTITY_TYPES)
def test_each_type_s_archive_lands_in_its_table(tmp_path, run, entity):
    docs = lines_of(entity)
    table = TABLE_OF[entity]
    archive = write_published_archive(tmp_path / f"{entity}.tar.xz", entity, docs)
    result = run(archive)
    assert result.exit_code == 0, result.output
    db = db_of(tmp_path)

    # the table: the lines' ids and the copies of the same type the lines nest, nothing else
    line_ids = {d["id"] for d in docs}
    assert line_ids <= ids(db, table)
    assert ids(db, table) == same_type_ids(entity, docs)

    # each line's own row: its core columns as the JSON has them, stamped with the dump
    for doc in docs:
        expected = expected_row(entity, doc)
        assert stored_row(db, table, doc["id"], list(expected)) == expected, doc["id"]

    # relationships: every one the lines carry, once, from MusicBrainz's source end; none else
    stored = stored_relationships(db)
    expected_rels = set().union(*(expected_relationships(d, table) for d in docs))
    assert len(stored) == len(set(stored))
    assert set(stored) == expected_rels
    for doc in docs:
        end = (table, doc["id"])
        touching = {r for r in stored if end in ((r[0], r[1]), (r[2], r[3]))}
        carried = {r for r in expected_rels if end in ((r[0], r[1]), (r[2], r[3]))}
        assert {r[:5] for r in touching} == {r[:5] for r in carried}, doc["id"]
        assert bool(carried) == bool(doc["relations"]), doc["id"]

    # aliases: each line's, in the line's order
    for doc in docs:
        names = [name for name, in db.execute("SELECT name FROM alias WHERE entity_type = ? AND entity_id = ? "
                                              "ORDER BY position", [table, doc["id"]])]
        assert names == [alias["name"] for alias in doc["aliases"]], doc["id"]

    assert foreign_key_problems(db) == []
    db.conn.close()


def test_all_eleven_archives_into_one_database_in_import_order(tmp_path, run):
    archives, lines = [], {}
    for entity in IMPORT_ORDER:
        lines[entity] = lines_of(entity)
        archives.append(write_published_archive(tmp_path / f"{entity}.tar.xz", entity, lines[entity]))
    result = run(*archives)
    assert result.exit_code == 0, result.output
    db = db_of(tmp_path)
    for entity in IMPORT_ORDER:
        assert {d["id"] for d in lines[entity]} <= ids(db, TABLE_OF[entity]), entity
    assert db.execute("SELECT entity_type, status FROM dump_import ORDER BY entity_type").fetchall() == sorted(
        (entity, "complete") for entity in IMPORT_ORDER)
    assert foreign_key_problems(db) == []
    db.conn.close()
