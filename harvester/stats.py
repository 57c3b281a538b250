"""Catalogue statistics, computed in SQL (set-based: no Python loop over rows).

Rows marked gone (`gone_at IS NOT NULL`) are left out everywhere: tracks of a
gone release and ISRC pairs of a gone recording with them. Python only
combines aggregates that SQL already grouped (at most a few thousand groups),
so the time depends on SQLite scans of covering indexes (migration
0003_views), not on the interpreter.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import sqlite_utils

from harvester.ledger import decode_args
from harvester.streaming import SERVICE_NAMES, service_sql
from harvester.views import LENGTH_BIN_MS, gone, live_entity, year_of

# Dense 5-second bins up to here; longer recordings (rare, and spread up to
# days) get only their non-empty bins listed.
LENGTH_DENSE_LIMIT_MS = 30 * 60_000

# MusicBrainz's own totals, November 2025 (docs/musicbrainz-notes.md).
KNOWN_TOTALS_AS_OF = "2025-11"
KNOWN_TOTALS: dict[str, int] = {
    "artists": 2_730_000,
    "release_groups": 3_970_000,
    "releases": 5_090_000,
    "recordings": 36_900_000,
}

# Peak finding on the length histogram (see find_peaks).
SMOOTHING_WEIGHTS = (1, 2, 1)
PEAK_MIN_SHARE_OF_MAX = 0.02
PEAK_NOISE_FACTOR = 3.0

# What the streaming-link counts count, per service: (stats key, entity table).
STREAMING_ENTITIES = (("artists", "artist"), ("releases", "release"), ("recordings", "recording"))

# read through the gone_at indexes (gone() says why), not by a scan of the table
_GONE_RECORDINGS = f"(SELECT id FROM recording g WHERE {gone('g')})"
_GONE_RELEASES = f"(SELECT id FROM release g WHERE {gone('g')})"


def _scalar(db: sqlite_utils.Database, sql: str) -> int:
    return db.execute(sql).fetchone()[0] or 0


def _count_live(db: sqlite_utils.Database, table: str) -> int:
    return _scalar(db, f"SELECT count(*) FROM [{table}] WHERE gone_at IS NULL")


def reference_year(yy: str, current_year: int) -> int:
    """The ISRC year of reference as a full year: two digits no later than the
    current year's are 20YY, the others 19YY (ISRCs date from 1986)."""
    value = int(yy)
    return 2000 + value if value <= current_year % 100 else 1900 + value


def smooth(counts: list[int]) -> list[float]:
    """Light (1-2-1) smoothing; the ends use the weights that fall inside."""
    half = len(SMOOTHING_WEIGHTS) // 2
    smoothed = []
    for i in range(len(counts)):
        total = weight = 0.0
        for offset, w in enumerate(SMOOTHING_WEIGHTS, start=-half):
            if 0 <= i + offset < len(counts):
                total += w * counts[i + offset]
                weight += w
        smoothed.append(total / weight)
    return smoothed


def find_peaks(counts: list[int]) -> list[dict[str, Any]]:
    """Local maxima of the lightly smoothed histogram that stand out.

    A peak must have a prominence (height above the higher of the two lowest
    points separating it from any higher bin) of at least 2% of the highest
    smoothed bin and at least three times the Poisson noise of its height,
    so sampling noise in a small database does not make peaks."""
    heights = smooth(counts)
    if not heights or max(heights) <= 0:
        return []
    top = max(heights)
    width = sum(SMOOTHING_WEIGHTS) / max(SMOOTHING_WEIGHTS)  # bins the smoothing averages over
    peaks = []
    i = 0
    while i < len(heights):
        j = i
        while j + 1 < len(heights) and heights[j + 1] == heights[i]:
            j += 1  # a plateau counts once, at its middle
        left_lower = i == 0 or heights[i - 1] < heights[i]
        right_lower = j == len(heights) - 1 or heights[j + 1] < heights[i]
        if left_lower and right_lower and heights[i] > 0:
            prominence = heights[i] - max(_base(heights, i, -1), _base(heights, j, +1))
            noise = math.sqrt(heights[i] / width)
            if prominence >= PEAK_MIN_SHARE_OF_MAX * top and prominence >= PEAK_NOISE_FACTOR * noise:
                middle = (i + j) // 2
                peaks.append({"bin": middle, "prominence": round(prominence, 2)})
        i = j + 1
    return peaks


