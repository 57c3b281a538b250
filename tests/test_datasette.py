"""Datasette (a test dependency) serving the database with the exported
metadata, in-process: the canned queries for the claims run and say what the
rows say, internal tables are hidden, facets are the declared ones."""

import asyncio
import json
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from harvester.export import write_datasette_metadata
from harvester.export.datasette import SETTINGS
from harvester.stats import KNOWN_TOTALS
from tests.test_export import INTERNAL_TABLES, build_db
from tests.test_views import GONE, year_of

datasette_app = pytest.importorskip("datasette.app", reason="datasette is not installed: pip install -e '.[test]'")


@pytest.fixture(scope="module")
def served(tmp_path_factory):
    folder = tmp_path_factory.mktemp("datasette")
    db_path = build_db(folder / "musicbrainz.db")
    conn = sqlite3.connect(db_path)
    with conn:
        conn.execute("UPDATE recording SET gone_at = ? WHERE id = (SELECT min(recording_id) FROM recording_isrc)",
                     (GONE,))
        conn.execute("UPDATE release SET gone_at = ? WHERE id = (SELECT min(release_id) FROM track)", (GONE,))
    conn.close()
    metadata = json.loads(write_datasette_metadata(db_path, folder / "metadata.json").read_text())
    ds = datasette_app.Datasette([str(db_path)], metadata=metadata, settings=SETTINGS)

    def get(path: str):
        response = asyncio.run(ds.client.get(path))
        assert response.status_code == 200, (path, response.text[:500])
        return response.json()
    return db_path, get


