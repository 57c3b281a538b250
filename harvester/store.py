"""The SQLite database: its shape, opening it safely, and writing normalized rows.

The shape is declared once (TABLES_V1, then what later migrations add:
TABLES_V11 and COLUMNS_V11 for issue 18's open data) and applied through
sqlite-utils Migrations, so later versions change it by adding migrations,
never by editing what an existing database was built from. Writes are upserts of the
columns given (INSERT ... ON CONFLICT DO UPDATE): a column another command
wrote is never blanked. The caller owns the transaction (`with db.atomic():`)
so a page and its bookmark commit together.
"""

from __future__ import annotations

import functools
import operator
import os
import sqlite3
from collections import defaultdict
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator

import orjson
import sqlite_utils
from sqlite_utils.migrations import Migrations

from harvester.errors import DatabaseError, UsageError
from harvester.normalize import ENTITY_TYPES, TABLE_OF, Normalized
from harvester.views import OPEN_DATA_VIEWS, create_summaries, create_views, rebuild_summaries

_STAMP = {"fetched_at": str, "source": str}

# table -> columns (name -> type), primary key, foreign keys, full-text columns.
# Frozen: a later schema change is a new migration below, not an edit here.
TABLES_V1: dict[str, dict[str, Any]] = {
    "artist": {
        "columns": {"id": str, "name": str, "sort_name": str, "type": str, "country": str,
                    "disambiguation": str, "gender": str, "begin_date": str, "end_date": str,
                    "ended": int, "gone_at": str, **_STAMP},
        "pk": "id", "fts": ["name", "sort_name"],
    },
    "label": {
        "columns": {"id": str, "name": str, "sort_name": str, "type": str, "country": str,
                    "label_code": int, "disambiguation": str, "begin_date": str, "end_date": str,
                    "ended": int, "gone_at": str, **_STAMP},
        "pk": "id", "fts": ["name", "sort_name"],
    },
    "release_group": {
        "columns": {"id": str, "title": str, "primary_type": str, "secondary_types": str,
                    "first_release_date": str, "artist_credit": str, "disambiguation": str,
                    "gone_at": str, **_STAMP},
        "pk": "id", "fts": ["title", "artist_credit"],
    },
    "recording": {
        "columns": {"id": str, "title": str, "length_ms": int, "first_release_date": str, "video": int,
                    "disambiguation": str, "artist_credit": str, "gone_at": str, **_STAMP},
        "pk": "id", "fts": ["title", "artist_credit"],
    },
    "release": {
        "columns": {"id": str, "title": str, "status": str, "date": str, "country": str, "barcode": str,
                    "release_group_id": str, "artist_credit": str, "disambiguation": str,
                    "packaging": str, "gone_at": str, **_STAMP},
        "pk": "id", "fts": ["title", "artist_credit"],
        "foreign_keys": [("release_group_id", "release_group", "id")],
    },
    "medium": {
        "columns": {"release_id": str, "position": int, "format": str, "track_count": int, "title": str,
                    **_STAMP},
        "pk": ("release_id", "position"),
        "foreign_keys": [("release_id", "release", "id")],
    },
    "track": {
        "columns": {"id": str, "release_id": str, "medium_position": int, "position": int, "number": str,
                    "title": str, "length_ms": int, "recording_id": str, "artist_credit": str, **_STAMP},
        "pk": "id",
        "foreign_keys": [("release_id", "release", "id"), ("recording_id", "recording", "id")],
    },
    "recording_isrc": {
        "columns": {"recording_id": str, "isrc": str, **_STAMP},
        "pk": ("recording_id", "isrc"),
        "foreign_keys": [("recording_id", "recording", "id")],
    },
    "release_label": {
        "columns": {"release_id": str, "label_id": str, "catalog_number": str, **_STAMP},
        "pk": ("release_id", "label_id", "catalog_number"),
        "foreign_keys": [("release_id", "release", "id"), ("label_id", "label", "id")],
    },
    "artist_credit_name": {
        "columns": {"entity_type": str, "entity_id": str, "position": int, "artist_id": str, "name": str,
                    "join_phrase": str, **_STAMP},
        "pk": ("entity_type", "entity_id", "position"),
        "foreign_keys": [("artist_id", "artist", "id")],
    },
    "mbid_redirect": {
        "columns": {"old_id": str, "new_id": str, "entity_type": str, "recorded_at": str},
        "pk": "old_id",
    },
    "harvest_run": {
        "columns": {"id": int, "command": str, "args": str, "started_at": str, "finished_at": str,
                    "status": str, "requests": int, "entities_written": int, "new": int, "updated": int,
                    "unchanged": int, "gone": int, "error": str, "pid": int},
        "pk": "id",
    },
    "document": {
        "columns": {"entity_type": str, "entity_id": str, "json": str, "licence": str, **_STAMP},
        "pk": ("entity_type", "entity_id"),
    },
    "tag": {
        "columns": {"entity_type": str, "entity_id": str, "kind": str, "name": str, "count": int,
                    "licence": str, **_STAMP},
        "pk": ("entity_type", "entity_id", "kind", "name"),
    },
    "rating": {
        "columns": {"entity_type": str, "entity_id": str, "kind": str, "value": float, "votes_count": int,
                    "licence": str, **_STAMP},
        "pk": ("entity_type", "entity_id", "kind"),
    },
    "annotation": {
        "columns": {"entity_type": str, "entity_id": str, "text": str, "licence": str, **_STAMP},
        "pk": ("entity_type", "entity_id"),
    },
}

