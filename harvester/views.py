"""Researcher views, and the summary tables that keep them fast at full size.

Every view gives the same rows in SQLite and through DuckDB's SQLite scanner
(`ATTACH 'db' (TYPE sqlite)`), which binds a view's SQL in DuckDB's own
dialect. So the views use only what both engines read alike: no `/` (DuckDB
divides integers into floats; bins are `x - x % n`), no `printf`, no
`NOT IN (SELECT ...)`, no `strftime`, casts spelled out before `||`, and an
ordered list only as `group_concat` over an `ORDER BY ... LIMIT` subquery
(DuckDB keeps that order; without the LIMIT it does not).

A view that aggregates a whole table (36 M recordings at full size) would
scan it on every read; those views read summary tables instead: a count per
key (5-second length bin, release year, ...), kept by triggers in the same
transaction as every write to the source table, whoever writes it (upsert,
child-set replace, gone marking, a hand-written UPDATE). A bulk load drops
the triggers with the table's indexes; `rebuild_summaries` recounts what it
loaded (store.finish_bulk_load). Triggers and the rebuild run only in
SQLite, so they may use its dialect freely.
"""

from __future__ import annotations

from dataclasses import dataclass

import sqlite_utils

from harvester.streaming import service_sql

LENGTH_BIN_MS = 5_000
UNKNOWN_LENGTH_BIN = -1  # summary_recording_length's bin for recordings without a known length
LIST_LIMIT = 1_000  # entries an ordered list column (isrcs, recording_ids) shows at most


def year_of(column: str) -> str:
    """SQL: the 4-digit year of a (possibly partial) date, or 'unknown'."""
    return (f"CASE WHEN {column} GLOB '[0-9][0-9][0-9][0-9]*' THEN substr({column}, 1, 4) "
            f"ELSE 'unknown' END")


def length_bin_of(column: str) -> str:
    """SQL (SQLite only): the 5-second bin of a length in ms, or the unknown bin."""
    return f"CASE WHEN {column} > 0 THEN {column} / {LENGTH_BIN_MS} ELSE {UNKNOWN_LENGTH_BIN} END"


@dataclass(frozen=True)
class Counter:
    """A summary table counting the live rows of `source` per key.

    `key` maps each key column to an SQL expression of a source row written
    with `{row}` (the triggers put `new` or `old` there); `live` says which
    rows count; a row moves between keys when one of `watched` changes."""

    table: str
    source: str
    key: dict[str, str]
    count: str
    watched: tuple[str, ...]
    live: str = "{row}.gone_at IS NULL"
    description: str = ""

    def keys_of(self, row: str) -> list[str]:
        return [expression.format(row=row) for expression in self.key.values()]

    def live_for(self, row: str) -> str:
        return self.live.format(row=row)

    def create_sql(self) -> str:
        columns = ", ".join(f"[{name}] {'INTEGER' if name == 'bin' else 'TEXT'} NOT NULL" for name in self.key)
        return (f"CREATE TABLE IF NOT EXISTS [{self.table}] ({columns}, [{self.count}] INTEGER NOT NULL, "
                f"PRIMARY KEY ({', '.join(self.key)}))")

    def _add(self, row: str, where: str) -> str:
        listed = ", ".join(f"[{name}]" for name in self.key)
        return (f"INSERT INTO [{self.table}] ({listed}, [{self.count}]) "
                f"SELECT {', '.join(self.keys_of(row))}, 1 WHERE {where} "
                f"ON CONFLICT ({listed}) DO UPDATE SET [{self.count}] = [{self.count}] + 1;")

    def _remove(self, row: str, where: str) -> str:
        match = " AND ".join(f"[{name}] = {value}" for name, value in zip(self.key, self.keys_of(row)))
        return f"UPDATE [{self.table}] SET [{self.count}] = [{self.count}] - 1 WHERE {match} AND {where};"

    def triggers(self) -> dict[str, str]:
        prefix = f"{self.table}_{self.source}"
        # a row moves when its key or its liveness changes; any other update (a new fetched_at) is skipped
        moved = " OR ".join([f"({old}) IS NOT ({new})" for old, new in zip(self.keys_of("old"), self.keys_of("new"))]
                            + [f"({self.live_for('old')}) IS NOT ({self.live_for('new')})"])
        return {
            f"{prefix}_ai": (f"CREATE TRIGGER [{prefix}_ai] AFTER INSERT ON [{self.source}] "
                             f"WHEN {self.live_for('new')} BEGIN {self._add('new', 'true')} END"),
            f"{prefix}_ad": (f"CREATE TRIGGER [{prefix}_ad] AFTER DELETE ON [{self.source}] "
                             f"WHEN {self.live_for('old')} BEGIN {self._remove('old', 'true')} END"),
            f"{prefix}_au": (f"CREATE TRIGGER [{prefix}_au] AFTER UPDATE OF {', '.join(self.watched)} "
                             f"ON [{self.source}] WHEN ({moved}) "
                             f"BEGIN {self._remove('old', self.live_for('old'))} "
                             f"{self._add('new', self.live_for('new'))} END"),
        }

    def rebuild_sql(self) -> list[str]:
        listed = ", ".join(f"[{name}]" for name in self.key)
        keys = ", ".join(self.keys_of("r"))
        return [f"DELETE FROM [{self.table}]",
                f"INSERT INTO [{self.table}] ({listed}, [{self.count}]) SELECT {keys}, count(*) "
                f"FROM [{self.source}] AS r WHERE {self.live_for('r')} GROUP BY {keys}"]


