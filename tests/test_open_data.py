"""Issue 18: works and ISWCs, relationships and URLs, aliases, areas, release
events, language and script, events, instruments, places and series, from
real MusicBrainz bodies. Every expected row is read from the bodies' JSON by
the plain walks below (not through the normalizer)."""

from __future__ import annotations

import copy
import csv
import json
import sqlite3
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from harvester.normalize import (
    normalize_entity, normalize_iswc, normalize_page, relation_types_of, url_host,
)
from harvester.store import open_db, save
from tests.conftest import FIXTURES, load_ws2

OTHER = FIXTURES / "ws2-other"
T0 = "2026-01-01T00:00:00Z"

# the key a nested object sits under -> its entity type (as stored)
TYPE_OF_KEY = {"recording": "recording", "release": "release", "release-group": "release_group",
               "release_group": "release_group", "artist": "artist", "label": "label", "work": "work",
               "area": "area", "url": "url", "series": "series", "place": "place", "event": "event",
               "instrument": "instrument", "begin-area": "area", "end-area": "area", "begin_area": "area",
               "end_area": "area"}
PLURAL = {"recordings": "recording", "releases": "release", "release-groups": "release_group", "works": "work"}


def load_other(path: str):
    return json.loads((OTHER / path).read_text(encoding="utf-8"))