# Indexes beyond the primary keys: every *_id column not leading a key, and
# what the statistics group by.
INDEXES_V1: list[tuple[str, tuple[str, ...]]] = [
    ("release", ("release_group_id",)),
    ("track", ("release_id",)),
    ("track", ("recording_id",)),
    ("recording_isrc", ("isrc",)),
    ("release_label", ("label_id",)),
    ("artist_credit_name", ("artist_id",)),
    ("artist_credit_name", ("entity_id",)),
    ("mbid_redirect", ("new_id",)),
    ("document", ("entity_id",)),
    ("tag", ("entity_id",)),
    ("rating", ("entity_id",)),
    ("annotation", ("entity_id",)),
]

# The tables whose rows `entities_written` counts (what harvest commands fetch).
ENTITY_TABLES = tuple(TABLE_OF[entity] for entity in ENTITY_TYPES)

# One row per dump file imported: lines_committed is the resume position,
# written in the same transaction as the rows of those lines.
DUMP_IMPORT_COLUMNS: dict[str, type] = {
    "entity_type": str, "dump_timestamp": str, "size_bytes": int, "path": str, "status": str,
    "lines_committed": int, "lines_skipped": int, "entities_written": int,
    "started_at": str, "updated_at": str, "finished_at": str,
}

MIGRATIONS = Migrations("mbharvest")


def create_tables(db: sqlite_utils.Database, tables: dict[str, dict[str, Any]]) -> None:
    """Create declared tables (columns, primary key, foreign keys) that do not exist yet."""
    for name, spec in tables.items():
        db[name].create(spec["columns"], pk=spec["pk"], foreign_keys=spec.get("foreign_keys", ()),
                        if_not_exists=True)


@MIGRATIONS(name="0001_initial")
def _initial(db: sqlite_utils.Database) -> None:
    create_tables(db, TABLES_V1)
    for table, columns in INDEXES_V1:
        db[table].create_index(columns, if_not_exists=True)
    for name, spec in TABLES_V1.items():
        if spec.get("fts"):
            db[name].enable_fts(spec["fts"], create_triggers=True, replace=True)


@MIGRATIONS(name="0002_dump_import")
def _dump_import(db: sqlite_utils.Database) -> None:
    """Where each dump import stands (so an interrupted one resumes), and
    full-text update triggers that fire only when an indexed column changes
    (a refreshed fetched_at or source no longer rewrites the index)."""
    db["dump_import"].create(DUMP_IMPORT_COLUMNS, pk=("entity_type", "dump_timestamp", "size_bytes"),
                             if_not_exists=True)
    for name, spec in TABLES_V1.items():
        if spec.get("fts"):
            _full_text_update_trigger(db, name, spec["fts"])


def _full_text_update_trigger(db: sqlite_utils.Database, name: str, columns: list[str]) -> None:
    """The full-text index follows an update only when an indexed column changes."""
    listed = ", ".join(f'"{column}"' for column in columns)
    old_values = ", ".join(f'old."{column}"' for column in columns)
    new_values = ", ".join(f'new."{column}"' for column in columns)
    db.execute(f'DROP TRIGGER IF EXISTS "{name}_au"')
    db.execute(
        f'CREATE TRIGGER "{name}_au" AFTER UPDATE OF {listed} ON "{name}" BEGIN\n'
        f'  INSERT INTO "{name}_fts" ("{name}_fts", rowid, {listed}) VALUES(\'delete\', old.rowid, {old_values});\n'
        f'  INSERT INTO "{name}_fts" (rowid, {listed}) VALUES (new.rowid, {new_values});\nEND')


# Resumable harvest state: one row per (plan, step), written in the same
# transaction as the page it follows.
HARVEST_STATE = {
    "harvest_bookmark": {
        "columns": {"plan": str, "step": str, "run_id": int, "next_offset": int, "total": int, "done": int,
                    "resolved_id": str, "status": str, "updated_at": str},
        "pk": ("plan", "step"),
    },
}


@MIGRATIONS(name="0004_harvest_state")
def _harvest_state(db: sqlite_utils.Database) -> None:
    create_tables(db, HARVEST_STATE)
    db["harvest_bookmark"].create_index(["run_id"], if_not_exists=True)
    db["harvest_bookmark"].create_index(["resolved_id"], if_not_exists=True)


# The keys (plans) of each harvest command, kept until every one is done, so
# that a run interrupted before reaching some keys leaves them on record:
# refresh finishes them first, and rerunning the command continues.
HARVEST_PLANS = {
    "harvest_plan": {
        "columns": {"run_id": int, "plan": str, "position": int, "done": int},
        "pk": ("run_id", "plan"),
    },
}


@MIGRATIONS(name="0009_harvest_plan")
def _harvest_plan(db: sqlite_utils.Database) -> None:
    create_tables(db, HARVEST_PLANS)
    db["harvest_plan"].create_index(["plan"], if_not_exists=True)


