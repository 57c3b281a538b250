"""Datasette metadata: title, licence and source; a description of every table,
view and column (from the data dictionary); internal tables hidden; facets
that make sense (few distinct values, never a partial date); licence per
table; and canned queries for the report's claims (C1-C8) and common
questions.

Run Datasette with `--setting suggest_facets off`: its date-facet suggestion
would offer date() over partial dates, where date('1957') is a Julian day.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harvester.export.dictionary import (
    ATTRIBUTION, CC0_LICENSE, CC0_URL, INTERNAL, SOURCE, SOURCE_URL, SUPPLEMENTARY, describe, licence_of,
)
from harvester.export.source import AtomicFile, open_source, prepare_out_dir, table_columns, write_error
from harvester.claims import CLAIM_ISRCS, CLAIM_MB_ENTRIES, CLAIM_TRACKS
from harvester.stats import KNOWN_TOTALS, KNOWN_TOTALS_AS_OF

SETTINGS = {"suggest_facets": False}

_LIVE_RECORDINGS = "(SELECT coalesce(sum(recordings), 0) FROM summary_recording_length)"
_LIVE_RELEASES = "(SELECT coalesce(sum(releases), 0) FROM summary_release_year)"
_LIVE_GROUPS = "(SELECT coalesce(sum(release_groups), 0) FROM summary_release_group_year)"
_DISTINCT_ISRCS = "(SELECT coalesce(sum(isrcs), 0) FROM summary_isrc_country)"
_LIVE_ARTISTS = "(SELECT count(*) FROM artist WHERE gone_at IS NULL)"
_NOT_GONE = "NOT EXISTS (SELECT 1 FROM {table} g WHERE g.id = {column} AND g.gone_at IS NOT NULL)"
_SCANS = " It scans a large table: at full size give Datasette --setting sql_time_limit_ms 60000."


def _known(key: str) -> str:
    return str(KNOWN_TOTALS[key])


def canned_queries() -> dict[str, dict[str, str]]:
    """The claims side by side (as `mbharvest report` measures them) and common questions."""
    tracks = f"(SELECT count(*) FROM track t WHERE {_NOT_GONE.format(table='release', column='t.release_id')})"
    candidates = " UNION ALL ".join(
        [f"SELECT 'MusicBrainz {label} ({KNOWN_TOTALS_AS_OF})' AS number, {_known(key)} AS value"
         for key, label in (("artists", "artists"), ("release_groups", "release groups"), ("releases", "releases"),
                            ("recordings", "recordings"))]
        + [f"SELECT 'distinct ISRCs in this database', {_DISTINCT_ISRCS}"])
    coverage = " UNION ALL ".join(
        f"SELECT '{label}' AS entity, {local} AS this_database, {_known(key)} AS musicbrainz, "
        f"round(100.0 * {local} / {_known(key)}, 4) AS percent"
        for key, label, local in (("artists", "artists", _LIVE_ARTISTS),
                                  ("release_groups", "release groups", _LIVE_GROUPS),
                                  ("releases", "releases", _LIVE_RELEASES),
                                  ("recordings", "recordings", _LIVE_RECORDINGS)))
    return {
        "c1_tracks": {
            "title": "C1: ~256 million tracks",
            "description": "Recordings and tracks (on releases not marked gone) here, beside the claim." + _SCANS,
            "sql": f"SELECT {_LIVE_RECORDINGS} AS recordings, {tracks} AS tracks, {CLAIM_TRACKS} AS claimed_tracks",
        },
        "c2_isrcs": {
            "title": "C2: ~186 million unique ISRCs",
            "description": "Distinct ISRCs, recording-ISRC pairs and recordings with an ISRC (recordings not "
                           "marked gone), beside the claim." + _SCANS,
            "sql": (f"SELECT {_DISTINCT_ISRCS} AS distinct_isrcs, "
                    "(SELECT coalesce(sum(recordings), 0) FROM summary_isrc) AS recording_isrc_pairs, "
                    "(SELECT count(DISTINCT ri.recording_id) FROM recording_isrc ri WHERE "
                    f"{_NOT_GONE.format(table='recording', column='ri.recording_id')}) AS recordings_with_isrc, "
                    f"{CLAIM_ISRCS} AS claimed_unique_isrcs"),
        },
        "c3_audio": {
            "title": "C3: 86 million audio files",
            "description": "Not applicable: mbharvest harvests metadata only and never fetches audio.",
            "sql": "SELECT 'C3' AS claim, '86 million audio files (~300 TB), ~99.6% of listens' AS published, "
                   "'not applicable: mbharvest never fetches audio' AS this_database",
        },
        "c4_five_million": {
            "title": "C4: which MusicBrainz number is near \"5 million entries\"",
            "description": "Each candidate, nearest to 5 M first (by ratio), with 186 M divided by it (the "
                           "articles' \"37 times larger\").",
            "sql": (f"SELECT number, value, round({CLAIM_ISRCS}.0 / value, 1) AS claim_186m_divided_by_it "
                    f"FROM ({candidates}) WHERE value > 0 "
                    f"ORDER BY max(value, {CLAIM_MB_ENTRIES}) * 1.0 / min(value, {CLAIM_MB_ENTRIES})"),
        },
        "c5_popularity": {
            "title": "C5: popularity",
            "description": "Not available: MusicBrainz core data has no popularity, and no proxy is invented.",
            "sql": "SELECT 'C5' AS claim, 'over 70% of tracks have popularity 0' AS published, "
                   "'not available: no popularity in MusicBrainz core data' AS this_database",
        },
        "c6_lengths": {
            "title": "C6: track lengths cluster at 2, 3 and 4 minutes",
            "description": "The fullest 5-second length bins (`mbharvest stats` finds the peaks).",
            "sql": ("SELECT printf('%d:%02d', start_ms / 60000, start_ms / 1000 % 60) AS bin_from, "
                    "printf('%d:%02d', end_ms / 60000, end_ms / 1000 % 60) AS bin_to, recordings "
                    "FROM recording_length_histogram ORDER BY recordings DESC LIMIT 25"),
        },
        "c7_years": {
            "title": "C7: releases per year (over 10 million albums dated 2023)",
            "description": "Releases per year and release groups of primary type Album first released that year; "
                           "partial dates count for their year.",
            "sql": ("SELECT r.year, r.releases, coalesce((SELECT g.release_groups FROM release_groups_per_year g "
                    "WHERE g.year = r.year AND g.primary_type = 'Album'), 0) AS album_release_groups "
                    "FROM releases_per_year r ORDER BY r.year"),
        },
        "c8_coverage": {
            "title": "C8: coverage against MusicBrainz's totals",
            "description": f"This database's counts against MusicBrainz's own ({KNOWN_TOTALS_AS_OF}): a harvest "
                           "of a few seeds is a sample, a full dump import the whole catalogue.",
            "sql": coverage,
        },
        "recordings_of_isrc": {
            "title": "Recordings carrying an ISRC",
            "description": "Give an ISRC (hyphens and case do not matter).",
            "sql": ("SELECT r.id, r.title, r.artist_credit, r.length_ms, r.first_release_date, r.gone_at "
                    "FROM recording_isrc ri JOIN recording r ON r.id = ri.recording_id "
                    "WHERE ri.isrc = upper(replace(:isrc, '-', ''))"),
        },
        "tracks_of_recording": {
            "title": "Tracks of a recording, with their releases",
            "description": "Give a recording MBID.",
            "sql": ("SELECT rel.title AS release, rel.date, rel.country, t.medium_position, t.number, t.title, "
                    "t.length_ms FROM track t JOIN release rel ON rel.id = t.release_id "
                    "WHERE t.recording_id = :recording_id ORDER BY rel.date"),
        },
        "recordings_with_several_isrcs": {
            "title": "Recordings with several ISRCs",
            "description": "The first 100, with their ISRCs.",
            "sql": ("SELECT r.id, r.title, r.artist_credit, x.isrcs, x.isrc_list FROM (SELECT recording_id, "
                    "count(*) AS isrcs, group_concat(isrc, ' ') AS isrc_list FROM recording_isrc "
                    "GROUP BY recording_id HAVING count(*) > 1 LIMIT 100) x "
                    "JOIN recording r ON r.id = x.recording_id"),
        },
        "recordings_of_work": {
            "title": "Recordings performing a work, with its ISWCs",
            "description": "Give a work MBID (work.id).",
            "sql": ("SELECT w.title AS work, (SELECT group_concat(iswc, ' ') FROM work_iswc WHERE work_id = w.id) "
                    "AS iswcs, r.id, r.title, r.artist_credit, rw.type, rw.attributes FROM recording_work rw "
                    "JOIN work w ON w.id = rw.work_id JOIN recording r ON r.id = rw.recording_id "
                    "WHERE rw.work_id = :work_id ORDER BY r.title"),
        },
        "streaming_links": {
            "title": "Links to streaming services",
            "description": "Distinct artists, releases and recordings with a URL relationship on each streaming "
                           "service (hosts listed in harvester/streaming.py); scans every URL relationship.",
            "sql": ("SELECT service, entity_type, count(DISTINCT entity_id) AS linked FROM entity_url "
                    "WHERE service IS NOT NULL GROUP BY 1, 2 ORDER BY 3 DESC"),
        },
        "search_aliases": {
            "title": "Search every alias (other scripts, languages, legal names)",
            "description": "Full-text search (SQLite FTS5 syntax) over alias names and sort names.",
            "sql": ("SELECT a.entity_type, a.entity_id, a.name, a.locale, a.type FROM alias_fts "
                    "JOIN alias a ON a.rowid = alias_fts.rowid WHERE alias_fts MATCH :query ORDER BY rank LIMIT 100"),
        },
        "search_recordings": {
            "title": "Search recordings by title or artist credit",
            "description": "Full-text search (SQLite FTS5 syntax: words, \"a phrase\", prefix*).",
            "sql": ("SELECT r.id, r.title, r.artist_credit, r.length_ms, r.first_release_date FROM recording_fts "
                    "JOIN recording r ON r.rowid = recording_fts.rowid WHERE recording_fts MATCH :query "
                    "ORDER BY rank LIMIT 100"),
        },
    }


def _entry(conn, name: str) -> dict[str, Any]:
    described = describe(name)
    if described is None:  # a table the dictionary does not know yet: shown, undescribed
        return {}
    present = [column for column, _ in table_columns(conn, name)]
    entry: dict[str, Any] = {
        "description": described.description,
        "columns": {column: described.columns[column].description for column in present
                    if column in described.columns},
    }
    if described.kind == INTERNAL:
        entry["hidden"] = True
    if described.kind == SUPPLEMENTARY:
        entry["license"], entry["license_url"] = licence_of(name)
    if facets := [column for column in described.facets if column in present]:
        entry["facets"] = facets
    return entry


def datasette_metadata(db_path: str | Path) -> dict[str, Any]:
    """Datasette metadata for the tables and views this database has."""
    path = Path(db_path)
    conn = open_source(path)
    try:
        names = [row[0] for row in conn.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY type, name")]
        tables = {name: entry for name in names if (entry := _entry(conn, name))}
        queries = canned_queries() if "summary_isrc" in names else {}  # a database before migration 0007 lacks them
    finally:
        conn.close()
    return {
        "title": "MusicBrainz open metadata (mbharvest)",
        "description": ("Artists, labels, releases, recordings, tracks and ISRCs harvested from MusicBrainz "
                        "into SQLite by mbharvest. Core data is CC0 (public domain). Tables tag, rating and "
                        "annotation, when filled, are supplementary data under CC BY-NC-SA 3.0 "
                        "(NonCommercial). " + ATTRIBUTION),
        "license": CC0_LICENSE,
        "license_url": CC0_URL,
        "source": SOURCE,
        "source_url": SOURCE_URL,
        "databases": {path.stem: {
            "title": f"MusicBrainz ({path.name})",
            "description": "One row per MusicBrainz entity, upserted; every entity row records fetched_at and "
                           "source. The views leave out rows marked gone, as `mbharvest stats` does.",
            "tables": tables,
            "queries": queries,
        }},
    }


def write_datasette_metadata(db_path: str | Path, out_file: str | Path) -> Path:
    metadata = datasette_metadata(db_path)
    path = Path(out_file)
    prepare_out_dir(path.parent)
    try:
        with AtomicFile(path) as partial:
            partial.write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise write_error(path, exc) from None
    return path