def other_index() -> list[dict]:
    with open(OTHER / "INDEX.tsv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def entities_in(doc, entity_type: str):
    """(type, object) of every entity in a body, the body's own first: each
    object with an id, typed by the key it sits under."""
    found = []

    def walk(value, kind):
        if isinstance(value, dict):
            if kind and isinstance(value.get("id"), str):
                found.append((kind, value))
            for key, inner in value.items():
                if key == "relations":
                    for relation in inner or []:
                        walk(relation, None)
                elif key in ("tracks", "media", "artist-credit", "label-info", "release-events"):
                    walk(inner, None)
                elif key in PLURAL and isinstance(inner, list):
                    for item in inner:
                        walk(item, PLURAL[key])
                elif key in TYPE_OF_KEY and isinstance(inner, dict):
                    walk(inner, TYPE_OF_KEY[key])
        elif isinstance(value, list):
            for item in value:
                walk(item, kind)

    walk(doc, entity_type)
    return found


def relation_target(relation: dict):
    for key, kind in TYPE_OF_KEY.items():
        if key in ("begin-area", "end-area", "begin_area", "end_area"):
            continue
        target = relation.get(key)
        if isinstance(target, dict) and isinstance(target.get("id"), str):
            return kind, target
    return None


def expected_relationships(doc, entity_type: str) -> set[tuple]:
    """Every relationship in a body, from MusicBrainz's source to its target:
    between two types the alphabetically first, between one type by `direction`."""
    found = set()
    for kind, entity in entities_in(doc, entity_type):
        for relation in entity.get("relations") or []:
            target = relation_target(relation)
            if target is None:
                continue
            ends = [(kind, entity["id"]), (target[0], target[1]["id"])]
            if kind != target[0]:
                ends.sort()
            elif relation.get("direction") == "backward":
                ends.reverse()
            found.add((*ends[0], *ends[1], relation.get("type"), relation.get("begin") or None,
                       relation.get("end") or None, tuple(relation.get("attributes") or ())))
    return found


def stored_relationships(db) -> list[tuple]:
    return [(a, b, c, d, t, begin, end, tuple(json.loads(attrs or "[]"))) for a, b, c, d, t, begin, end, attrs in
            db.execute("SELECT entity_type, entity_id, target_type, target_id, type, begin_date, end_date, "
                       "attributes FROM relationship")]


def save_all(db, normalized) -> None:
    with db.atomic():
        save(db, normalized, source="test", fetched_at=T0)


@pytest.fixture
def db(tmp_path):
    database = open_db(tmp_path / "open.db")
    yield database
    database.close()


RELATION_BODIES = [
    ("recording", load_ws2, "picard/recording_multiple_works.json"),
    ("recording", load_ws2, "picard/recording.json"),
    ("artist", load_ws2, "hqub-musicbrainz/artist-get.json"),
    ("artist", load_ws2, "inkstak-musicbrainz/artist-03-lookup-200.json"),  # 2014: no target-type
    ("artist", load_ws2, "musicbrainz-android/artist_lookup.json"),
    ("release", load_ws2, "wrtag/release/be3a32ec-8d3d-41de-b102-12bcaaa33e78.json"),  # recording-level rels
    ("release", load_ws2, "picard/release.json"),
    ("work", load_other, "hqub-musicbrainz/work-get.json"),
    ("area", load_other, "hqub-musicbrainz/area-get.json"),  # area -> area, both directions
]


def test_every_relationship_of_real_bodies_is_stored_once_from_its_source(db):
    """Saved as a search's items are (relation_types=frozenset(): nothing replaced), so the stored set is the
    union of the bodies' (the Ed Sheeran lookup, fetched with url-rels, would otherwise replace the performer
    relationships the Picard recording carries: see test_replacing_relationships_only_of_the_types_asked_for)."""
    expected = set()
    for entity, load, path in RELATION_BODIES:
        body = load(path)
        expected |= expected_relationships(body, entity.replace("-", "_"))
        save_all(db, normalize_entity(entity, body, relation_types=frozenset()))
    stored = stored_relationships(db)
    assert len(stored) == len(set(stored))  # no relationship twice
    assert set(stored) == expected
    assert len(expected) > 200
    assert {row[2] for row in expected} >= {"url", "work", "artist", "area", "recording", "series"}


def test_a_relationship_seen_from_both_ends_is_one_row(db):
    """A performer of a recording, read from the recording (backward) and from the artist (forward)."""
    body = load_ws2("picard/recording.json")
    relation = next(r for r in body["relations"] if r.get("target-type") == "artist")
    artist = relation["artist"]
    mirrored = {**{k: v for k, v in relation.items() if k != "artist"}, "direction": "forward",
                "target-type": "recording", "recording": {"id": body["id"], "title": body["title"]}}
    save_all(db, normalize_entity("recording", body))
    save_all(db, normalize_entity("artist", {**artist, "relations": [mirrored]}))
    rows = db.execute("SELECT entity_type, entity_id, target_type, target_id, type, direction FROM relationship "
                      "WHERE entity_id = ? AND target_id = ? AND type = ?",
                      [artist["id"], body["id"], relation["type"]]).fetchall()
    assert rows == [("artist", artist["id"], "recording", body["id"], relation["type"], "forward")]


def test_urls_and_their_hosts(db):
    expected = {}
    for entity, load, path in RELATION_BODIES:
        body = load(path)
        for _, url in (e for e in entities_in(body, entity) if e[0] == "url"):
            expected[url["id"]] = url["resource"]
        save_all(db, normalize_entity(entity, body))
    stored = {row[0]: row[1:] for row in db.execute("SELECT id, resource, host FROM url")}
    assert {key: resource for key, (resource, _) in stored.items()} == expected
    assert all(host == urlsplit(expected[key]).hostname.lower() for key, (_, host) in stored.items())
    assert "open.spotify.com" in {host for _, host in stored.values()}


def test_works_their_iswcs_and_the_recordings_performing_them(db):
    bodies = [("recording", load_ws2("picard/recording_multiple_works.json")),
              ("release", load_ws2("wrtag/release/be3a32ec-8d3d-41de-b102-12bcaaa33e78.json")),
              ("work", load_other("hqub-musicbrainz/work-get.json"))]
    works, iswcs, performed = {}, set(), set()
    for entity, body in bodies:
        for kind, work in entities_in(body, entity):
            if kind == "work":
                works[work["id"]] = (work.get("title"), work.get("type"), work.get("language"))
                iswcs |= {(work["id"], code.replace("-", "").replace(".", "")) for code in work.get("iswcs") or ()}
        performed |= {(src_id, tgt_id, kind) for src, src_id, tgt, tgt_id, kind, *_ in
                      expected_relationships(body, entity) if (src, tgt) == ("recording", "work")}
        save_all(db, normalize_entity(entity, body))
    assert {row[0]: row[1:] for row in db.execute("SELECT id, title, type, language FROM work")} == works
    assert set(db.execute("SELECT work_id, iswc FROM work_iswc").fetchall()) == iswcs
    assert ("0e23ed77-ad7e-34e7-b57c-c3407b2ae5df", "T0100898063") in iswcs  # T-010.089.806-3
    assert set(db.execute("SELECT recording_id, work_id, type FROM recording_work").fetchall()) == performed
    assert len(performed) > 30


def test_iswcs_are_normalized_and_invalid_ones_counted_and_kept_out():
    assert normalize_iswc("T-010.089.806-3") == "T0100898063"
    assert normalize_iswc(" t 123 456 789 0 ") == "T1234567890"
    assert normalize_iswc("T-12.345") is None and normalize_iswc(None) is None
    body = load_other("hqub-musicbrainz/work-get.json")
    body["iswcs"] = body["iswcs"] + ["T-010.089.806-3", "not an iswc"]
    out = normalize_entity("work", body)
    assert out.rows["work_iswc"] == [{"work_id": body["id"], "iswc": "T0100898063"}]
    assert out.invalid_iswcs == [(body["id"], "not an iswc")]


def test_aliases_as_the_bodies_list_them_and_found_by_full_text(db):
    bodies = [("artist", "picard/artist.json"), ("artist", "picard/artist_arabic.json"),
              ("artist", "hqub-musicbrainz/artist-get.json"), ("artist", "musicbrainzws2/search/MbArtistResult.json")]
    expected = set()
    for entity, path in bodies:
        body = load_ws2(path)
        items = body["artists"] if "artists" in body else [body]
        for item in items:
            for alias in item.get("aliases") or []:
                expected.add((item["id"], alias["name"], alias.get("sort-name"), alias.get("locale"), alias.get("type"),
                              alias.get("primary"), alias.get("begin", alias.get("begin-date")) or None))
        save_all(db, normalize_page(entity, body).normalized if "artists" in body else normalize_entity(entity, body))
    stored = {(a, n, s, loc, t, None if p is None else bool(p), b) for a, n, s, loc, t, p, b in db.execute(
        'SELECT entity_id, name, sort_name, locale, type, "primary", begin_date FROM alias WHERE entity_type = ?',
        ["artist"])}
    assert stored == expected and len(expected) > 20
    # محمد منير is found by the Latin spelling of his aliases
    arabic = load_ws2("picard/artist_arabic.json")
    assert not arabic["name"].isascii() and "Mohamed Mounir" in {a["name"] for a in arabic["aliases"]}
    hits = db.execute("SELECT DISTINCT entity_id FROM alias WHERE rowid IN (SELECT rowid FROM alias_fts "
                      "WHERE alias_fts MATCH 'mounir')").fetchall()
    assert hits == [(arabic["id"],)]


def test_areas_of_artists_labels_and_release_events(db):
    artist = load_ws2("musicbrainz-android/artist_lookup.json")
    place = load_other("musicbrainzws2/lookup/MbPlaceResult.json")
    releases = [load_ws2("wrtag/release/be3a32ec-8d3d-41de-b102-12bcaaa33e78.json"),
                load_ws2("sortipy/releases-line1-58558cec-d9f1-40e4-a857-f7af88883c12.json"),
                load_ws2("picard/release.json")]
    save_all(db, normalize_entity("artist", artist))
    save_all(db, normalize_entity("place", place))
    for release in releases:
        save_all(db, normalize_entity("release", release))
    assert db.execute("SELECT area_id, begin_area_id, end_area_id FROM artist WHERE id = ?", [artist["id"]]).fetchone() \
        == (artist["area"]["id"], artist["begin-area"]["id"], None)
    assert db.execute("SELECT area_id, latitude, longitude FROM place").fetchone() == (
        place["area"]["id"], place["coordinates"]["latitude"], place["coordinates"]["longitude"])
    every_release = [release for entity, body in [("artist", artist), *(("release", r) for r in releases)]
                     for kind, release in entities_in(body, entity) if kind == "release"]
    events = {(r["id"], i, (e.get("area") or {}).get("id"), e.get("date") or None)
              for r in every_release for i, e in enumerate(r.get("release-events") or [])}
    assert set(db.execute("SELECT release_id, position, area_id, date FROM release_event").fetchall()) == events
    assert {(r["id"], r["text-representation"].get("language"), r["text-representation"].get("script"))
            for r in every_release} == set(db.execute("SELECT id, language, script FROM release").fetchall())
    areas = {}
    for entity, body in [("artist", artist), ("place", place), *(("release", r) for r in releases)]:
        for kind, area in entities_in(body, entity):
            if kind == "area":
                areas[area["id"]] = (area.get("name"), " ".join(area.get("iso-3166-1-codes") or ()) or None,
                                     " ".join(area.get("iso-3166-2-codes") or ()) or None)
    assert {row[0]: row[1:] for row in db.execute("SELECT id, name, iso_3166_1, iso_3166_2 FROM area")} == areas
    assert ("United States", "US", None) in areas.values() and ("Greenwich", None, "GB-GRE") in areas.values()


@pytest.mark.parametrize("entry", other_index(), ids=lambda e: e["path"])
def test_every_other_entity_type_lands_in_its_table(db, entry):
    body = load_other(entry["path"])
    entity, table = entry["entity"], entry["entity"].replace("-", "_")
    if entry["kind"] == "search":
        save_all(db, normalize_page(entity, body).normalized)
        items = body[f"{entity}s"]
    else:
        save_all(db, normalize_entity(entity, body))
        items = [body]
    columns = {"name": "name", "title": "title", "type": "type", "disambiguation": "disambiguation",
               "description": "description", "address": "address", "time": "time", "setlist": "setlist"}
    present = {row[1] for row in db.execute(f"PRAGMA table_info([{table}])")}
    for item in items:
        row = dict(zip(present, db.execute(f"SELECT {', '.join(f'[{c}]' for c in present)} FROM [{table}] "
                                           "WHERE id = ?", [item["id"]]).fetchone()))
        for key, column in columns.items():
            if key in item and column in row:
                assert row[column] == item[key], (column, row[column], item[key])
        span = item.get("life-span") or {}
        if "begin_date" in row and "begin" in span:
            assert row["begin_date"] == (span["begin"] or None)


def test_replacing_relationships_only_of_the_types_asked_for(db):
    """A url-rels lookup replaces the recording's URL relationships and leaves its works; a search replaces none;
    a relationship's target never replaces its own."""
    body = load_ws2("picard/recording_video.json")
    save_all(db, normalize_entity("recording", body))
    kinds = dict(db.execute("SELECT target_type, count(*) FROM relationship WHERE entity_id = ? GROUP BY 1",
                            [body["id"]]).fetchall())
    assert kinds.get("url") and kinds.get("work")
    only_works = copy.deepcopy(body)
    only_works["relations"] = [r for r in body["relations"] if r.get("target-type") != "url"]
    save_all(db, normalize_entity("recording", only_works, relation_types=relation_types_of(["url-rels"])))
    after = dict(db.execute("SELECT target_type, count(*) FROM relationship WHERE entity_id = ? GROUP BY 1",
                            [body["id"]]).fetchall())
    assert after.get("url") is None and after["work"] == kinds["work"]
    no_relations = {**body, "relations": []}
    save_all(db, normalize_entity("recording", no_relations, relation_types=frozenset()))
    assert dict(db.execute("SELECT target_type, count(*) FROM relationship WHERE entity_id = ? GROUP BY 1",
                           [body["id"]]).fetchall()) == after
    work = next(r["work"] for r in body["relations"] if r.get("target-type") == "work")
    assert db.execute("SELECT count(*) FROM relationship WHERE entity_id = ? OR target_id = ?",
                      [work["id"], work["id"]]).fetchone()[0] >= 1
    as_target = {"id": "00000000-0000-4000-8000-0000000000aa", "name": "Someone", "relations": [
        {"type": "performer", "target-type": "recording", "direction": "forward",
         "recording": {"id": body["id"], "title": body["title"], "relations": [], "aliases": []}}]}
    before = db.execute("SELECT count(*) FROM relationship").fetchone()[0]
    aliases = db.execute("SELECT count(*) FROM alias").fetchone()[0]
    save_all(db, normalize_entity("artist", as_target))
    assert db.execute("SELECT count(*) FROM relationship").fetchone()[0] == before + 1
    assert db.execute("SELECT count(*) FROM alias").fetchone()[0] == aliases


def test_relation_types_of_includes():
    assert relation_types_of(["artist-credits", "url-rels", "release-group-rels", "work-level-rels"]) == {
        "url", "release_group"}
    assert url_host("https://Open.Spotify.com:443/artist/x") == "open.spotify.com"
    assert url_host("not a url") is None


def test_secondary_types_are_a_json_array_and_a_missing_label_is_null(db):
    body = load_ws2("musicbrainzws2/search/MbRecordingResult.json")
    save_all(db, normalize_page("recording", body).normalized)
    groups = {}
    for recording in body["recordings"]:
        for release in recording.get("releases") or []:
            group = release.get("release-group") or {}
            if "secondary-types" in group:
                groups[group["id"]] = group["secondary-types"]
    stored = {row[0]: json.loads(row[1]) for row in db.execute(
        "SELECT id, secondary_types FROM release_group WHERE secondary_types IS NOT NULL")}
    assert stored == groups and ["Compilation", "Live"] in stored.values()
    release = load_ws2("musicbrainz-android/release_lookup.json")
    release["label-info"] = [{"catalog-number": "NO-LABEL-1", "label": None}]
    save_all(db, normalize_entity("release", release))
    assert db.execute("SELECT label_id, catalog_number FROM release_label WHERE release_id = ?",
                      [release["id"]]).fetchall() == [(None, "NO-LABEL-1")]
    db.execute("PRAGMA foreign_keys = ON")
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []


def test_every_real_body_together_keeps_every_foreign_key(db):
    from tests.conftest import ws2_index
    from tests.test_normalize import EDITED_NULL_COPIES, normalize_body

    for entry in ws2_index():
        if entry["path"] not in EDITED_NULL_COPIES:
            save_all(db, normalize_body(entry["entity"], entry["kind"], load_ws2(entry["path"])))
    for entry in other_index():
        body = load_other(entry["path"])
        save_all(db, normalize_page(entry["entity"], body).normalized if entry["kind"] == "search"
                 else normalize_entity(entry["entity"], body))
    assert db.execute("PRAGMA foreign_key_check").fetchall() == []
    assert db.execute("SELECT count(*) FROM release_label WHERE label_id = ''").fetchone()[0] == 0


def test_read_from_sqlite_alone(db, tmp_path):
    """The README's two queries: recordings of a work with their ISWC; artists linked to Spotify."""
    for entity, load, path in RELATION_BODIES:
        save_all(db, normalize_entity(entity, load(path)))
    conn = sqlite3.connect(Path(tmp_path / "open.db"))
    works = conn.execute("""
        SELECT w.title, i.iswc, rw.recording_id FROM work w
        JOIN work_iswc i ON i.work_id = w.id JOIN recording_work rw ON rw.work_id = w.id""").fetchall()
    assert works
    spotify = conn.execute("""
        SELECT a.name, eu.resource FROM entity_url eu JOIN artist a ON a.id = eu.entity_id
        WHERE eu.entity_type = 'artist' AND eu.service = 'Spotify'""").fetchall()
    assert ("Ed Sheeran", "https://open.spotify.com/artist/6eUKZXaKkcviH0Ku9w2n3V") in spotify
    conn.close()


def test_a_database_of_0_1_0_upgrades_losing_nothing_and_converting_what_changed_format(tmp_path):
    """The first write command brings 0.1.0's database to this shape: every row and value kept, secondary_types
    a JSON array everywhere in the column, a label-info without a label NULL instead of '' (which failed
    PRAGMA foreign_key_check), the new tables there and empty."""
    from click.testing import CliRunner

    from harvester.cli import cli

    path = tmp_path / "old.db"
    path.write_bytes((FIXTURES / "db" / "mbharvest-0.1.0.db").read_bytes())
    conn = sqlite3.connect(path)
    release = conn.execute("SELECT min(id) FROM release").fetchone()[0]
    # what 0.1.0 wrote for a label-info without a label
    conn.execute("INSERT INTO release_label (release_id, label_id, catalog_number, fetched_at, source) "
                 "VALUES (?, '', 'CAT-0', ?, 'ws2:test')", [release, T0])
    conn.commit()
    conn.execute("PRAGMA foreign_keys = ON")
    assert conn.execute("PRAGMA foreign_key_check").fetchall()  # 0.1.0's flaw, reproduced
    tables = [name for name, in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                             "AND name NOT LIKE '%fts%' AND name NOT LIKE 'sqlite_%'")]
    before = {}
    for table in tables:
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info([{table}])")]
        before[table] = (columns, conn.execute(f"SELECT * FROM [{table}]").fetchall())
    conn.close()

    untouched = path.read_bytes()
    figures = json.loads(CliRunner().invoke(cli, ["stats", "--json", "--db", str(path)]).output)
    assert (figures["works"], figures["work_iswcs_unique"], figures["recordings_with_work"],
            figures["open_data_tables"]) == (0, 0, 0, False)
    assert figures["streaming_links"]["Spotify"] == {"artists": 0, "releases": 0, "recordings": 0}
    assert path.read_bytes() == untouched  # a read command reads the old shape as it is

    result = CliRunner().invoke(cli, ["upgrade", "--db", str(path)])
    assert result.exit_code == 0 and "0011_open_data" in result.output, result.output

    def converted(table, column, value):
        if (table, column) == ("release_group", "secondary_types") and value is not None:
            return [part.strip() for part in value.split(";") if part.strip()]
        if (table, column) == ("release_label", "label_id") and value == "":
            return None
        if (table, column) == ("label", "label_code") and value is not None:
            return str(value)  # migration 0007: TEXT, 2648 and SPREC alike
        return value

    conn = sqlite3.connect(path)
    for table, (columns, rows) in before.items():
        if table == "_sqlite_migrations":
            continue
        listed = ", ".join(f"[{c}]" for c in columns)
        after = conn.execute(f"SELECT {listed} FROM [{table}]").fetchall()
        if table == "release_group":
            at = columns.index("secondary_types")
            after = [tuple(json.loads(v) if i == at and v is not None else v for i, v in enumerate(row))
                     for row in after]
        expected = [tuple(converted(table, c, v) for c, v in zip(columns, row)) for row in rows]
        assert sorted(after, key=repr) == sorted(expected, key=repr), table
    types = [json.loads(v) for v, in conn.execute("SELECT secondary_types FROM release_group "
                                                  "WHERE secondary_types IS NOT NULL")]
    assert types and all(isinstance(t, list) for t in types) and ["Compilation", "Live"] in types and [] in types
    conn.execute("PRAGMA foreign_keys = ON")
    assert conn.execute("PRAGMA foreign_key_check").fetchall() == []
    assert conn.execute("SELECT label_id FROM release_label WHERE catalog_number = 'CAT-0'").fetchall() == [(None,)]
    for table in ("work", "relationship", "alias", "area", "release_event", "url"):
        assert conn.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0] == 0
    conn.close()


