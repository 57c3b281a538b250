"""CSV export: one UTF-8 CSV per table with a header row."""

from __future__ import annotations

import csv
import sqlite3
from pathlib import Path

from harvester.export.source import (
    ExportResult, ProgressCallback, Selection, AtomicFile, export_tables, write_error, iter_batches,
    open_source, prepare_out_dir, read_snapshot, table_columns,
)


def write_csv_table(conn: sqlite3.Connection, table: str, path: Path, selection: Selection,
                    on_progress: ProgressCallback | None = None) -> int:
    """One table as UTF-8 CSV with a header row (RFC 4180 quoting); returns rows written."""
    columns = [name for name, _ in table_columns(conn, table)]
    written = 0
    try:
        with AtomicFile(path) as partial, open(partial, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            for batch in iter_batches(conn, table, columns, selection):
                writer.writerows(batch)
                written += len(batch)
                if on_progress:
                    on_progress(table, written)
    except OSError as exc:
        raise write_error(path, exc) from None
    return written


def export_csv(db_path: str | Path, out: str | Path, selection: Selection = Selection(),
               on_progress: ProgressCallback | None = None) -> ExportResult:
    """One CSV per table, all from one snapshot of the database."""
    conn = open_source(db_path)
    try:
        out_dir = prepare_out_dir(out)
        with read_snapshot(conn):
            return export_tables(conn, out_dir, selection, "csv", write_csv_table, on_progress)
    finally:
        conn.close()