def gone(row: str) -> str:
    """SQL: the row is marked gone (`gone_at IS NOT NULL`), in a form the
    planner answers from a gone_at index instead of a scan of the table: a
    TEXT column holds only NULL, text and blobs, and every text or blob is
    >= ''."""
    return f"{row}.gone_at >= ''"


@dataclass(frozen=True)
class PairCounter(Counter):
    """summary_isrc: a pair counts while its recording is not marked gone.
    The recount counts every pair (one ordered scan of the (isrc,
    recording_id) index), then takes away the pairs of gone recordings (few,
    found through recording's gone_at index) and drops ISRCs left at none.
    Asking each pair whether its recording is gone costs a random lookup
    into recording per pair, the recount's largest part at a million
    release lines."""

    def rebuild_sql(self) -> list[str]:
        gone_pairs = f"FROM recording g JOIN recording_isrc p ON p.recording_id = g.id WHERE {gone('g')}"
        summary, count = f"[{self.table}]", f"[{self.count}]"
        return [f"DELETE FROM {summary}",
                f"INSERT INTO {summary} (isrc, {count}) SELECT isrc, count(*) FROM [{self.source}] GROUP BY isrc",
                f"UPDATE {summary} SET {count} = {count} - (SELECT count(*) {gone_pairs} AND p.isrc = {summary}.isrc) "
                f"WHERE isrc IN (SELECT p.isrc {gone_pairs})",
                f"DELETE FROM {summary} WHERE {count} = 0 AND isrc IN (SELECT p.isrc {gone_pairs})"]


_PAIR_LIVE = ("NOT EXISTS (SELECT 1 FROM recording g WHERE g.id = {row}.recording_id "
              "AND g.gone_at IS NOT NULL)")

# In rebuild order: summary_isrc_country counts rows of summary_isrc.
COUNTERS: tuple[Counter, ...] = (
    Counter("summary_recording_length", "recording", {"bin": length_bin_of("{row}.length_ms")}, "recordings",
            ("length_ms", "gone_at"),
            description=(f"Recordings not marked gone per 5-second length bin (bin = length_ms / {LENGTH_BIN_MS}; "
                         f"{UNKNOWN_LENGTH_BIN} = no known length). Kept by triggers; read it through the view "
                         "recording_length_histogram.")),
    Counter("summary_release_year", "release", {"year": year_of("{row}.date")}, "releases", ("date", "gone_at"),
            description="Releases not marked gone per year of release.date ('unknown' without one). Kept by "
                        "triggers; read it through the view releases_per_year."),
    Counter("summary_release_group_year", "release_group",
            {"year": year_of("{row}.first_release_date"), "primary_type": "coalesce({row}.primary_type, '(none)')"},
            "release_groups", ("first_release_date", "primary_type", "gone_at"),
            description="Release groups not marked gone per year of first_release_date and primary type. Kept by "
                        "triggers; read it through the view release_groups_per_year."),
    PairCounter("summary_isrc", "recording_isrc", {"isrc": "{row}.isrc"}, "recordings", ("recording_id", "isrc"),
            live=_PAIR_LIVE,
            description="Per ISRC, its recordings not marked gone (0 once all are gone). Kept by triggers on "
                        "recording_isrc and recording; read it through the view isrc_summary."),
    Counter("summary_isrc_country", "summary_isrc",
            {"country": "substr({row}.isrc, 1, 2)", "yy": "substr({row}.isrc, 6, 2)"}, "isrcs",
            ("recordings", "isrc"), live="{row}.recordings > 0",
            description="Distinct ISRCs with a recording not marked gone, per country code (characters 1-2) and "
                        "year of reference (characters 6-7). Kept by triggers on summary_isrc; read it through "
                        "the view isrc_countries."),
)