# Every URL host in the fixture bodies that is on a streaming service, and which (the documented list in
# harvester/streaming.py applied by hand); every other host of the bodies is on none.
STREAMING_HOSTS = {
    "open.spotify.com": "Spotify", "artists.spotify.com": "Spotify", "itunes.apple.com": "Apple Music",
    "music.apple.com": "Apple Music", "www.deezer.com": "Deezer", "tidal.com": "Tidal",
    "www.youtube.com": "YouTube", "soundcloud.com": "SoundCloud", "kishibashi.bandcamp.com": "Bandcamp",
    "cityslang.bandcamp.com": "Bandcamp", "play.qobuz.com": "Qobuz", "www.pandora.com": "Pandora",
}
LINK_BODIES = [
    ("artist", load_ws2, "hqub-musicbrainz/artist-get.json"),
    ("artist", load_ws2, "musicbrainz-android/artist_lookup.json"),
    ("artist", load_ws2, "inkstak-musicbrainz/artist-03-lookup-200.json"),
    ("label", load_ws2, "hqub-musicbrainz/label-get.json"),
    ("release", load_ws2, "inkstak-musicbrainz/release-13-lookup-200.json"),
    ("release", load_ws2, "sortipy/releases-line1-58558cec-d9f1-40e4-a857-f7af88883c12.json"),
    ("release", load_ws2, "musicbrainz-android/release_lookup.json"),
    ("release", load_ws2, "wrtag/release/be3a32ec-8d3d-41de-b102-12bcaaa33e78.json"),
    ("recording", load_ws2, "picard/recording_video.json"),
    ("recording", load_ws2, "picard/recording_multiple_works.json"),
    ("work", load_other, "hqub-musicbrainz/work-get.json"),
]