# Migration 0003's researcher views (0007 replaces them: harvester/views.py)
# and covering indexes for the statistics' scans.
VIEWS_V3: dict[str, str] = {
    "recording_with_isrcs": """
        SELECT r.id, r.title, r.artist_credit, r.length_ms,
               CASE WHEN r.length_ms > 0
                    THEN printf('%d:%02d', r.length_ms / 60000, (r.length_ms / 1000) % 60) END AS length,
               r.first_release_date, r.video, r.disambiguation,
               (SELECT count(*) FROM recording_isrc ri WHERE ri.recording_id = r.id) AS isrc_count,
               (SELECT group_concat(isrc, ' ') FROM
                   (SELECT isrc FROM recording_isrc ri WHERE ri.recording_id = r.id ORDER BY isrc)) AS isrcs
        FROM recording r WHERE r.gone_at IS NULL""",
    "releases_per_year": """
        SELECT CASE WHEN date GLOB '[0-9][0-9][0-9][0-9]*' THEN substr(date, 1, 4) ELSE 'unknown' END AS year,
               count(*) AS releases
        FROM release WHERE gone_at IS NULL GROUP BY 1 ORDER BY 1""",
    "release_groups_per_year": """
        SELECT CASE WHEN first_release_date GLOB '[0-9][0-9][0-9][0-9]*'
                    THEN substr(first_release_date, 1, 4) ELSE 'unknown' END AS year,
               coalesce(primary_type, '(none)') AS primary_type, count(*) AS release_groups
        FROM release_group WHERE gone_at IS NULL GROUP BY 1, 2 ORDER BY 1, 2""",
    "isrc_summary": """
        SELECT ri.isrc, substr(ri.isrc, 1, 2) AS country, substr(ri.isrc, 3, 3) AS registrant,
               CAST(substr(ri.isrc, 6, 2) AS INTEGER)
                 + CASE WHEN CAST(substr(ri.isrc, 6, 2) AS INTEGER) <= CAST(strftime('%Y', 'now') AS INTEGER) % 100
                        THEN 2000 ELSE 1900 END AS reference_year,
               count(*) AS recordings, group_concat(ri.recording_id, ' ') AS recording_ids
        FROM recording_isrc ri
        WHERE ri.recording_id NOT IN (SELECT id FROM recording WHERE gone_at IS NOT NULL)
        GROUP BY ri.isrc""",
    "isrc_countries": """
        SELECT country, count(*) AS isrcs FROM isrc_summary GROUP BY country ORDER BY isrcs DESC, country""",
    "recording_length_histogram": """
        SELECT (length_ms / 5000) * 5000 AS start_ms, (length_ms / 5000) * 5000 + 5000 AS end_ms,
               count(*) AS recordings
        FROM recording WHERE gone_at IS NULL AND length_ms > 0 GROUP BY 1 ORDER BY 1""",
}
INDEXES_V3: list[tuple[str, tuple[str, ...]]] = [
    ("artist", ("gone_at",)),
    ("label", ("gone_at",)),
    ("release_group", ("gone_at", "primary_type", "first_release_date")),
    ("release", ("gone_at", "date")),
    ("recording", ("gone_at", "length_ms")),
    ("recording_isrc", ("isrc", "recording_id")),
]


@MIGRATIONS(name="0003_views")
def _views(db: sqlite_utils.Database) -> None:
    for table, columns in INDEXES_V3:
        db[table].create_index(columns, if_not_exists=True)
    for name, sql in VIEWS_V3.items():
        db.create_view(name, sql.strip(), replace=True)


# A bulk load, as mbharvest 0.1.0 ran dump imports into empty tables, dropped
# those tables' secondary indexes and full-text triggers, recording each
# dropped object's SQL here in the same transaction as the drop; a load that
# died midway is finished by whoever opens the database next. Imports no
# longer do this (they merge in one transaction), but a database left
# mid-load by 0.1.0 must still open whole.
BULK_LOAD_COLUMNS: dict[str, type] = {
    "name": str, "type": str, "table_name": str, "sql": str, "pid": int, "started_at": str,
}


@MIGRATIONS(name="0005_bulk_load")
def _bulk_load(db: sqlite_utils.Database) -> None:
    db["bulk_load"].create(BULK_LOAD_COLUMNS, pk="name", if_not_exists=True)


# Dump imports stage their lines in sorted runs outside the database, then
# merge them in one transaction: `lines_staged` is where reading resumes,
# `stage` the staged chunks (JSON), `changes` what the merge did per table
# (JSON: new, updated, unchanged, deleted). `lines_committed` keeps its
# meaning: the lines whose rows are in the tables.
DUMP_STAGE_COLUMNS: dict[str, type] = {"lines_staged": int, "stage": str, "changes": str}


@MIGRATIONS(name="0006_dump_stage")
def _dump_stage(db: sqlite_utils.Database) -> None:
    existing = db["dump_import"].columns_dict
    for name, kind in DUMP_STAGE_COLUMNS.items():
        if name not in existing:
            db["dump_import"].add_column(name, kind)
    db.execute("UPDATE dump_import SET lines_staged = lines_committed WHERE lines_staged IS NULL")


@MIGRATIONS(name="0007_portable_views")
def _portable_views(db: sqlite_utils.Database) -> None:
    """Views that DuckDB's SQLite scanner reads as SQLite does, over summary
    tables kept by triggers (harvester/views.py), and label_code declared
    TEXT: real codes such as 'SPREC' sit beside the numbers, and a reader
    that trusts the declared type (DuckDB) refused the INTEGER column."""
    for name in VIEWS_V3:
        db.execute(f"DROP VIEW IF EXISTS [{name}]")
    _declare_label_code_text(db)
    create_summaries(db)
    create_views(db)