def _base(heights: list[float], start: int, step: int) -> float:
    """Lowest height walking from start until a higher bin or the edge
    (the peak's base on that side, as in scipy.signal.peak_prominences)."""
    lowest = heights[start]
    k = start + step
    while 0 <= k < len(heights) and heights[k] <= heights[start]:
        lowest = min(lowest, heights[k])
        k += step
    return lowest


def _length_histogram(db: sqlite_utils.Database) -> tuple[list[dict[str, int]], dict[str, Any]]:
    by_bin = dict(db.execute(
        f"SELECT length_ms / {LENGTH_BIN_MS}, count(*) FROM recording "
        "WHERE gone_at IS NULL AND length_ms > 0 GROUP BY 1").fetchall())
    dense_bins = LENGTH_DENSE_LIMIT_MS // LENGTH_BIN_MS
    dense_used = [b for b in by_bin if b < dense_bins]
    dense_end = max(dense_used) + 1 if dense_used else 0
    bins = list(range(dense_end)) + sorted(b for b in by_bin if b >= dense_bins)
    histogram = [{"start_ms": b * LENGTH_BIN_MS, "end_ms": (b + 1) * LENGTH_BIN_MS, "count": by_bin.get(b, 0)}
                 for b in bins]
    longest = _scalar(db, "SELECT max(length_ms) FROM recording WHERE gone_at IS NULL AND length_ms > 0")
    peaks = [{"start_ms": p["bin"] * LENGTH_BIN_MS, "end_ms": (p["bin"] + 1) * LENGTH_BIN_MS,
              "centre": format_length((p["bin"] * LENGTH_BIN_MS) + LENGTH_BIN_MS // 2),
              "count": by_bin.get(p["bin"], 0), "prominence": p["prominence"]}
             for p in find_peaks([by_bin.get(b, 0) for b in range(dense_end)])]
    extras = {
        "length_peaks": peaks,
        "length_over_dense_limit": {"from_ms": LENGTH_DENSE_LIMIT_MS,
                                    "count": sum(n for b, n in by_bin.items() if b >= dense_bins)},
        "longest_recording_ms": longest,
    }
    return histogram, extras


def percent(part: int, whole: int) -> str:
    """A share with enough digits to be non-zero when the part is (0.0012%)."""
    if not whole:
        return "n/a"
    value = 100 * part / whole
    if value == 0 or value >= 0.1:
        return f"{value:.1f}%"
    digits = 1 - math.floor(math.log10(value))  # two significant digits, never 6.5e-06
    return f"{value:.{digits}f}%"


def format_length(ms: int) -> str:
    seconds = ms // 1000
    return f"{seconds // 60}:{seconds % 60:02d}"


def _isrc_figures(db: sqlite_utils.Database, current_year: int) -> dict[str, Any]:
    """Everything per distinct ISRC, from one grouped pass over the pairs."""
    groups = db.execute(f"""
        WITH live AS (
            SELECT isrc, count(*) AS recordings FROM recording_isrc
            WHERE recording_id NOT IN {_GONE_RECORDINGS} GROUP BY isrc)
        SELECT substr(isrc, 1, 2), substr(isrc, 6, 2), count(*), sum(recordings > 1), sum(recordings)
        FROM live GROUP BY 1, 2""").fetchall()
    countries: dict[str, int] = {}
    years: dict[str, int] = {}
    for country, yy, isrcs, _, _ in groups:
        countries[country] = countries.get(country, 0) + isrcs
        year = str(reference_year(yy, current_year))
        years[year] = years.get(year, 0) + isrcs
    per_recording = dict(db.execute(f"""
        SELECT isrcs, count(*) FROM (
            SELECT count(*) AS isrcs FROM recording_isrc
            WHERE recording_id NOT IN {_GONE_RECORDINGS} GROUP BY recording_id)
        GROUP BY isrcs""").fetchall())
    return {
        "recording_isrc_pairs": sum(g[4] for g in groups),
        "isrcs_unique": sum(g[2] for g in groups),
        "recordings_with_isrc": sum(per_recording.values()),
        "isrcs_on_multiple_recordings": sum(g[3] for g in groups),
        "recordings_with_multiple_isrcs": sum(n for isrcs, n in per_recording.items() if isrcs > 1),
        "isrc_countries": dict(sorted(countries.items(), key=lambda item: (-item[1], item[0]))),
        "isrc_reference_years": dict(sorted(years.items())),
        "isrcs_per_recording": {str(k): v for k, v in sorted(per_recording.items())},
    }


def _per_year(rows: list[tuple[str, int]]) -> dict[str, int]:
    """Years ascending, 'unknown' last."""
    return dict(sorted(rows, key=lambda row: (row[0] == "unknown", row[0])))


def _release_groups_by_type(db: sqlite_utils.Database) -> dict[str, dict[str, int]]:
    by_type: dict[str, list[tuple[str, int]]] = {}
    for primary_type, year, n in db.execute(
            f"SELECT coalesce(primary_type, '(none)'), {year_of('first_release_date')}, count(*) "
            "FROM release_group WHERE gone_at IS NULL GROUP BY 1, 2").fetchall():
        by_type.setdefault(primary_type, []).append((year, n))
    return {t: _per_year(rows) for t, rows in sorted(by_type.items())}


def coverage(counts: dict[str, int]) -> dict[str, dict[str, Any]]:
    """This database's counts against MusicBrainz's known totals."""
    return {key: {"local": counts[key], "musicbrainz": total, "share": counts[key] / total}
            for key, total in KNOWN_TOTALS.items()}


def origin(db: sqlite_utils.Database) -> dict[str, Any]:
    """Where the rows came from: the run ledger and the rows' `source`."""
    sources: dict[str, int] = {}
    for table in ("artist", "label", "release_group", "release", "recording"):
        for source, n in db.execute(f"SELECT coalesce(source, '(unknown)'), count(*) FROM [{table}] "
                                    "WHERE gone_at IS NULL GROUP BY 1").fetchall():
            sources[source] = sources.get(source, 0) + n
    runs = [{"command": command, "args": decode_args(args), "started_at": started, "finished_at": finished,
             "status": status} for command, args, started, finished, status in db.execute(
        "SELECT command, args, started_at, finished_at, status FROM harvest_run ORDER BY id").fetchall()]
    dump_runs = [run for run in runs if str(run["command"] or "").startswith("import-dump")]
    dump_sources = [s for s in sources if _looks_like_dump(s)]
    if not sources:
        kind = "empty"
    elif dump_runs or dump_sources:
        kind = "dump import"
    else:
        kind = "harvested sample"
    return {"kind": kind, "sources": sources, "runs": runs}


def _looks_like_dump(source: str) -> bool:
    lowered = source.lower()
    return "dump" in lowered or lowered.endswith((".tar.xz", ".jsonl", ".json.xz"))


def _open_data_figures(db: sqlite_utils.Database) -> dict[str, Any]:
    """Works, ISWCs, recordings performing a work, and links to streaming
    services: distinct artists, releases and recordings with at least one
    URL relationship whose host belongs to each service (harvester/streaming.py;
    hosts are classified once each, then only their URLs are joined). A
    database made before migration 0011 has none of these tables: zeros."""
    zero = {key: 0 for key, _ in STREAMING_ENTITIES}
    figures: dict[str, Any] = {
        "works": 0, "work_iswcs_unique": 0, "recordings_with_work": 0,
        "streaming_links": {name: dict(zero) for name in SERVICE_NAMES},
        "streaming_links_any": dict(zero), "relationships": 0, "urls": 0, "aliases": 0, "areas": 0,
        "open_data_tables": False,
    }
    tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    if not {"relationship", "url", "work", "work_iswc", "recording_work"} <= tables:
        return figures
    figures["open_data_tables"] = True
    figures["works"] = _count_live(db, "work")
    figures["work_iswcs_unique"] = _scalar(db, "SELECT count(DISTINCT i.iswc) FROM work_iswc i "
                                               "JOIN work w ON w.id = i.work_id WHERE w.gone_at IS NULL")
    # the recordings of the view recording_work, counted without it: the relationship key (entity_id
    # first) read in order needs no sort for DISTINCT, and gone works and recordings are looked up once
    # (1 M release lines: 44 s instead of 75 s, 84 s of stats' 116)
    figures["recordings_with_work"] = _scalar(db, f"""
        SELECT count(*) FROM (SELECT DISTINCT r.entity_id FROM relationship r
            WHERE r.entity_type = 'recording' AND r.target_type = 'work'
              AND EXISTS (SELECT 1 FROM work w WHERE w.id = r.target_id)
              AND r.target_id NOT IN (SELECT id FROM work g WHERE {gone('g')})
              AND r.entity_id NOT IN {_GONE_RECORDINGS})""")
    for key, table in (("relationships", "relationship"), ("urls", "url"), ("aliases", "alias"), ("areas", "area")):
        figures[key] = _scalar(db, f"SELECT count(*) FROM [{table}]")
    linked = f"""
        WITH hosts AS MATERIALIZED (SELECT host, {service_sql('host')} AS service FROM url
                                    WHERE host IS NOT NULL GROUP BY host)
        SELECT {{group}}, count(DISTINCT r.entity_id)
        FROM hosts h JOIN url u ON u.host = h.host
        JOIN relationship r ON r.target_id = u.id AND r.target_type = 'url'
        WHERE h.service IS NOT NULL AND r.entity_type IN ({', '.join(f"'{t}'" for _, t in STREAMING_ENTITIES)})
          AND {live_entity('r.entity_type', 'r.entity_id')}
        GROUP BY {{group}}"""
    key_of = {table: key for key, table in STREAMING_ENTITIES}
    for service, entity_type, n in db.execute(linked.format(group="h.service, r.entity_type")).fetchall():
        figures["streaming_links"][service][key_of[entity_type]] = n
    for entity_type, n in db.execute(linked.format(group="r.entity_type")).fetchall():
        figures["streaming_links_any"][key_of[entity_type]] = n
    return figures


def compute_stats(db: sqlite_utils.Database, *, current_year: int | None = None) -> dict[str, Any]:
    """Every figure of `mbharvest stats`, as one JSON-ready dict."""
    if current_year is None:
        current_year = datetime.now(timezone.utc).year
    counts = {
        "artists": _count_live(db, "artist"),
        "labels": _count_live(db, "label"),
        "release_groups": _count_live(db, "release_group"),
        "releases": _count_live(db, "release"),
        "recordings": _count_live(db, "recording"),
        "tracks": _scalar(db, f"SELECT count(*) FROM track WHERE release_id NOT IN {_GONE_RELEASES}"),
    }
    isrcs = _isrc_figures(db, current_year)
    with_length = _scalar(db, "SELECT count(*) FROM recording WHERE gone_at IS NULL AND length_ms > 0")
    histogram, length_extras = _length_histogram(db)
    releases_per_year = _per_year(db.execute(
        f"SELECT {year_of('date')}, count(*) FROM release WHERE gone_at IS NULL GROUP BY 1").fetchall())
    return {
        **counts,
        **{key: isrcs[key] for key in ("recording_isrc_pairs", "isrcs_unique", "recordings_with_isrc",
                                       "isrcs_on_multiple_recordings", "recordings_with_multiple_isrcs")},
        "length_histogram": histogram,
        "releases_per_year": releases_per_year,
        "isrc_countries": isrcs["isrc_countries"],
        "recordings_with_length": with_length,
        "recordings_without_length": counts["recordings"] - with_length,
        "length_bin_ms": LENGTH_BIN_MS,
        **length_extras,
        "isrcs_per_recording": {"0": counts["recordings"] - isrcs["recordings_with_isrc"],
                                **isrcs["isrcs_per_recording"]},
        "isrc_reference_years": isrcs["isrc_reference_years"],
        "release_groups_per_year_by_type": _release_groups_by_type(db),
        "coverage": coverage(counts),
        "known_totals_as_of": KNOWN_TOTALS_AS_OF,
        "origin": origin(db),
        **_open_data_figures(db),
    }


@dataclass(frozen=True)
class _Row:
    label: str
    value: str


def format_table(stats: dict[str, Any]) -> str:
    """The figures as a plain-text table for a terminal."""

    def number(n: int) -> str:
        return f"{n:,}"

    sections: list[tuple[str, list[_Row]]] = []
    catalogue = [_Row(key.replace("_", " "), number(stats[key]) + (
        f"   ({percent(stats[key], KNOWN_TOTALS[key])} of MusicBrainz's {KNOWN_TOTALS[key] / 1e6:.2f} M, "
        f"{KNOWN_TOTALS_AS_OF})" if key in KNOWN_TOTALS else ""))
        for key in ("artists", "labels", "release_groups", "releases", "recordings", "tracks")]
    sections.append((f"Catalogue ({stats['origin']['kind']})", catalogue))
    sections.append(("ISRCs", [
        _Row("recording-ISRC pairs", number(stats["recording_isrc_pairs"])),
        _Row("distinct ISRCs", number(stats["isrcs_unique"])),
        _Row("recordings with an ISRC", f"{number(stats['recordings_with_isrc'])}   "
                                         f"({percent(stats['recordings_with_isrc'], stats['recordings'])})"),
        _Row("ISRCs on several recordings", number(stats["isrcs_on_multiple_recordings"])),
        _Row("recordings with several ISRCs", number(stats["recordings_with_multiple_isrcs"])),
        _Row("top countries", ", ".join(f"{c} {number(n)}" for c, n in list(stats["isrc_countries"].items())[:8])
             or "-"),
    ]))
    sections.append(("Recording lengths", [
        _Row("with a known length", number(stats["recordings_with_length"])),
        _Row("without", number(stats["recordings_without_length"])),
        _Row("30 minutes or longer", number(stats["length_over_dense_limit"]["count"])),
        _Row("peaks (5-second bins)", ", ".join(p["centre"] for p in stats["length_peaks"]) or "-"),
    ]))
    linked = [(service, counts) for service, counts in stats["streaming_links"].items() if any(counts.values())]
    sections.append(("Works and links to streaming services", [
        _Row("works", number(stats["works"])),
        _Row("distinct ISWCs", number(stats["work_iswcs_unique"])),
        _Row("recordings performing a work", f"{number(stats['recordings_with_work'])}   "
                                               f"({percent(stats['recordings_with_work'], stats['recordings'])})"),
        *[_Row(service, "   ".join(f"{number(counts[key])} {key}" for key, _ in STREAMING_ENTITIES))
          for service, counts in linked],
    ] + ([] if linked else [_Row("streaming links", "-")])))
    years = list(stats["releases_per_year"].items())
    year_rows = [_Row("", "".join(f"{y:>8} {number(n):>9}" for y, n in years[i:i + 6]))
                 for i in range(0, len(years), 6)]
    sections.append(("Releases per year", year_rows or [_Row("", "-")]))
    width = max((len(row.label) for _, rows in sections for row in rows), default=0)
    lines = []
    for title, rows in sections:
        lines += ["", title, "-" * len(title)]
        lines += [f"{row.label:<{width}}  {row.value}" if row.label else row.value for row in rows]
    return "\n".join(lines[1:])


def stats_json(stats: dict[str, Any]) -> str:
    return json.dumps(stats, indent=2, ensure_ascii=False)