def links_db(path):
    """The link bodies saved as their union (they were fetched with different includes: nothing replaced), and
    what they hold, read from their JSON: per service the artists, releases and recordings linked to it; the
    works, ISWCs and recordings performing a work; every URL host."""
    from harvester.streaming import SERVICE_NAMES

    db = open_db(path)
    links = {name: {"artists": set(), "releases": set(), "recordings": set()} for name in SERVICE_NAMES}
    works, iswcs, performing, hosts = set(), set(), set(), set()
    for entity, load, body_path in LINK_BODIES:
        body = load(body_path)
        for kind, owner in entities_in(body, entity):
            if kind == "work":
                works.add(owner["id"])
                iswcs |= {code.replace("-", "").replace(".", "") for code in owner.get("iswcs") or ()}
            for relation in owner.get("relations") or []:
                target = relation_target(relation)
                if target and target[0] == "url":
                    host = urlsplit(target[1]["resource"]).hostname
                    hosts.add(host)
                    if host in STREAMING_HOSTS and kind in ("artist", "release", "recording"):
                        links[STREAMING_HOSTS[host]][kind + "s"].add(owner["id"])
                if target and target[0] == "work" and kind == "recording":
                    performing.add(owner["id"])
        save_all(db, normalize_entity(entity, body, relation_types=frozenset()))
    return db, links, works, iswcs, performing, hosts