def _declare_label_code_text(db: sqlite_utils.Database) -> None:
    """Rebuild `label` with label_code TEXT, keeping its rowids (the
    full-text index points at them), indexes and triggers."""
    if db["label"].columns_dict.get("label_code") is str:
        return
    triggers = [row[0] for row in db.execute(
        "SELECT sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'label' AND sql IS NOT NULL")]
    for sql in db["label"].transform_sql(types={"label_code": str}):
        db.execute(sql)
    for sql in triggers:
        db.execute(sql)


@MIGRATIONS(name="0008_browse_rereads")
def _browse_rereads(db: sqlite_utils.Database) -> None:
    """The ledger says how many extra requests browses spent re-reading pages when they came up
    short of their count (items shifted across page boundaries while the catalogue changed), and
    notes what the run's reader should know that is not an error (a browse still short after them)."""
    columns = {column.name for column in db["harvest_run"].columns}
    if "rereads" not in columns:
        db["harvest_run"].add_column("rereads", int)
    if "notes" not in columns:
        db["harvest_run"].add_column("notes", str)


# `mbharvest sync-dumps`: which dump (a server folder, e.g. 20251122-001001)
# is imported how far. One row per archive (its URL and SHA-256, the
# TIMESTAMP inside it once imported) and one per dump (the entity types whose
# deletions have been applied, and when).
DUMP_SYNC: dict[str, dict[str, Any]] = {
    "dump_sync": {
        "columns": {"dump_name": str, "server": str, "rows_before": int, "entities_complete": str,
                    "started_at": str, "completed_at": str},
        "pk": "dump_name",
    },
    "dump_sync_file": {
        "columns": {"dump_name": str, "entity_type": str, "file_name": str, "url": str, "sha256": str,
                    "size_bytes": int, "dump_timestamp": str, "downloaded_at": str, "imported_at": str},
        "pk": ("dump_name", "entity_type"),
    },
}


@MIGRATIONS(name="0010_dump_sync")
def _dump_sync(db: sqlite_utils.Database) -> None:
    for name, spec in DUMP_SYNC.items():
        db[name].create(spec["columns"], pk=spec["pk"], if_not_exists=True)


# Issue 18: the rest of MusicBrainz's open data (migration 0011). Frozen like TABLES_V1.
_GONE_STAMP = {"gone_at": str, **_STAMP}
_LIFE_SPAN = {"begin_date": str, "end_date": str, "ended": int}
TABLES_V11: dict[str, dict[str, Any]] = {
    "area": {
        "columns": {"id": str, "name": str, "sort_name": str, "type": str, "disambiguation": str,
                    "iso_3166_1": str, "iso_3166_2": str, "iso_3166_3": str, **_LIFE_SPAN, **_GONE_STAMP},
        "pk": "id",
    },
    "work": {
        "columns": {"id": str, "title": str, "type": str, "language": str, "disambiguation": str, **_GONE_STAMP},
        "pk": "id",
    },
    "work_iswc": {
        "columns": {"work_id": str, "iswc": str, **_STAMP},
        "pk": ("work_id", "iswc"),
        "foreign_keys": [("work_id", "work", "id")],
    },
    "url": {
        "columns": {"id": str, "resource": str, "host": str, **_STAMP},
        "pk": "id",
    },
    "relationship": {
        "columns": {"entity_type": str, "entity_id": str, "target_type": str, "target_id": str, "link_key": str,
                    "type": str, "type_id": str, "direction": str, "begin_date": str, "end_date": str,
                    "ended": int, "attributes": str, "attribute_values": str, "attribute_credits": str,
                    "entity_credit": str, "target_credit": str, "ordering_key": int, **_STAMP},
        # keyed from its source's MBID, and indexed from its target's (every
        # relationship of an entity is found from either end by its MBID)
        "pk": ("entity_id", "entity_type", "target_type", "target_id", "link_key"),
    },
    "alias": {
        "columns": {"entity_type": str, "entity_id": str, "position": int, "name": str, "sort_name": str,
                    "locale": str, "type": str, "primary": int, **_LIFE_SPAN, **_STAMP},
        "pk": ("entity_type", "entity_id", "position"), "fts": ["name", "sort_name"],
    },
    "release_event": {
        "columns": {"release_id": str, "position": int, "area_id": str, "date": str, **_STAMP},
        "pk": ("release_id", "position"),
        "foreign_keys": [("release_id", "release", "id"), ("area_id", "area", "id")],
    },
    "event": {
        "columns": {"id": str, "name": str, "type": str, "disambiguation": str, "time": str, "cancelled": int,
                    "setlist": str, **_LIFE_SPAN, **_GONE_STAMP},
        "pk": "id",
    },
    "instrument": {
        "columns": {"id": str, "name": str, "type": str, "disambiguation": str, "description": str,
                    **_GONE_STAMP},
        "pk": "id",
    },
    "place": {
        "columns": {"id": str, "name": str, "type": str, "disambiguation": str, "address": str, "area_id": str,
                    "latitude": float, "longitude": float, **_LIFE_SPAN, **_GONE_STAMP},
        "pk": "id",
        "foreign_keys": [("area_id", "area", "id")],
    },
    "series": {
        "columns": {"id": str, "name": str, "type": str, "disambiguation": str, **_GONE_STAMP},
        "pk": "id",
    },
}
# Columns 0011 adds to tables of TABLES_V1 (at their end).
COLUMNS_V11: dict[str, dict[str, type]] = {
    "artist": {"area_id": str, "begin_area_id": str, "end_area_id": str},
    "label": {"area_id": str},
    "release": {"language": str, "script": str},
}
INDEXES_V11: list[tuple[str, tuple[str, ...]]] = [
    ("relationship", ("target_id", "target_type", "entity_type", "entity_id")),
    ("alias", ("entity_id",)),
    ("url", ("host",)),
    ("work_iswc", ("iswc",)),
    ("release_event", ("area_id",)),
    ("place", ("area_id",)),
    ("artist", ("area_id",)),
    ("artist", ("begin_area_id",)),
    ("artist", ("end_area_id",)),
    ("label", ("area_id",)),
]


