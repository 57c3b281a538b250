"""CSV export: one UTF-8 CSV per table with a header row, typed by the
datapackage.json written beside it.

RFC 4180 quoting, no byte-order mark. NULL and the empty string stay apart:
NULL is an empty unquoted field, '' is written "" (as PostgreSQL and DuckDB
write them). Booleans are written true/false, timestamps as ISO 8601 UTC
(2026-01-02T03:04:05Z), every other value as SQLite holds it.
"""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path
from typing import Any

from harvester.export.datapackage import export_folder
from harvester.export.source import (
    AtomicFile, ExportResult, ProgressCallback, Selection, iter_batches, logical_columns, write_error,
)


def _quoted(value: Any) -> str:
    if value is None:
        return ""
    if value == "":
        return '""'
    text = str(value)
    if any(special in text for special in (",", '"', "\r", "\n")):
        return '"' + text.replace('"', '""') + '"'
    return text


def write_csv_table(conn: sqlite3.Connection, table: str, path: Path, selection: Selection,
                    on_progress: ProgressCallback | None = None) -> int:
    """One table as CSV; returns rows written. Rows holding an empty string
    are written by hand (the csv module cannot quote '' alone), the others by
    the csv module."""
    columns = logical_columns(conn, table)
    names = [name for name, _ in columns]
    booleans = {name: f"CASE [{name}] WHEN 1 THEN 'true' WHEN 0 THEN 'false' ELSE [{name}] END"
                for name, kind in columns if kind == "BOOLEAN"}
    written = 0
    try:
        with AtomicFile(path) as partial, open(partial, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh, lineterminator="\r\n")
            writer.writerow(names)
            for batch in iter_batches(conn, table, names, selection, select=booleans):
                for row in batch:
                    if "" in row:
                        fh.write(",".join(_quoted(value) for value in row) + "\r\n")
                    else:
                        writer.writerow(row)
                written += len(batch)
                if on_progress:
                    on_progress(table, written)
    except OSError as exc:
        raise write_error(path, exc) from None
    return written


def export_csv(db_path: str | Path, out: str | Path, selection: Selection = Selection(),
               on_progress: ProgressCallback | None = None) -> ExportResult:
    """One CSV per table and a datapackage.json, all from one snapshot of the database."""
    return export_folder(db_path, out, selection, "csv", write_csv_table, on_progress)