def test_stats_count_works_iswcs_and_links_to_streaming_services(tmp_path):
    from harvester.stats import compute_stats

    db, links, works, iswcs, performing, hosts = links_db(tmp_path / "links.db")
    stats = compute_stats(db)
    assert stats["streaming_links"] == {name: {key: len(ids) for key, ids in counts.items()}
                                        for name, counts in links.items()}
    assert stats["streaming_links_any"] == {key: len(set().union(*(links[s][key] for s in links)))
                                            for key in ("artists", "releases", "recordings")}
    assert stats["streaming_links"]["Spotify"]["artists"] == 2 and stats["streaming_links"]["Bandcamp"]["releases"]
    assert (stats["works"], stats["work_iswcs_unique"], stats["recordings_with_work"]) == (
        len(works), len(iswcs), len(performing))
    assert stats["works"] > 40 and stats["work_iswcs_unique"] > 5
    # a recording marked gone, and every work of another one, leave the count; so does a work not stored
    pairs = db.execute("SELECT entity_id, target_id FROM relationship WHERE entity_type = 'recording' "
                       "AND target_type = 'work'").fetchall()
    gone_recording, other = sorted(performing)[:2]
    with db.conn:
        db.execute("UPDATE recording SET gone_at = '2026-01-01T00:00:00Z' WHERE id = ?", [gone_recording])
        works_of_other = [w for r, w in pairs if r == other]
        listed = ", ".join("?" * len(works_of_other))
        db.execute(f"UPDATE work SET gone_at = '2026-01-01T00:00:00Z' WHERE id IN ({listed})", works_of_other)
        db.execute("INSERT INTO relationship (entity_type, entity_id, target_type, target_id, link_key) "
                   "VALUES ('recording', 'not-a-stored-recording', 'work', 'not-a-stored-work', 'k')")
    gone_works = {w for (w,) in db.execute("SELECT id FROM work WHERE gone_at IS NOT NULL")}
    stored_works = {w for (w,) in db.execute("SELECT id FROM work")}
    assert gone_works and other not in {r for r, w in pairs if w not in gone_works}
    assert compute_stats(db)["recordings_with_work"] == len(
        {r for r, w in pairs if r != gone_recording and w in stored_works - gone_works}) == len(performing) - 2
    shown = dict(db.execute("SELECT host, service FROM entity_url").fetchall())
    assert set(shown) == hosts and {h: s for h, s in shown.items() if s} == {
        h: s for h, s in STREAMING_HOSTS.items() if h in hosts}
    db.close()