@MIGRATIONS(name="0011_open_data")
def _open_data(db: sqlite_utils.Database) -> None:
    """Works and ISWCs, relationships and URLs, aliases (full-text), areas,
    release events, language and script, events, instruments, places and
    series; and two values whose format changes, converted in place so that
    no column holds two formats: `secondary_types` from `A; B` to a JSON
    array, `release_label.label_id` from '' (no label) to NULL."""
    create_tables(db, TABLES_V11)
    for table, columns in COLUMNS_V11.items():
        present = {column.name for column in db[table].columns}
        for column, kind in columns.items():
            if column not in present:
                db[table].add_column(column, kind)
    for table, columns in INDEXES_V11:
        db[table].create_index(columns, if_not_exists=True)
    for name, spec in TABLES_V11.items():
        if spec.get("fts"):
            db[name].enable_fts(spec["fts"], create_triggers=True, replace=True)
            _full_text_update_trigger(db, name, spec["fts"])
    db.conn.create_function("mbharvest_types_json", 1, _secondary_types_json, deterministic=True)
    db.execute("UPDATE release_group SET secondary_types = mbharvest_types_json(secondary_types) "
               "WHERE secondary_types IS NOT NULL AND secondary_types NOT LIKE '[%'")
    db.execute("UPDATE release_label SET label_id = NULL WHERE label_id = ''")
    create_views(db, OPEN_DATA_VIEWS)


@MIGRATIONS(name="0012_redundant_isrc_index")
def _redundant_isrc_index(db: sqlite_utils.Database) -> None:
    """0.1.0's index on recording_isrc (isrc) is the leading part of the
    (isrc, recording_id) index 0003 added: it answered nothing the other does
    not, and every dump merge built or kept it up to date."""
    db.execute("DROP INDEX IF EXISTS idx_recording_isrc_isrc")
    db.execute("DELETE FROM bulk_load WHERE name = 'idx_recording_isrc_isrc'")  # a 0.1.0 bulk load left dead


def _secondary_types_json(stored: str) -> str:
    """0.1.0's `Compilation; Live` as the JSON array `["Compilation","Live"]` ('' is `[]`)."""
    return orjson.dumps([part.strip() for part in stored.split(";") if part.strip()]).decode()


# Every table upsert_rows can write, with its key.
PRIMARY_KEYS: dict[str, str | tuple[str, ...]] = {
    name: spec["pk"] for tables in (TABLES_V1, HARVEST_STATE, HARVEST_PLANS, TABLES_V11)
    for name, spec in tables.items()
}
# Every table with a full-text index, and the columns it indexes.
FULL_TEXT: dict[str, list[str]] = {
    name: spec["fts"] for tables in (TABLES_V1, TABLES_V11) for name, spec in tables.items() if spec.get("fts")
}


def ensure_db_shape(db: sqlite_utils.Database) -> None:
    """Bring any database (new or older) to the current shape; idempotent.
    Also finishes a bulk load that a 0.1.0 import left when it died (its
    indexes, triggers and full-text content are rebuilt)."""
    MIGRATIONS.apply(db)
    holders = {row[0] for row in db.execute("SELECT DISTINCT pid FROM bulk_load")}
    if holders and not any(process_alive(pid) for pid in holders):
        with db.atomic():
            finish_bulk_load(db)


def process_alive(pid: int | None) -> bool:
    """Whether another live process has this id (ours does not count: what
    it recorded under its id, a bulk load or a run, either finished or was
    abandoned by an exception)."""
    if pid is None or pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def finish_bulk_load(db: sqlite_utils.Database) -> list[str]:
    """Recreate what a 0.1.0 bulk load dropped (what is already there is
    left) and rebuild the full-text index of every table whose triggers were
    dropped; returns the names recreated. Call inside the caller's transaction."""
    recorded = db.execute("SELECT name, type, table_name, sql FROM bulk_load ORDER BY type, name").fetchall()
    present = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    recreated = []
    for name, _kind, _table, sql in recorded:
        if name not in present:
            db.execute(sql)
            recreated.append(name)
    for table in sorted({table for _, kind, table, _ in recorded if kind == "trigger"}):
        if f"{table}_fts" in present:
            db.execute(f'INSERT INTO "{table}_fts" ("{table}_fts") VALUES (\'rebuild\')')
    if recorded and "summary_isrc" in present:  # the summary triggers were dropped with the rest: recount
        rebuild_summaries(db, {table for _, _, table, _ in recorded})
    db.execute("DELETE FROM bulk_load")
    return recreated