def _pairs_of(recording: str, change: str) -> str:
    """One statement moving the summary_isrc count of every ISRC of a recording."""
    if change == "+1":
        return ("INSERT INTO summary_isrc (isrc, recordings) SELECT isrc, 1 FROM recording_isrc "
                f"WHERE recording_id = {recording}.id ON CONFLICT (isrc) DO UPDATE SET recordings = recordings + 1;")
    return ("UPDATE summary_isrc SET recordings = recordings - 1 WHERE isrc IN "
            f"(SELECT isrc FROM recording_isrc WHERE recording_id = {recording}.id);")


# A pair counts while its recording is not marked gone, so a recording that
# becomes gone (or is inserted gone, or deleted while gone) moves its pairs.
PAIR_LIVENESS_TRIGGERS: dict[str, str] = {
    "summary_isrc_recording_ai": ("CREATE TRIGGER [summary_isrc_recording_ai] AFTER INSERT ON recording "
                                  f"WHEN new.gone_at IS NOT NULL BEGIN {_pairs_of('new', '-1')} END"),
    "summary_isrc_recording_ad": ("CREATE TRIGGER [summary_isrc_recording_ad] AFTER DELETE ON recording "
                                  f"WHEN old.gone_at IS NOT NULL BEGIN {_pairs_of('old', '+1')} END"),
    # old's pairs come back if old was gone; new's go if new is gone (also right when id changes)
    "summary_isrc_recording_au": (
        "CREATE TRIGGER [summary_isrc_recording_au] AFTER UPDATE OF id, gone_at ON recording "
        "WHEN old.id IS NOT new.id OR (old.gone_at IS NULL) <> (new.gone_at IS NULL) BEGIN "
        "INSERT INTO summary_isrc (isrc, recordings) SELECT isrc, 1 FROM recording_isrc "
        "WHERE recording_id = old.id AND old.gone_at IS NOT NULL "
        "ON CONFLICT (isrc) DO UPDATE SET recordings = recordings + 1; "
        "UPDATE summary_isrc SET recordings = recordings - 1 WHERE new.gone_at IS NOT NULL AND isrc IN "
        "(SELECT isrc FROM recording_isrc WHERE recording_id = new.id); END"),
}


def summary_triggers() -> dict[str, str]:
    triggers = {name: sql for counter in COUNTERS for name, sql in counter.triggers().items()}
    return {**triggers, **PAIR_LIVENESS_TRIGGERS}


SUMMARY_TABLES = tuple(counter.table for counter in COUNTERS)
_ISRC_SOURCES = {"recording_isrc", "recording"}


def rebuild_summaries(db: sqlite_utils.Database, tables: set[str] | None = None) -> list[str]:
    """Recount the summaries of these source tables (all when None) from the
    rows themselves; returns the summary tables recounted. The summary
    triggers are recreated from their current definitions on the way (none
    fires during the recount). Runs inside the caller's transaction."""
    affected = set()
    for counter in COUNTERS:
        sources = _ISRC_SOURCES if counter.table == "summary_isrc" else {counter.source}
        if tables is None or sources & tables or counter.source in affected:
            affected.add(counter.table)
    if not affected:
        return []
    triggers = summary_triggers()
    for name in triggers:
        db.execute(f"DROP TRIGGER IF EXISTS [{name}]")
    for counter in COUNTERS:
        if counter.table in affected:
            for sql in counter.rebuild_sql():
                db.execute(sql)
    for sql in triggers.values():
        db.execute(sql)
    return [counter.table for counter in COUNTERS if counter.table in affected]


def create_summaries(db: sqlite_utils.Database) -> None:
    for counter in COUNTERS:
        db.execute(counter.create_sql())
    rebuild_summaries(db)


def _ordered_list(column: str, table: str, where: str) -> str:
    return (f"(SELECT group_concat({column}, ' ') FROM (SELECT x.{column} FROM {table} x WHERE {where} "
            f"ORDER BY x.{column} LIMIT {LIST_LIMIT}))")


_MINUTES = "CAST(CAST((r.length_ms - r.length_ms % 60000) / 60000 AS INTEGER) AS TEXT)"
_SECONDS = "substr(CAST(CAST(100 + (r.length_ms % 60000 - r.length_ms % 1000) / 1000 AS INTEGER) AS TEXT), 2)"
_CURRENT_YY = "CAST(substr(CAST(CURRENT_DATE AS TEXT), 3, 2) AS INTEGER)"
_YY = "CAST(substr(s.isrc, 6, 2) AS INTEGER)"