def test_the_report_has_a_section_on_links_to_streaming_services(tmp_path):
    from harvester.report import write_report
    from tests.test_report import png_size

    from harvester.claims import CLAIM_ISRCS, CLAIM_TRACKS
    from harvester.report import compute_stats, draw_streaming_links
    from tests.test_report import as_number, render, visible_ticks

    db, links, *_ = links_db(tmp_path / "links.db")
    write_report(db, tmp_path / "report")
    figure = draw_streaming_links(compute_stats(db))
    db.close()
    render(figure)
    axes = figure.axes[0]
    ticks = [(value, label) for value, label in visible_ticks(axes.xaxis, axes.get_xlim()) if label]
    assert len(ticks) >= 8 and all(as_number(label) == value for value, label in ticks)
    assert len({label for _, label in ticks}) == len(ticks)
    assert {line.get_xdata()[0] for line in axes.lines} == {CLAIM_TRACKS, CLAIM_ISRCS}
    markdown = (tmp_path / "report" / "report.md").read_text(encoding="utf-8")
    section = markdown[markdown.index("## Links to streaming services"):markdown.index("## Works")]
    rows = {cells[0]: cells[1:] for cells in (
        [cell.strip() for cell in line.strip("|").split("|")] for line in section.splitlines()
        if line.startswith("| ") and not line.startswith("| service"))}
    linked = {name: counts for name, counts in links.items() if any(counts.values())}
    assert {name: rows[name] for name in linked} == {
        name: [f"{len(counts[key]):,}" for key in ("artists", "releases", "recordings")]
        for name, counts in linked.items()}
    assert set(rows) == set(linked) | {"any of them", "this database, all", "the articles (Spotify)"}
    assert "256.00 M tracks; 186.00 M ISRCs" in rows["the articles (Spotify)"][2]
    assert "![" in section and "(streaming_links.png)" in section
    assert png_size((tmp_path / "report" / "streaming_links.png").read_bytes()) == (1000, 500)