def rows(db_path: Path, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def test_internal_tables_are_hidden_and_the_rest_shown(served):
    db_path, get = served
    listed = {table["name"]: table["hidden"] for table in get("/musicbrainz.json")["tables"]}
    internal = INTERNAL_TABLES | {name for name in listed if name.startswith("summary_") or "_fts" in name}
    assert len(internal) > len(INTERNAL_TABLES) + 5
    assert {name for name, hidden in listed.items() if hidden} == internal
    assert {"artist", "recording", "release", "recording_isrc", "harvest_run", "tag"} <= {
        name for name, hidden in listed.items() if not hidden}


def test_facets_are_the_declared_ones_and_no_date_facet_is_suggested(served):
    _, get = served
    page = get("/musicbrainz/release.json")
    assert set(page["facet_results"]) == {"status", "country", "packaging", "language", "script"}
    assert page["suggested_facets"] == []


def test_claim_queries_run_and_agree_with_the_rows(served):
    db_path, get = served
    live = {rid: length for rid, length, gone in rows(db_path, "SELECT id, length_ms, gone_at FROM recording")
            if not gone}
    gone_releases = {rid for rid, in rows(db_path, "SELECT id FROM release WHERE gone_at IS NOT NULL")}
    tracks = sum(1 for release, in rows(db_path, "SELECT release_id FROM track") if release not in gone_releases)
    pairs = [(r, i) for r, i in rows(db_path, "SELECT recording_id, isrc FROM recording_isrc") if r in live]
    assert get("/musicbrainz/c1_tracks.json?_shape=array") == [
        {"recordings": len(live), "tracks": tracks, "claimed_tracks": 256_000_000}]
    isrcs = {i for _, i in pairs}
    assert get("/musicbrainz/c2_isrcs.json?_shape=array") == [
        {"distinct_isrcs": len(isrcs), "recording_isrc_pairs": len(pairs),
         "recordings_with_isrc": len({r for r, _ in pairs}), "claimed_unique_isrcs": 186_000_000}]
    for name in ("c3_audio", "c5_popularity"):
        assert get(f"/musicbrainz/{name}.json?_shape=array")[0]["this_database"].startswith("not ")

    candidates = {**{f"MusicBrainz {k.replace('_', ' ')} (2025-11)": v for k, v in KNOWN_TOTALS.items()},
                  "distinct ISRCs in this database": len(isrcs)}
    near = get("/musicbrainz/c4_five_million.json?_shape=array")
    assert {row["number"]: row["value"] for row in near} == candidates
    assert near[0]["number"] == "MusicBrainz releases (2025-11)" and near[0]["claim_186m_divided_by_it"] == 36.5

    bins = Counter(length // 5000 for length in live.values() if length and length > 0)
    top = get("/musicbrainz/c6_lengths.json?_shape=array")
    assert [row["recordings"] for row in top] == sorted(bins.values(), reverse=True)[:25]

    releases = Counter(year_of(d) for d, g in rows(db_path, "SELECT date, gone_at FROM release") if not g)
    albums = Counter(year_of(d) for d, t in rows(
        db_path, "SELECT first_release_date, primary_type FROM release_group WHERE gone_at IS NULL") if t == "Album")
    assert get("/musicbrainz/c7_years.json?_shape=array") == [
        {"year": year, "releases": n, "album_release_groups": albums.get(year, 0)}
        for year, n in sorted(releases.items())]

    coverage = {row["entity"]: row for row in get("/musicbrainz/c8_coverage.json?_shape=array")}
    assert coverage["recordings"]["this_database"] == len(live)
    assert coverage["releases"]["this_database"] == len(rows(db_path, "SELECT id FROM release")) - len(gone_releases)
    assert coverage["artists"]["musicbrainz"] == KNOWN_TOTALS["artists"]


def test_question_queries_take_their_parameters(served):
    db_path, get = served
    rid, isrc = rows(db_path, "SELECT recording_id, isrc FROM recording_isrc ORDER BY isrc DESC LIMIT 1")[0]
    typed = f"{isrc[:2]}-{isrc[2:5]}-{isrc[5:7]}-{isrc[7:]}".lower()
    found = get(f"/musicbrainz/recordings_of_isrc.json?_shape=array&isrc={typed}")
    assert rid in {row["id"] for row in found}
    title = rows(db_path, f"SELECT title FROM recording WHERE id = '{rid}'")[0][0]
    word = max(title.split(), key=len).strip("()[]\"'.,!?")
    searched = get(f"/musicbrainz/search_recordings.json?_shape=array&query={word}")
    assert rid in {row["id"] for row in searched}
    several = get("/musicbrainz/recordings_with_several_isrcs.json?_shape=array")
    per_recording = Counter(r for r, in rows(db_path, "SELECT recording_id FROM recording_isrc"))
    assert {row["id"] for row in several} == {r for r, n in per_recording.items() if n > 1}


def test_secondary_types_take_datasette_s_array_facet(served):
    """Issue 18: 0.1.0's 'Compilation; Live' was refused by the array facet; a JSON array is counted per type."""
    db_path, get = served
    page = get("/musicbrainz/release_group.json?_facet_array=secondary_types&_size=0")
    facet = {item["value"]: item["count"] for item in page["facet_results"]["secondary_types"]["results"]}
    expected = Counter(kind for value, in rows(db_path, "SELECT secondary_types FROM release_group "
                                                        "WHERE secondary_types IS NOT NULL")
                       for kind in json.loads(value))
    assert facet == dict(expected) and facet


def test_the_issue_18_queries_say_what_the_rows_say(served):
    db_path, get = served
    spotify = {kind: n for kind, n in rows(db_path, "SELECT r.entity_type, count(DISTINCT r.entity_id) "
                                                    "FROM relationship r JOIN url u ON u.id = r.target_id "
                                                    "WHERE u.host LIKE '%spotify.com' GROUP BY 1")}
    linked = {(row["service"], row["entity_type"]): row["linked"]
              for row in get("/musicbrainz/streaming_links.json?_shape=array")}
    assert spotify and {kind: linked[("Spotify", kind)] for kind in spotify} == spotify
    arabic = json.loads((Path(__file__).parent / "fixtures" / "ws2" / "picard" / "artist_arabic.json").read_text())
    found = get("/musicbrainz/search_aliases.json?query=mounir&_shape=array")
    assert {row["entity_id"] for row in found} == {arabic["id"]}
