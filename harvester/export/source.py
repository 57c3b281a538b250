"""What every export shares: which tables it holds (Selection), reading one
consistent snapshot of the database through a read-only connection, rows in
primary-key order a batch at a time, and writing files under a temporary
name first."""

from __future__ import annotations

import os
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import orjson

from harvester.errors import HarvesterError, UsageError
from harvester.export.dictionary import (
    CORE_TABLES, DOCUMENT_TABLE, SUPPLEMENTARY_MARK, SUPPLEMENTARY_TABLES, describe,
)
from harvester.normalize import CC0, document_json, strip_supplementary
from harvester.store import open_readonly

BATCH_ROWS = 10_000

ProgressCallback = Callable[[str, int], None]


@dataclass(frozen=True)
class Selection:
    """Which tables an export holds: the core tables always; raw documents
    and supplementary (CC BY-NC-SA) data only when asked for."""

    documents: bool = False
    supplementary: bool = False

    def tables(self, existing: Sequence[str]) -> list[str]:
        wanted = list(CORE_TABLES)
        if self.documents:
            wanted.append(DOCUMENT_TABLE)
        if self.supplementary:
            wanted.extend(SUPPLEMENTARY_TABLES)
        return [name for name in wanted if name in existing]


@dataclass
class ExportResult:
    out: Path
    files: list[Path] = field(default_factory=list)
    row_counts: dict[str, int] = field(default_factory=dict)
    left_out: dict[str, int] = field(default_factory=dict)  # supplementary table -> rows not exported
    stripped_documents: int = 0  # documents exported without their supplementary fields
    removed: list[Path] = field(default_factory=list)  # files of an earlier export this one does not hold

    @property
    def rows(self) -> int:
        return sum(self.row_counts.values())


# -- reading ------------------------------------------------------------------------------------------------

def open_source(db_path: str | Path) -> sqlite3.Connection:
    """Open an existing mbharvest database for reading only (store.open_readonly:
    never created, migrated or written), in autocommit mode so that
    `read_snapshot` can hold one read transaction over a whole export."""
    return open_readonly(db_path).conn


def existing_tables(conn: sqlite3.Connection) -> list[str]:
    return [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]


@contextmanager
def read_snapshot(conn: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    """One read transaction: every table of an export comes from the same
    state of the database, even while a harvest writes to it (WAL)."""
    conn.execute("BEGIN")
    try:
        yield conn
    finally:
        conn.execute("COMMIT")


def table_columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    """(name, declared type) of each column, in table order."""
    return [(row[1], row[2]) for row in conn.execute(f"PRAGMA table_info([{table}])")]


def logical_columns(conn: sqlite3.Connection, table: str) -> list[tuple[str, str]]:
    """(name, logical type) of each column this database's table has, in
    table order: the data dictionary's type, which fixes a column's type
    whatever its values (an older database's INTEGER label_code is TEXT
    too); a column the dictionary does not know gets its declared affinity."""
    described = describe(table)
    known = described.columns if described else {}
    return [(name, known[name].type if name in known else _affinity(declared))
            for name, declared in table_columns(conn, table)]


def _affinity(declared: str) -> str:
    declared = declared.upper()
    if "INT" in declared:
        return "INTEGER"
    if any(word in declared for word in ("REAL", "FLOA", "DOUB")):
        return "REAL"
    return "TEXT"


def primary_key(conn: sqlite3.Connection, table: str) -> list[str]:
    keyed = sorted((row[5], row[1]) for row in conn.execute(f"PRAGMA table_info([{table}])") if row[5])
    return [name for _, name in keyed]


def count_rows(conn: sqlite3.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0]


def count_supplementary_documents(conn: sqlite3.Connection) -> int:
    if DOCUMENT_TABLE not in existing_tables(conn):
        return 0
    return conn.execute("SELECT count(*) FROM document WHERE instr(licence, ?) > 0",
                        (SUPPLEMENTARY_MARK,)).fetchone()[0]


def cc0_document_json(stored_json: str) -> str:
    """The raw document without its CC BY-NC-SA fields, serialized as the
    normalizer serializes documents."""
    return document_json(strip_supplementary(orjson.loads(stored_json)))


def iter_batches(conn: sqlite3.Connection, table: str, columns: list[str], selection: Selection,
                 batch_rows: int = BATCH_ROWS, select: dict[str, str] | None = None) -> Iterator[list[tuple]]:
    """The table's rows in primary-key order (stable across runs), a batch at
    a time; `select` gives an SQL expression in place of a column. Without
    the supplementary opt-in, documents lose their CC BY-NC-SA fields and are
    relabelled CC0."""
    order = ", ".join(f"[{c}]" for c in primary_key(conn, table)) or "rowid"
    listed = ", ".join((select or {}).get(c, f"[{c}]") for c in columns)
    cursor = conn.execute(f"SELECT {listed} FROM [{table}] ORDER BY {order}")
    strip = table == DOCUMENT_TABLE and not selection.supplementary
    json_at, licence_at = (columns.index("json"), columns.index("licence")) if strip else (-1, -1)
    while batch := cursor.fetchmany(batch_rows):
        if strip:
            batch = [_cc0_document_row(row, json_at, licence_at) for row in batch]
        yield batch


def _cc0_document_row(row: tuple, json_at: int, licence_at: int) -> tuple:
    licence = row[licence_at]
    if not licence or SUPPLEMENTARY_MARK not in licence:
        return row
    values = list(row)
    values[json_at] = cc0_document_json(row[json_at])
    values[licence_at] = CC0
    return tuple(values)


def left_out_counts(conn: sqlite3.Connection, existing: Sequence[str], selection: Selection) -> dict[str, int]:
    if selection.supplementary:
        return {}
    counts = {name: count_rows(conn, name) for name in SUPPLEMENTARY_TABLES if name in existing}
    return {name: n for name, n in counts.items() if n}


# -- writing ------------------------------------------------------------------------------------------------

def prepare_out_dir(out: str | Path) -> Path:
    """Create the output folder (and parents); a clear UsageError when it cannot be written."""
    path = Path(out)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise UsageError(f"{path}: exists and is not a folder") from None
    except OSError as exc:
        raise UsageError(f"{path}: cannot create the output folder ({exc.strerror})") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UsageError(f"{path}: the output folder is not writable")
    return path


class AtomicFile:
    """Write to NAME.partial, then rename over NAME: a reader never sees half a file."""

    def __init__(self, path: Path):
        self.path = path
        self.partial = path.with_name(path.name + ".partial")

    def __enter__(self) -> Path:
        return self.partial

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        if exc_type is None:
            os.replace(self.partial, self.path)
        else:
            self.partial.unlink(missing_ok=True)


def write_error(path: Path, exc: OSError) -> HarvesterError:
    return HarvesterError(f"{path}: cannot write ({exc.strerror or exc})")