def test_an_artist_s_country_through_part_of_relationships(db):
    """The README's query: an artist whose area is a Berlin district is in Germany (Berlin's relationships from
    its real lookup; Germany -> Berlin as the area dump's Germany line carries it)."""
    berlin = load_other("hqub-musicbrainz/area-get.json")
    district = next(r["area"] for r in berlin["relations"] if r["type"] == "part of" and r["direction"] == "forward")
    germany = {"id": "85752fda-13c4-31a3-bee5-0e5cb1f51dad", "name": "Germany", "type": "Country",
               "iso-3166-1-codes": ["DE"], "relations": [{
                   "type": "part of", "type-id": "de7cc874-8b1b-3a05-8272-f3834c968fb7", "direction": "forward",
                   "target-type": "area", "area": {"id": berlin["id"], "name": berlin["name"]}}]}
    artist = {"id": "00000000-0000-4000-8000-00000000000b", "name": "Someone", "area": district}
    for entity, body in (("area", berlin), ("area", germany), ("artist", artist)):
        save_all(db, normalize_entity(entity, body))
    assert db.execute("""WITH RECURSIVE up(artist_id, area_id) AS (
            SELECT id, area_id FROM artist WHERE area_id IS NOT NULL
            UNION SELECT up.artist_id, p.entity_id FROM up JOIN relationship p ON p.target_id = up.area_id
              AND p.target_type = 'area' AND p.entity_type = 'area' AND p.type = 'part of')
          SELECT a.name, c.name AS country FROM up JOIN area c ON c.id = up.area_id AND c.type = 'Country'
          JOIN artist a ON a.id = up.artist_id""").fetchall() == [("Someone", "Germany")]
    assert db.execute("SELECT iso_3166_1 FROM area WHERE id = ?", [germany["id"]]).fetchone() == ("DE",)
