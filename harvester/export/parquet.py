"""Parquet export: one file per table, typed from the schema, written a row
group at a time."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from harvester import __version__
from harvester.errors import HarvesterError, MissingExtra
from harvester.export.dictionary import (
    ATTRIBUTION, CC0_LICENSE, CC0_URL, COLUMN_DESCRIPTIONS, SUPPLEMENTARY_LICENSE, SUPPLEMENTARY_TABLES,
    SUPPLEMENTARY_URL, TABLE_DESCRIPTIONS,
)
from harvester.export.source import (
    ExportResult, ProgressCallback, Selection, AtomicFile, export_tables, write_error, iter_batches,
    open_source, prepare_out_dir, read_snapshot, table_columns,
)

PARQUET_ROW_GROUP = 100_000


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise MissingExtra("Parquet export needs pyarrow, an optional extra: "
                           "pip install 'mbharvest[parquet]'") from None
    return pyarrow


def arrow_type(declared: str, pa: Any) -> Any:
    """Arrow type for a declared SQLite column type, by SQLite's affinity rules."""
    declared = declared.upper()
    if "INT" in declared:
        return pa.int64()
    if any(word in declared for word in ("REAL", "FLOA", "DOUB")):
        return pa.float64()
    if "BLOB" in declared:
        return pa.binary()
    return pa.string()


def _mixed_columns(conn: sqlite3.Connection, table: str, pa: Any) -> set[str]:
    """Numeric columns holding a value of another type (SQLite allows it: a
    label code such as 'SPREC' sits in the INTEGER column label_code). Those
    are written as strings rather than failing or losing the value."""
    fits = {"int64": "('integer', 'null')", "double": "('integer', 'real', 'null')"}
    mixed = set()
    for name, declared in table_columns(conn, table):
        allowed = fits.get(str(arrow_type(declared, pa)))
        if allowed and conn.execute(f"SELECT 1 FROM [{table}] WHERE typeof([{name}]) NOT IN {allowed} LIMIT 1"
                                    ).fetchone():
            mixed.add(name)
    return mixed


def parquet_schema(conn: sqlite3.Connection, table: str, pa: Any) -> Any:
    """Arrow schema from the declared column types, with column descriptions
    and the table's licence as metadata."""
    descriptions = COLUMN_DESCRIPTIONS.get(table, {})
    mixed = _mixed_columns(conn, table, pa)
    fields = [pa.field(name, pa.string() if name in mixed else arrow_type(declared, pa),
                       metadata={"description": descriptions[name]} if name in descriptions else None)
              for name, declared in table_columns(conn, table)]
    licence = f"{SUPPLEMENTARY_LICENSE} ({SUPPLEMENTARY_URL})" if table in SUPPLEMENTARY_TABLES \
        else f"{CC0_LICENSE} ({CC0_URL})"
    return pa.schema(fields, metadata={"table": table, "description": TABLE_DESCRIPTIONS.get(table, ""),
                                       "license": licence, "attribution": ATTRIBUTION,
                                       "created_by": f"mbharvest {__version__}"})


def write_parquet_table(conn: sqlite3.Connection, table: str, path: Path, selection: Selection,
                        on_progress: ProgressCallback | None = None,
                        row_group_rows: int = PARQUET_ROW_GROUP) -> int:
    """One table as Parquet (zstd), typed from the declared column types,
    written a row group at a time; returns rows written."""
    pa = _pyarrow()
    schema = parquet_schema(conn, table, pa)
    written = 0
    pending: list[Any] = []  # Arrow record batches (compact) waiting to fill a row group
    try:
        with AtomicFile(path) as partial, pa.parquet.ParquetWriter(partial, schema, compression="zstd") as writer:
            for batch in iter_batches(conn, table, schema.names, selection):
                pending.append(pa.RecordBatch.from_arrays(_arrow_columns(table, schema, batch, pa), schema=schema))
                written += len(batch)
                if sum(b.num_rows for b in pending) >= row_group_rows:
                    writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=row_group_rows)
                    pending.clear()
                if on_progress:
                    on_progress(table, written)
            if pending or not written:
                writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=row_group_rows)
    except OSError as exc:
        raise write_error(path, exc) from None
    return written


def _arrow_columns(table: str, schema: Any, batch: list[tuple], pa: Any) -> list[Any]:
    arrays = []
    for column, values in zip(schema, zip(*batch)):
        try:
            try:
                arrays.append(pa.array(values, type=column.type))
            except (pa.ArrowInvalid, pa.ArrowTypeError):
                if column.type != pa.string():
                    raise
                # a number in a mixed column (see _mixed_columns) is written as its text
                arrays.append(pa.array([None if v is None else str(v) for v in values], type=column.type))
        except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError) as exc:
            raise HarvesterError(f"{table}.{column.name}: a value does not fit the declared type "
                                 f"{column.type} ({exc})") from None
    return arrays


def export_parquet(db_path: str | Path, out: str | Path, selection: Selection = Selection(),
                   on_progress: ProgressCallback | None = None) -> ExportResult:
    """One Parquet file per table, all from one snapshot of the database."""
    _pyarrow()
    conn = open_source(db_path)
    try:
        out_dir = prepare_out_dir(out)
        with read_snapshot(conn):
            return export_tables(conn, out_dir, selection, "parquet", write_parquet_table, on_progress)
    finally:
        conn.close()