def utc_now() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def open_db(path: str | Path) -> sqlite_utils.Database:
    """Open (creating if needed) the database in WAL mode, at the current shape:
    for commands that write. A file that is not an mbharvest database is
    refused (check_database_file) before anything is written.

    Errors a user can cause (unreadable, read-only, disk full) come back as
    DatabaseError naming the file."""
    path = Path(path)
    check_database_file(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DatabaseError(f"{path}: cannot create its folder ({exc.strerror})") from None
    try:
        # One thread at a time, but not always the opening one: the dump
        # importer commits its batches on a second thread.
        db = sqlite_utils.Database(sqlite3.connect(str(path), check_same_thread=False))
        db.execute("PRAGMA busy_timeout = 30000")
        if db.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            db.enable_wal()
        db.execute("PRAGMA synchronous = NORMAL")
        ensure_db_shape(db)
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(describe_sqlite_error(path, exc)) from None
    return db


# -- opening for reading: never a write, never a file beside the database --

SQLITE_HEADER = b"SQLite format 3\x00"
_WAL_FORMAT = 2  # header byte 18: 1 = rollback journal, 2 = WAL


def _not_sqlite(path: Path) -> UsageError:
    return UsageError(f"{path} is not an SQLite database (use another --db, or move the file away)")


def _header(path: Path) -> bytes:
    try:
        with open(path, "rb") as fh:
            return fh.read(100)
    except OSError as exc:
        raise DatabaseError(f"{path}: cannot read the database file ({exc.strerror})") from None


def _read_only_uris(path: Path, header: bytes | None) -> list[str]:
    """How to read `path` without writing it or leaving anything beside it,
    in order of preference.

    A rollback-journal file: mode=ro (shared locks only, creates nothing). A
    WAL file whose -wal is beside it (a writer is at work, or died): mode=ro,
    which sees the committed frames. A WAL file alone in a writable place:
    mode=rw with query_only, because SQLite creates -wal and -shm for any
    WAL reader and only a read-write connection removes them when it closes;
    nothing is written (query_only) and the journal mode stays. A file or
    folder that cannot be written (read-only media, a write-protected copy):
    immutable=1, which reads the file as it is, takes no lock and creates
    nothing. `header` is None when it was not read (a -wal is beside)."""
    base = path.resolve().as_uri()
    writable = os.access(path, os.W_OK) and os.access(path.resolve().parent, os.W_OK)
    immutable = f"{base}?mode=ro&immutable=1"
    if header is not None and len(header) > 18 and header[18] != _WAL_FORMAT:
        return [f"{base}?mode=ro" if writable else immutable]
    if Path(f"{path}-wal").exists():
        return [f"{base}?mode=ro"] + ([] if writable else [immutable])
    return [f"{base}?mode=rw" if writable else immutable]


def _connect_read_only(path: Path, header: bytes | None) -> sqlite3.Connection:
    """A connection that can only read (autocommit, so a caller can hold one
    read transaction over many queries with BEGIN ... COMMIT)."""
    uris = _read_only_uris(path, header)
    for attempt, uri in enumerate(uris, start=1):
        try:
            conn = sqlite3.connect(uri, uri=True, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA query_only = ON")
            conn.execute("PRAGMA busy_timeout = 30000")
            conn.execute("SELECT count(*) FROM sqlite_master").fetchone()
            return conn
        except sqlite3.DatabaseError as exc:
            if "not a database" in str(exc):
                raise _not_sqlite(path) from None
            if attempt == len(uris):
                raise DatabaseError(describe_sqlite_error(path, exc)) from None
    raise AssertionError("unreachable")


def _identify(conn: sqlite3.Connection) -> str:
    """"mbharvest" (our migrations are recorded), "empty" (no schema at all,
    or only the migrations table of a creation that died before its first
    migration), or "foreign" (anything else)."""
    # Objects named by the table they belong to: the migrations table's own index says nothing of whose file it is.
    names = {row[0] for row in conn.execute("SELECT DISTINCT tbl_name FROM sqlite_master")}
    migrations = Migrations.migrations_table
    if migrations in names:
        sets = {row[0] for row in conn.execute(f"SELECT DISTINCT migration_set FROM [{migrations}]")}
        if MIGRATIONS.name in sets:
            return "mbharvest"
        if not sets and names == {migrations}:
            return "empty"
    return "empty" if not names else "foreign"


def _foreign(path: Path) -> UsageError:
    return UsageError(f"{path} is not an mbharvest database (an SQLite file without mbharvest's tables); "
                      "nothing was changed: use another --db")


def _examine(path: Path) -> tuple[str, sqlite3.Connection | None]:
    """What is at `path`, looked at without writing anything: "missing",
    "empty" (an empty file, or no schema), "mbharvest" or "foreign"; a
    folder or a file that is not SQLite is a UsageError. For an SQLite file,
    also the read-only connection it was looked at with (the caller closes it)."""
    if path.is_dir():
        raise UsageError(f"{path} is a folder, not a database file (give --db a file name)")
    if not path.exists():
        return "missing", None
    if path.stat().st_size == 0:
        return "empty", None
    # Closing any descriptor of a file drops every POSIX lock this process
    # holds on it, so reading the header with open() would pull the locks
    # from under this process's other connections to it (another process's
    # checkpoint then rewrites what they read: "database disk image is
    # malformed"). A -wal beside the file means connections may be open:
    # then only SQLite opens it (its own closes wait for its locks).
    header = None if Path(f"{path}-wal").exists() else _header(path)
    if header is not None and not header.startswith(SQLITE_HEADER):
        raise _not_sqlite(path)
    conn = _connect_read_only(path, header)
    try:
        return _identify(conn), conn
    except sqlite3.DatabaseError as exc:
        conn.close()
        raise DatabaseError(describe_sqlite_error(path, exc)) from None


def check_database_file(path: str | Path) -> None:
    """Refuse (UsageError, exit 2) a file that is not an mbharvest database,
    reading it without writing anything, so that a write command never
    turns someone else's file into ours. A missing or empty file is fine:
    the write command creates the database."""
    kind, conn = _examine(Path(path))
    if conn is not None:
        conn.close()
    if kind == "foreign":
        raise _foreign(path)


def open_readonly(path: str | Path) -> sqlite_utils.Database:
    """Open an existing mbharvest database for reading only: for commands
    that only read (stats, report, runs, exports). Never creates, migrates,
    changes the journal mode of, or writes beside the file; reads a database
    on read-only media as it is, and one made by an older release as it is.

    A missing file, or one that is not an mbharvest database, is a UsageError
    (exit 2): statistics of a database that a typo created empty would be
    silently wrong. Close it when done (a WAL database's -wal and -shm go
    with the last connection)."""
    path = Path(path)
    kind, conn = _examine(path)
    if kind == "mbharvest":
        return sqlite_utils.Database(conn)
    if conn is not None:
        conn.close()
    if kind == "missing":
        raise UsageError(f"no database at {path} (harvest or import-dump first, or give --db)")
    if kind == "foreign":
        raise _foreign(path)
    raise UsageError(f"{path} holds no mbharvest database yet (harvest or import-dump into it first)")


@contextmanager
def reading(path: str | Path) -> Iterator[sqlite_utils.Database]:
    """open_readonly for the length of a block, closed at its end. An SQLite
    error inside the block becomes a one-line DatabaseError; where the
    database is older than this release and lacks what a query needs, the
    UsageError says which command upgrades it."""
    db = open_readonly(path)
    try:
        yield db
    except sqlite3.OperationalError as exc:
        pending = [migration.name for migration in MIGRATIONS.pending(db)]
        if pending and "no such" in str(exc):
            raise UsageError(f"{path} was made by an older mbharvest and this needs its upgrade "
                             f"({', '.join(pending)}): run `mbharvest upgrade --db {path}` "
                             "(commands that only read never change a database)") from None
        raise DatabaseError(describe_sqlite_error(path, exc)) from None
    except sqlite3.DatabaseError as exc:
        raise DatabaseError(describe_sqlite_error(path, exc)) from None
    finally:
        db.close()


def pending_migrations(path: str | Path) -> list[str]:
    """The migrations an existing mbharvest database lacks (read only)."""
    with reading(path) as db:
        return [migration.name for migration in MIGRATIONS.pending(db)]


def describe_sqlite_error(path: str | Path, exc: sqlite3.Error) -> str:
    message = str(exc)
    if "file is not a database" in message or "not a database" in message:
        return f"{path} is not an SQLite database (use another --db, or move the file away)"
    if "readonly" in message or "read-only" in message:
        return f"{path} is read-only: cannot write to it ({message})"
    if "unable to open" in message:
        return f"{path}: cannot open the database file ({message})"
    if "disk is full" in message or "disk I/O" in message:
        return f"{path}: the disk is full or failing; everything committed before is kept ({message})"
    return f"{path}: database error: {message}"


def _json_text(values: list) -> str:
    """Rows as the JSON text json_each walks (orjson: a fifth of json.dumps's
    time, which the commit thread would otherwise spend holding the GIL)."""
    return orjson.dumps(values).decode()


def _json_columns(count: int) -> str:
    return ", ".join(f"json_extract(value, '$[{index}]')" for index in range(count))


@functools.lru_cache(maxsize=None)
def _upsert_sql(table: str, columns: tuple[str, ...], constants: tuple[str, ...]) -> str:
    """One statement for a whole group of rows, passed as a JSON array of
    arrays: SQLite walks it in C (no per-row round trip through Python, and
    the GIL is free meanwhile for a thread preparing the next batch). Rows go
    in key order, so a batch walks each key's B-tree once, from left to right
    (random MBIDs would otherwise visit its pages in random order); the caller
    gives each key once."""
    pk = PRIMARY_KEYS[table]
    key = (pk,) if isinstance(pk, str) else pk
    written = columns + constants
    updates = [c for c in written if c not in key]
    # An update that would change nothing is skipped: no write, no full-text
    # trigger (re-imports and entities repeated across pages cost a lookup).
    action = ("DO UPDATE SET " + ", ".join(f"[{c}] = excluded.[{c}]" for c in updates)
              + " WHERE " + " OR ".join(f"[{c}] IS NOT excluded.[{c}]" for c in updates)) if updates else "DO NOTHING"
    selected = ", ".join(filter(None, (_json_columns(len(columns)), ", ".join("?" for _ in constants))))
    return (f"INSERT INTO [{table}] ({', '.join(f'[{c}]' for c in written)}) "
            f"SELECT {selected} FROM json_each(?) WHERE true "
            f"ORDER BY {', '.join(str(written.index(column) + 1) for column in key)} "
            f"ON CONFLICT ({', '.join(key)}) {action}")


@dataclass(frozen=True)
class Writes:
    """Rows turned into the statements that write them. Preparing them
    (grouping, JSON text) holds the GIL and running them mostly does not, so
    the dump importer prepares a batch on its reading thread and runs it on
    its commit thread."""

    statements: list[tuple[str, tuple]]
    entities: int = 0


def _upserts(table: str, rows: list[dict[str, Any]], constants: dict[str, Any]) -> list[tuple[str, tuple]]:
    pk = PRIMARY_KEYS[table]
    key_of = operator.itemgetter(*((pk,) if isinstance(pk, str) else pk))
    # Per column set, one row per key: its last (what upserting them in order
    # would leave), so an entity repeated across a batch is looked up once.
    groups: dict[tuple[str, ...], dict[Any, tuple]] = defaultdict(dict)
    for row in rows:
        groups[tuple(row)][key_of(row)] = tuple(row.values())
    return [(_upsert_sql(table, columns, tuple(constants)), (*constants.values(), _json_text(list(values.values()))))
            for columns, values in groups.items()]


def run_writes(db: sqlite_utils.Database, writes: Writes) -> int:
    """Run prepared statements (inside the caller's transaction); returns
    how many distinct entities they write."""
    for sql, parameters in writes.statements:
        db.conn.execute(sql, parameters)
    return writes.entities


def upsert_rows(db: sqlite_utils.Database, table: str, rows: list[dict[str, Any]],
                constants: dict[str, Any] | None = None) -> None:
    """Upsert rows, each with only the columns it gives (grouped so that a
    missing column is never written as NULL), plus `constants` on every row."""
    run_writes(db, Writes(_upserts(table, rows, constants or {})))


def prepare_save(normalized: Normalized, *, source: str, fetched_at: str) -> Writes:
    """The statements that save one or more documents' rows (see `save`)."""
    statements = []
    clears: dict[tuple[str, tuple[str, ...]], list[list]] = defaultdict(list)
    for table, where in dict.fromkeys(normalized.replace):
        clears[(table, tuple(column for column, _ in where))].append([value for _, value in where])
    for (table, columns), values in clears.items():
        listed = ", ".join(f"[{column}]" for column in columns)
        statements.append((f"DELETE FROM [{table}] WHERE ({listed}) IN "
                           f"(SELECT {_json_columns(len(columns))} FROM json_each(?))", (_json_text(values),)))
    stamp = {"fetched_at": fetched_at, "source": source}
    for table, rows in normalized.rows.items():
        statements += _upserts(table, rows, stamp)
    if normalized.documents:
        statements += _upserts("document", normalized.documents, stamp)
    entities = sum(len({row["id"] for row in normalized.rows.get(table, ())}) for table in ENTITY_TABLES)
    return Writes(statements, entities)


def save(db: sqlite_utils.Database, normalized: Normalized, *, source: str, fetched_at: str) -> int:
    """Write one or more documents' rows; returns how many distinct entities
    (artists, labels, release groups, releases, recordings) were written.

    Child sets named in `normalized.replace` are cleared first, so a batch is
    one snapshot: rows for the same child set from two documents of one batch
    are united. Runs inside the caller's transaction."""
    return run_writes(db, prepare_save(normalized, source=source, fetched_at=fetched_at))


_CLASSIFY_BATCH = 900  # ids per query, under SQLite's oldest limit of 999 parameters


def classify_documents(db: sqlite_utils.Database, documents: list[dict[str, Any]]) -> tuple[int, int, int]:
    """How many of these documents are new, changed, or the same as stored.

    One query per batch of documents, not one per document: a page holds hundreds."""
    wanted: dict[str, list[str]] = defaultdict(list)
    for entity_type, entity_id in dict.fromkeys((d["entity_type"], d["entity_id"]) for d in documents):
        wanted[entity_type].append(entity_id)
    stored: dict[tuple[str, str], str] = {}
    for entity_type, entity_ids in wanted.items():
        for start in range(0, len(entity_ids), _CLASSIFY_BATCH):
            batch = entity_ids[start:start + _CLASSIFY_BATCH]
            rows = db.execute("SELECT entity_id, json FROM document WHERE entity_type = ? AND entity_id IN ("
                              + ", ".join("?" for _ in batch) + ")", [entity_type, *batch])
            stored.update({(entity_type, entity_id): json for entity_id, json in rows})
    new = updated = unchanged = 0
    for document in documents:
        json = stored.get((document["entity_type"], document["entity_id"]))
        if json is None:
            new += 1
        elif json == document["json"]:
            unchanged += 1
        else:
            updated += 1
    return new, updated, unchanged


def save_redirect(db: sqlite_utils.Database, row: dict[str, str], *, recorded_at: str) -> None:
    upsert_rows(db, "mbid_redirect", [{**row, "recorded_at": recorded_at}])


def table_counts(db: sqlite_utils.Database) -> dict[str, int]:
    return {name: db.execute(f"SELECT count(*) FROM [{name}]").fetchone()[0] for name in TABLES_V1}
