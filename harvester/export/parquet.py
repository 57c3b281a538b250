"""Parquet export: one file per table, every column's type fixed by the data
dictionary whatever the data holds (timestamps as UTC timestamps, flags as
booleans, codes such as label_code as text), written in row groups that
DuckDB and Spark read in parallel, with a datapackage.json describing the
dataset beside the files."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

from harvester import __version__
from harvester.errors import HarvesterError, MissingExtra
from harvester.export.datapackage import export_folder
from harvester.export.dictionary import ATTRIBUTION, describe, licence_of
from harvester.export.source import (
    AtomicFile, ExportResult, ProgressCallback, Selection, iter_batches, logical_columns, write_error,
)

PARQUET_ROW_GROUP = 100_000


def _pyarrow():
    try:
        import pyarrow
        import pyarrow.compute
        import pyarrow.parquet
    except ImportError:
        raise MissingExtra("Parquet export needs pyarrow, an optional extra: "
                           "pip install 'mbharvest[parquet]'") from None
    return pyarrow


def arrow_type(kind: str, pa: Any) -> Any:
    """Arrow type of a logical type (dictionary.TYPES)."""
    return {"INTEGER": pa.int64(), "REAL": pa.float64(), "BOOLEAN": pa.bool_(),
            "TIMESTAMP": pa.timestamp("us", tz="UTC")}.get(kind, pa.string())


def parquet_schema(conn: sqlite3.Connection, table: str, pa: Any) -> Any:
    """Arrow schema from the data dictionary, with each column's description
    and logical type, and the table's description and licence, as metadata."""
    described = describe(table)
    known = described.columns if described else {}
    fields = []
    for name, kind in logical_columns(conn, table):
        metadata = {"logical_type": kind}
        if name in known:
            metadata["description"] = known[name].description
        fields.append(pa.field(name, arrow_type(kind, pa), metadata=metadata))
    licence, url = licence_of(table)
    return pa.schema(fields, metadata={"table": table, "description": described.description if described else "",
                                       "license": f"{licence} ({url})", "attribution": ATTRIBUTION,
                                       "created_by": f"mbharvest {__version__}"})


def write_parquet_table(conn: sqlite3.Connection, table: str, path: Path, selection: Selection,
                        on_progress: ProgressCallback | None = None,
                        row_group_rows: int = PARQUET_ROW_GROUP) -> int:
    """One table as Parquet (zstd), typed from the data dictionary, written a
    row group at a time; returns rows written."""
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
    return [_arrow_column(table, column, values, pa) for column, values in zip(schema, zip(*batch))]


def _arrow_column(table: str, column: Any, values: tuple, pa: Any) -> Any:
    """One column's values as the schema's type, or an error naming the
    column and the value that does not fit (never a silently changed value)."""
    kind = column.metadata[b"logical_type"].decode()
    try:
        if column.type == pa.string():
            if all(value is None or isinstance(value, str) for value in values):
                return pa.array(values, type=pa.string())
            return pa.array([None if v is None else str(v) for v in values], type=pa.string())
        if kind == "BOOLEAN":
            if not set(values) <= {0, 1, None}:
                raise ValueError(f"{sorted(set(values) - {0, 1, None}, key=repr)[0]!r} is not 0 or 1")
            return pa.array(values, type=pa.int64()).cast(pa.bool_())
        if kind == "TIMESTAMP":
            return pa.compute.cast(pa.array(values, type=pa.string()), column.type)
        return pa.array(values, type=column.type)
    except (pa.ArrowInvalid, pa.ArrowTypeError, OverflowError, ValueError) as exc:
        raise HarvesterError(f"{table}.{column.name}: a value does not fit the column's type {kind} "
                             f"({column.type}): {exc}") from None


def export_parquet(db_path: str | Path, out: str | Path, selection: Selection = Selection(),
                   on_progress: ProgressCallback | None = None) -> ExportResult:
    """One Parquet file per table and a datapackage.json, all from one snapshot of the database."""
    _pyarrow()
    return export_folder(db_path, out, selection, "parquet", write_parquet_table, on_progress)