# Rows marked gone are left out, as in `mbharvest stats`.
VIEWS: dict[str, str] = {
    "recording_with_isrcs": f"""
        SELECT r.id, r.title, r.artist_credit, r.length_ms,
               CASE WHEN r.length_ms > 0 THEN {_MINUTES} || ':' || {_SECONDS} END AS length,
               r.first_release_date, r.video, r.disambiguation,
               (SELECT count(*) FROM recording_isrc ri WHERE ri.recording_id = r.id) AS isrc_count,
               {_ordered_list('isrc', 'recording_isrc', 'x.recording_id = r.id')} AS isrcs
        FROM recording r WHERE r.gone_at IS NULL""",
    "releases_per_year": """
        SELECT year, releases FROM summary_release_year WHERE releases > 0 ORDER BY year""",
    "release_groups_per_year": """
        SELECT year, primary_type, release_groups FROM summary_release_group_year
        WHERE release_groups > 0 ORDER BY year, primary_type""",
    "isrc_summary": f"""
        SELECT s.isrc, substr(s.isrc, 1, 2) AS country, substr(s.isrc, 3, 3) AS registrant,
               {_YY} + CASE WHEN {_YY} <= {_CURRENT_YY} THEN 2000 ELSE 1900 END AS reference_year,
               s.recordings,
               {_ordered_list('recording_id', 'recording_isrc',
                              'x.isrc = s.isrc AND ' + _PAIR_LIVE.format(row='x'))} AS recording_ids
        FROM summary_isrc s WHERE s.recordings > 0""",
    "isrc_countries": """
        SELECT country, sum(isrcs) AS isrcs FROM summary_isrc_country GROUP BY country
        HAVING sum(isrcs) > 0 ORDER BY 2 DESC, 1""",
    "recording_length_histogram": f"""
        SELECT bin * {LENGTH_BIN_MS} AS start_ms, bin * {LENGTH_BIN_MS} + {LENGTH_BIN_MS} AS end_ms, recordings
        FROM summary_recording_length WHERE bin >= 0 AND recordings > 0 ORDER BY bin""",
}


# Every table of an entity type that can be marked gone (the JSON dumps' types).
GONE_TABLES = ("area", "artist", "event", "instrument", "label", "place", "recording", "release", "release_group",
               "series", "work")


def live_entity(type_column: str, id_column: str) -> str:
    """SQL: the entity named by a type column and an id column is not marked
    gone (an entity not stored at all counts as live)."""
    return " AND ".join(f"NOT EXISTS (SELECT 1 FROM {table} g WHERE {type_column} = '{table}' "
                        f"AND g.id = {id_column} AND g.gone_at IS NOT NULL)" for table in GONE_TABLES)


# Migration 0011's views, over the relationship and url tables.
OPEN_DATA_VIEWS: dict[str, str] = {
    # from the works, through the relationships' target index
    "recording_work": """
        SELECT r.entity_id AS recording_id, r.target_id AS work_id, r.type, r.attributes
        FROM work w JOIN relationship r ON r.target_id = w.id AND r.target_type = 'work' AND r.entity_type = 'recording'
        WHERE w.gone_at IS NULL
          AND NOT EXISTS (SELECT 1 FROM recording g WHERE g.id = r.entity_id AND g.gone_at IS NOT NULL)""",
    # from the URLs (linked to: the target index; linking, url -> work: the key)
    "entity_url": f"""
        SELECT r.entity_type, r.entity_id, r.type, u.id AS url_id, u.resource, u.host,
               {service_sql('u.host')} AS service
        FROM url u JOIN relationship r ON r.target_id = u.id AND r.target_type = 'url'
        WHERE {live_entity('r.entity_type', 'r.entity_id')}
        UNION ALL
        SELECT r.target_type, r.target_id, r.type, u.id, u.resource, u.host, {service_sql('u.host')}
        FROM url u JOIN relationship r ON r.entity_id = u.id AND r.entity_type = 'url'
        WHERE {live_entity('r.target_type', 'r.target_id')}""",
}
ALL_VIEWS: dict[str, str] = {**VIEWS, **OPEN_DATA_VIEWS}


def create_views(db: sqlite_utils.Database, views: dict[str, str] = VIEWS) -> None:
    for name, sql in views.items():
        db.create_view(name, sql.strip(), replace=True)
