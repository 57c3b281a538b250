"""A folder of table files (CSV or Parquet) and the Frictionless Data Package
(`datapackage.json`) that describes it: every column's type (which columns
are text, which are timestamps), how CSV writes NULL and '', the primary
keys, each table's licence and the data's origin, so DuckDB, pandas, R or
frictionless read it without guessing.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from harvester import __version__
from harvester.export.dictionary import (
    ATTRIBUTION, CC0_LICENSE, CC0_URL, DOCUMENT_TABLE, SOURCE, SOURCE_URL, SUPPLEMENTARY_LICENSE,
    SUPPLEMENTARY_TABLES, SUPPLEMENTARY_URL, describe, licence_of,
)
from harvester.export.source import (
    AtomicFile, ExportResult, ProgressCallback, Selection, count_supplementary_documents, existing_tables,
    left_out_counts, logical_columns, open_source, prepare_out_dir, primary_key, read_snapshot, write_error,
)

DATAPACKAGE = "datapackage.json"

# logical type (dictionary.TYPES) -> Table Schema type
FIELD_TYPES = {"TEXT": "string", "PARTIAL_DATE": "string", "JSON": "string", "INTEGER": "integer",
               "REAL": "number", "BOOLEAN": "boolean", "TIMESTAMP": "datetime"}

CSV_NULLS = ("A NULL is an empty unquoted field; an empty string is written as \"\" (e.g. release.barcode '' = the "
             "release has no barcode, NULL = not known). DuckDB: read_csv(..., allow_quoted_nulls = false) keeps "
             "them apart.")

_FORMATS: dict[str, dict[str, Any]] = {
    "csv": {"format": "csv", "mediatype": "text/csv", "encoding": "utf-8",
            "dialect": {"delimiter": ",", "quoteChar": "\"", "doubleQuote": True, "lineTerminator": "\r\n",
                        "header": True, "nullSequence": ""}},
    "parquet": {"format": "parquet", "mediatype": "application/vnd.apache.parquet"},
}


def _licence(name: str, url: str) -> dict[str, str]:
    return {"name": name.replace(" ", "-"), "title": name, "path": url}


def table_schema(conn: sqlite3.Connection, table: str) -> dict[str, Any]:
    """A Table Schema for one table of this database."""
    described = describe(table)
    known = described.columns if described else {}
    fields = []
    for name, kind in logical_columns(conn, table):
        entry: dict[str, Any] = {"name": name, "type": FIELD_TYPES[kind]}
        if name in known:
            entry["description"] = known[name].description
        if kind == "BOOLEAN":
            entry.update(trueValues=["true"], falseValues=["false"])
        if kind == "PARTIAL_DATE":
            entry["description"] = entry.get("description", "") + " A partial date: YYYY, YYYY-MM or YYYY-MM-DD."
        fields.append(entry)
    schema: dict[str, Any] = {"fields": fields, "missingValues": [""]}
    if key := primary_key(conn, table):
        schema["primaryKey"] = key
    return schema


def datapackage(conn: sqlite3.Connection, result: ExportResult, suffix: str) -> dict[str, Any]:
    resources = []
    for table in result.row_counts:
        described = describe(table)
        resource: dict[str, Any] = {
            "name": table, "path": f"{table}.{suffix}", "profile": "tabular-data-resource",
            **_FORMATS[suffix],
            "description": ((described.description if described else table)
                            + (" " + CSV_NULLS if suffix == "csv" else "")),
            "schema": table_schema(conn, table),
            "licenses": [_licence(*licence_of(table))],
        }
        if table == DOCUMENT_TABLE and not any(t in result.row_counts for t in SUPPLEMENTARY_TABLES):
            resource["description"] += " Exported with its supplementary fields removed (all rows CC0)."
        resources.append(resource)
    supplementary = any(table in result.row_counts for table in SUPPLEMENTARY_TABLES)
    licences = [_licence(CC0_LICENSE, CC0_URL)] + (
        [_licence(SUPPLEMENTARY_LICENSE, SUPPLEMENTARY_URL)] if supplementary else [])
    return {
        "profile": "tabular-data-package" if suffix == "csv" else "data-package",
        "name": "musicbrainz-mbharvest",
        "title": "MusicBrainz open metadata (mbharvest export)",
        "description": ("Artists, labels, releases, recordings, tracks and ISRCs from MusicBrainz, one file per "
                        "table. " + ATTRIBUTION
                        + (" Tables tag, rating and annotation are CC BY-NC-SA 3.0 (NonCommercial)."
                           if supplementary else " Core data only (CC0).")
                        + (" " + CSV_NULLS if suffix == "csv" else "")),
        "licenses": licences,
        "sources": [{"title": SOURCE, "path": SOURCE_URL}],
        "created": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "generator": f"mbharvest {__version__}",
        "resources": resources,
    }


def write_datapackage(conn: sqlite3.Connection, result: ExportResult, suffix: str) -> Path:
    path = result.out / DATAPACKAGE
    try:
        with AtomicFile(path) as partial:
            partial.write_text(json.dumps(datapackage(conn, result, suffix), indent=2, ensure_ascii=False) + "\n",
                               encoding="utf-8")
    except OSError as exc:
        raise write_error(path, exc) from None
    return path


def export_tables(conn: sqlite3.Connection, out_dir: Path, selection: Selection, suffix: str,
                  write_table: Callable[..., int], on_progress: ProgressCallback | None) -> ExportResult:
    """One file per selected table, then the datapackage.json describing them."""
    existing = existing_tables(conn)
    result = ExportResult(out=out_dir, left_out=left_out_counts(conn, existing, selection))
    selected = selection.tables(existing)
    for table in selected:
        path = out_dir / f"{table}.{suffix}"
        result.row_counts[table] = write_table(conn, table, path, selection, on_progress)
        result.files.append(path)
    # An earlier export with more tables must not leave, say, a CC BY-NC-SA tag.csv
    # beside a CC0-only export: the folder holds what this export selected.
    for table in (DOCUMENT_TABLE, *SUPPLEMENTARY_TABLES):
        stale = out_dir / f"{table}.{suffix}"
        if table not in selected and stale.exists():
            stale.unlink()
            result.removed.append(stale)
    if DOCUMENT_TABLE in result.row_counts and not selection.supplementary:
        result.stripped_documents = count_supplementary_documents(conn)
    result.files.append(write_datapackage(conn, result, suffix))
    return result


def export_folder(db_path: str | Path, out: str | Path, selection: Selection, suffix: str,
                  write_table: Callable[..., int], on_progress: ProgressCallback | None) -> ExportResult:
    """export_tables into the folder `out`, all from one snapshot of the database."""
    conn = open_source(db_path)
    try:
        out_dir = prepare_out_dir(out)
        with read_snapshot(conn):
            return export_tables(conn, out_dir, selection, suffix, write_table, on_progress)
    finally:
        conn.close()
