"""Exports for researchers (CSV, Parquet), Datasette metadata, and archive
packages (BagIt) whose fixity, licence and provenance travel with the data.

Every export reads one consistent snapshot of the database through a
read-only connection (a missing file is an error, never a new empty
database), streams rows through a cursor in batches so memory stays flat on
tables of any size, and writes each file under a temporary name first.

Licensing: core data is CC0. Supplementary data (tables tag, rating,
annotation, and the CC BY-NC-SA fields kept inside raw documents) leaves only
when the caller asks for it explicitly; otherwise the tables are left out and
raw documents are exported with those fields removed.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import sqlite3
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import bagit
import orjson

from harvester import __version__
from harvester.errors import HarvesterError, MissingExtra, UsageError
from harvester.normalize import CC0, document_json, strip_supplementary
from harvester.store import open_readonly

CORE_TABLES = (
    "artist", "label", "release_group", "release", "medium", "track", "recording",
    "recording_isrc", "release_label", "artist_credit_name", "mbid_redirect", "harvest_run",
)
DOCUMENT_TABLE = "document"
SUPPLEMENTARY_TABLES = ("tag", "rating", "annotation")
ENTITY_TABLES = ("artist", "label", "release_group", "release", "recording")

CC0_LICENSE = "CC0 1.0"
CC0_URL = "https://creativecommons.org/publicdomain/zero/1.0/"
SUPPLEMENTARY_LICENSE = "CC BY-NC-SA 3.0"
SUPPLEMENTARY_URL = "https://creativecommons.org/licenses/by-nc-sa/3.0/"
SOURCE = "MusicBrainz (MetaBrainz Foundation)"
SOURCE_URL = "https://musicbrainz.org/"
ATTRIBUTION = ("Data from MusicBrainz (https://musicbrainz.org), the open music encyclopedia, "
               "provided by the MetaBrainz Foundation.")
# How a document row's licence column marks CC BY-NC-SA content (normalize.SUPPLEMENTARY_LICENCE).
_SUPPLEMENTARY_MARK = "CC-BY-NC-SA"

BATCH_ROWS = 10_000
PARQUET_ROW_GROUP = 100_000

ProgressCallback = Callable[[str, int], None]

_STAMP_COLUMNS = {
    "fetched_at": "When this row was last fetched (UTC, ISO 8601).",
    "source": "Where the row came from: the WS/2 server URL or the dump it was imported from.",
}
_ENTITY_TYPE = "Type of the entity the row belongs to (artist, label, release_group, release, recording)."
_ENTITY_ID = "MBID of the entity the row belongs to."
_CREDIT = "Artist credit as printed (each credited name followed by its join phrase)."
_SUPPLEMENTARY_LICENCE_COLUMN = "Licence of this row: CC-BY-NC-SA-3.0 (supplementary data, NonCommercial)."

TABLE_DESCRIPTIONS: dict[str, str] = {
    "artist": "MusicBrainz artists: people, groups, orchestras, characters.",
    "label": "Record labels and other imprints.",
    "release_group": "Release groups: an album, single or EP across all its editions.",
    "release": "Releases: one edition of a release group (country, date, barcode, packaging).",
    "medium": "Media of a release (disc, vinyl side set, digital medium), by position.",
    "track": "Tracks on a medium, each pointing at its recording.",
    "recording": "Recordings: a distinct audio take, shared by every track that uses it.",
    "recording_isrc": "ISRCs assigned to recordings (upper case, no hyphens); one recording may have several.",
    "release_label": "Labels and catalogue numbers of releases ('' where none is given).",
    "artist_credit_name": "Names in an entity's artist credit, one row per credited artist, in order.",
    "mbid_redirect": "MBIDs that MusicBrainz merged into another entity, and where they point now.",
    "harvest_run": "The run ledger: every harvest, import or refresh that wrote to this database.",
    "document": "The raw WS/2 JSON each entity was stored from (CC0 fields only unless marked).",
    "tag": "Supplementary data (CC BY-NC-SA 3.0): tags, genres and moods with vote counts.",
    "rating": "Supplementary data (CC BY-NC-SA 3.0): community ratings.",
    "annotation": "Supplementary data (CC BY-NC-SA 3.0): free-text annotations.",
}

COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "artist": {
        "id": "MusicBrainz identifier (MBID) of the artist.",
        "name": "Official name.", "sort_name": "Name for sorting (e.g. 'Beatles, The').",
        "type": "Person, Group, Orchestra, Choir, Character or Other.",
        "country": "ISO 3166-1 country code of the artist's area.",
        "disambiguation": "Comment telling apart artists of the same name.",
        "gender": "Gender of a person.", "begin_date": "Birth or formation date (partial dates kept).",
        "end_date": "Death or dissolution date (partial dates kept).", "ended": "1 if the artist has ended.",
        "gone_at": "When the artist was found deleted upstream (NULL while it exists).", **_STAMP_COLUMNS,
    },
    "label": {
        "id": "MusicBrainz identifier (MBID) of the label.",
        "name": "Official name.", "sort_name": "Name for sorting.",
        "type": "Original Production, Imprint, Holding, Distributor, ...",
        "country": "ISO 3166-1 country code of the label's area.",
        "label_code": "IFPI label code (LC number) without the LC prefix.",
        "disambiguation": "Comment telling apart labels of the same name.",
        "begin_date": "Founding date (partial dates kept).", "end_date": "Dissolution date (partial dates kept).",
        "ended": "1 if the label has ended.",
        "gone_at": "When the label was found deleted upstream (NULL while it exists).", **_STAMP_COLUMNS,
    },
    "release_group": {
        "id": "MusicBrainz identifier (MBID) of the release group.", "title": "Title.",
        "primary_type": "Album, Single, EP, Broadcast or Other.",
        "secondary_types": "Secondary types (Compilation, Live, Soundtrack, ...), comma separated.",
        "first_release_date": "Date of the earliest release in the group (partial dates kept).",
        "artist_credit": _CREDIT, "disambiguation": "Comment telling apart groups of the same title.",
        "gone_at": "When the group was found deleted upstream (NULL while it exists).", **_STAMP_COLUMNS,
    },
    "release": {
        "id": "MusicBrainz identifier (MBID) of the release.", "title": "Title.",
        "status": "Official, Promotion, Bootleg, Pseudo-Release, ...",
        "date": "Release date (YYYY, YYYY-MM or YYYY-MM-DD; NULL when unknown).",
        "country": "ISO 3166-1 code of the release country (XW = worldwide, XE = Europe).",
        "barcode": "Barcode (EAN/UPC) as printed; '' means the release has no barcode.",
        "release_group_id": "MBID of the release group (release_group.id).", "artist_credit": _CREDIT,
        "disambiguation": "Comment telling apart releases of the same title.", "packaging": "Packaging.",
        "gone_at": "When the release was found deleted upstream (NULL while it exists).", **_STAMP_COLUMNS,
    },
    "medium": {
        "release_id": "MBID of the release (release.id).", "position": "Position of the medium in the release (from 1).",
        "format": "CD, Digital Media, 12\" Vinyl, ...", "track_count": "Number of tracks on the medium.",
        "title": "Medium title, if any.", **_STAMP_COLUMNS,
    },
    "track": {
        "id": "MusicBrainz identifier (MBID) of the track.", "release_id": "MBID of the release (release.id).",
        "medium_position": "Position of the medium in the release (medium.position).",
        "position": "Position of the track on its medium (from 1).", "number": "Track number as printed (A1, 3, ...).",
        "title": "Track title (may differ from the recording's).", "length_ms": "Track length in milliseconds.",
        "recording_id": "MBID of the recording (recording.id).", "artist_credit": _CREDIT, **_STAMP_COLUMNS,
    },
    "recording": {
        "id": "MusicBrainz identifier (MBID) of the recording.", "title": "Title.",
        "length_ms": "Length in milliseconds (NULL when unknown).",
        "first_release_date": "Date of the earliest release with this recording (partial dates kept).",
        "video": "1 if the recording is a video.", "disambiguation": "Comment telling apart recordings.",
        "artist_credit": _CREDIT,
        "gone_at": "When the recording was found deleted upstream (NULL while it exists).", **_STAMP_COLUMNS,
    },
    "recording_isrc": {
        "recording_id": "MBID of the recording (recording.id).",
        "isrc": "ISRC: CC (country) + OOO (registrant) + YY (year) + NNNNN.", **_STAMP_COLUMNS,
    },
    "release_label": {
        "release_id": "MBID of the release (release.id).", "label_id": "MBID of the label (label.id); '' if none.",
        "catalog_number": "Catalogue number as printed; '' if none.", **_STAMP_COLUMNS,
    },
    "artist_credit_name": {
        "entity_type": _ENTITY_TYPE, "entity_id": _ENTITY_ID, "position": "Position in the credit (from 0).",
        "artist_id": "MBID of the credited artist (artist.id).", "name": "Name as credited.",
        "join_phrase": "Text printed after this name (' & ', ' feat. ', ...).", **_STAMP_COLUMNS,
    },
    "mbid_redirect": {
        "old_id": "The merged (old) MBID.", "new_id": "The MBID it now resolves to.",
        "entity_type": "Entity type of both MBIDs.", "recorded_at": "When the redirect was seen (UTC).",
    },
    "harvest_run": {
        "id": "Run number.", "command": "The command that ran (harvest artist, import-dump, refresh, ...).",
        "args": "Its arguments (seeds, files, options).", "started_at": "Start (UTC).", "finished_at": "End (UTC).",
        "status": "running, finished, partial (stopped at a budget) or failed.",
        "requests": "WS/2 requests spent.", "entities_written": "Entities written.",
        "new": "Entities seen for the first time.", "updated": "Entities whose data changed.",
        "unchanged": "Entities fetched again without change.", "gone": "Entities found deleted upstream.",
        "error": "Error message of a failed run.", "pid": "Process id of the run.",
    },
    "document": {
        "entity_type": _ENTITY_TYPE, "entity_id": _ENTITY_ID,
        "json": "The WS/2 JSON document the rows were stored from.",
        "licence": "CC0-1.0, or CC0-1.0+CC-BY-NC-SA-3.0 when it keeps supplementary fields.", **_STAMP_COLUMNS,
    },
    "tag": {
        "entity_type": _ENTITY_TYPE, "entity_id": _ENTITY_ID, "kind": "tag, genre, mood (or user-*).",
        "name": "Tag name.", "count": "Votes for the tag.", "licence": _SUPPLEMENTARY_LICENCE_COLUMN,
        **_STAMP_COLUMNS,
    },
    "rating": {
        "entity_type": _ENTITY_TYPE, "entity_id": _ENTITY_ID, "kind": "rating or user-rating.",
        "value": "Average rating (0-5).", "votes_count": "Number of votes.",
        "licence": _SUPPLEMENTARY_LICENCE_COLUMN, **_STAMP_COLUMNS,
    },
    "annotation": {
        "entity_type": _ENTITY_TYPE, "entity_id": _ENTITY_ID, "text": "Annotation text.",
        "licence": _SUPPLEMENTARY_LICENCE_COLUMN, **_STAMP_COLUMNS,
    },
}


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


def primary_key(conn: sqlite3.Connection, table: str) -> list[str]:
    keyed = sorted((row[5], row[1]) for row in conn.execute(f"PRAGMA table_info([{table}])") if row[5])
    return [name for _, name in keyed]


def count_rows(conn: sqlite3.Connection, table: str) -> int:
    return conn.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0]


def count_supplementary_documents(conn: sqlite3.Connection) -> int:
    if DOCUMENT_TABLE not in existing_tables(conn):
        return 0
    return conn.execute("SELECT count(*) FROM document WHERE instr(licence, ?) > 0",
                        (_SUPPLEMENTARY_MARK,)).fetchone()[0]


def cc0_document_json(stored_json: str) -> str:
    """The raw document without its CC BY-NC-SA fields, serialized as the
    normalizer serializes documents."""
    return document_json(strip_supplementary(orjson.loads(stored_json)))


def iter_batches(conn: sqlite3.Connection, table: str, columns: list[str], selection: Selection,
                 batch_rows: int = BATCH_ROWS) -> Iterator[list[tuple]]:
    """The table's rows in primary-key order (stable across runs), a batch at
    a time. Without the supplementary opt-in, documents lose their CC BY-NC-SA
    fields and are relabelled CC0."""
    order = ", ".join(f"[{c}]" for c in primary_key(conn, table)) or "rowid"
    cursor = conn.execute(f"SELECT {', '.join(f'[{c}]' for c in columns)} FROM [{table}] ORDER BY {order}")
    strip = table == DOCUMENT_TABLE and not selection.supplementary
    json_at, licence_at = (columns.index("json"), columns.index("licence")) if strip else (-1, -1)
    while batch := cursor.fetchmany(batch_rows):
        if strip:
            batch = [_cc0_document_row(row, json_at, licence_at) for row in batch]
        yield batch


def _cc0_document_row(row: tuple, json_at: int, licence_at: int) -> tuple:
    licence = row[licence_at]
    if not licence or _SUPPLEMENTARY_MARK not in licence:
        return row
    values = list(row)
    values[json_at] = cc0_document_json(row[json_at])
    values[licence_at] = CC0
    return tuple(values)


def _left_out(conn: sqlite3.Connection, existing: Sequence[str], selection: Selection) -> dict[str, int]:
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


class _AtomicFile:
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


def _write_error(path: Path, exc: OSError) -> HarvesterError:
    return HarvesterError(f"{path}: cannot write ({exc.strerror or exc})")


def write_csv_table(conn: sqlite3.Connection, table: str, path: Path, selection: Selection,
                    on_progress: ProgressCallback | None = None) -> int:
    """One table as UTF-8 CSV with a header row (RFC 4180 quoting); returns rows written."""
    columns = [name for name, _ in table_columns(conn, table)]
    written = 0
    try:
        with _AtomicFile(path) as partial, open(partial, "w", encoding="utf-8", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(columns)
            for batch in iter_batches(conn, table, columns, selection):
                writer.writerows(batch)
                written += len(batch)
                if on_progress:
                    on_progress(table, written)
    except OSError as exc:
        raise _write_error(path, exc) from None
    return written


def export_csv(db_path: str | Path, out: str | Path, selection: Selection = Selection(),
               on_progress: ProgressCallback | None = None) -> ExportResult:
    """One CSV per table, all from one snapshot of the database."""
    conn = open_source(db_path)
    try:
        out_dir = prepare_out_dir(out)
        with read_snapshot(conn):
            return _export_tables(conn, out_dir, selection, "csv", write_csv_table, on_progress)
    finally:
        conn.close()


def _export_tables(conn: sqlite3.Connection, out_dir: Path, selection: Selection, suffix: str,
                   write_table: Callable[..., int], on_progress: ProgressCallback | None) -> ExportResult:
    existing = existing_tables(conn)
    result = ExportResult(out=out_dir, left_out=_left_out(conn, existing, selection))
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
    return result


# -- Parquet ------------------------------------------------------------------------------------------------

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
        with _AtomicFile(path) as partial, pa.parquet.ParquetWriter(partial, schema, compression="zstd") as writer:
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
        raise _write_error(path, exc) from None
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
            return _export_tables(conn, out_dir, selection, "parquet", write_parquet_table, on_progress)
    finally:
        conn.close()


# -- Datasette ----------------------------------------------------------------------------------------------

def datasette_metadata(db_path: str | Path) -> dict[str, Any]:
    """Datasette metadata (title, licence, source, table and column
    descriptions) for the tables this database has."""
    path = Path(db_path)
    conn = open_source(path)
    try:
        tables = {}
        for table in existing_tables(conn):
            if table not in TABLE_DESCRIPTIONS:
                continue
            descriptions = COLUMN_DESCRIPTIONS[table]
            entry: dict[str, Any] = {
                "title": table.replace("_", " "),
                "description": TABLE_DESCRIPTIONS[table],
                "columns": {name: descriptions[name] for name, _ in table_columns(conn, table)
                            if name in descriptions},
            }
            if table in SUPPLEMENTARY_TABLES:
                entry.update(license=SUPPLEMENTARY_LICENSE, license_url=SUPPLEMENTARY_URL)
            tables[table] = entry
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
            "description": "One row per MusicBrainz entity, upserted; every entity row records fetched_at and source.",
            "tables": tables,
        }},
    }


def write_datasette_metadata(db_path: str | Path, out_file: str | Path) -> Path:
    metadata = datasette_metadata(db_path)
    path = Path(out_file)
    prepare_out_dir(path.parent)
    try:
        with _AtomicFile(path) as partial:
            partial.write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise _write_error(path, exc) from None
    return path


# -- BagIt --------------------------------------------------------------------------------------------------

BAG_FORMATS = ("sqlite", "csv")
_RUNS_LISTED = 50


@dataclass
class Provenance:
    """What the data card and bag-info say about where the data came from."""

    exported_at: str
    row_counts: dict[str, int]
    sources: dict[str, int]  # source column value -> entity rows
    runs: list[dict[str, Any]]
    dump_timestamps: list[str]
    supplementary: bool
    left_out: dict[str, int]
    stripped_documents: int
    payload_format: str
    payload_files: list[str]


def read_provenance(conn: sqlite3.Connection, *, row_counts: dict[str, int], selection: Selection,
                    left_out: dict[str, int], stripped_documents: int, payload_format: str,
                    payload_files: list[str]) -> Provenance:
    existing = existing_tables(conn)
    sources: dict[str, int] = {}
    for table in ENTITY_TABLES:
        if table in existing:
            for source, n in conn.execute(f"SELECT coalesce(source, '(unknown)'), count(*) FROM [{table}] "
                                          "GROUP BY 1 ORDER BY 1"):
                sources[source] = sources.get(source, 0) + n
    conn.row_factory = sqlite3.Row
    try:
        runs = [dict(row) for row in conn.execute("SELECT * FROM harvest_run ORDER BY id")]
    finally:
        conn.row_factory = None
    return Provenance(
        exported_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        row_counts=row_counts, sources=sources, runs=runs, dump_timestamps=dump_timestamps(runs),
        supplementary=selection.supplementary, left_out=left_out, stripped_documents=stripped_documents,
        payload_format=payload_format, payload_files=payload_files,
    )


def dump_timestamps(runs: list[dict[str, Any]]) -> list[str]:
    """Timestamps of imported data dumps, from runs whose args (a JSON object)
    carry `dump_timestamp` (the dump's TIMESTAMP file)."""
    found = []
    for run in runs:
        try:
            args = json.loads(run.get("args") or "")
        except ValueError:
            continue
        if isinstance(args, dict) and args.get("dump_timestamp"):
            found.append(str(args["dump_timestamp"]))
    return sorted(set(found))


def id_ranges(ids: list[int]) -> str:
    """1,2,3,5,7,8 -> '1-3, 5, 7-8': run ids stay short however many runs there were."""
    parts: list[str] = []
    for value in sorted(set(ids)):
        if parts and parts[-1][1] == value - 1:
            parts[-1] = (parts[-1][0], value)
        else:
            parts.append((value, value))
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in parts)


def licence_text(supplementary: bool) -> str:
    if supplementary:
        return (f"Core data {CC0_LICENSE} ({CC0_URL}); supplementary data (tables tag, rating, annotation and "
                f"the fields of document rows marked CC-BY-NC-SA) {SUPPLEMENTARY_LICENSE} ({SUPPLEMENTARY_URL}): "
                "attribution required, NonCommercial use only, ShareAlike.")
    return f"{CC0_LICENSE} ({CC0_URL}): core MusicBrainz data only, no supplementary (CC BY-NC-SA) data."


def bag_info(facts: Provenance) -> dict[str, str | list[str]]:
    info: dict[str, str | list[str]] = {
        "Source-Organization": SOURCE,
        "External-Description": (f"MusicBrainz open metadata harvested into SQLite by mbharvest "
                                 f"({facts.payload_format} payload, {sum(facts.row_counts.values())} rows)."),
        "Bag-Software-Agent": f"mbharvest {__version__} with bagit-python",
        "Export-Date": facts.exported_at,
        "License": licence_text(facts.supplementary),
        "Contains-Supplementary-Data": "yes (CC BY-NC-SA 3.0, NonCommercial)" if facts.supplementary else "no",
        "Attribution": ATTRIBUTION,
        "Payload-Format": facts.payload_format,
        "Row-Count": [f"{table} {n}" for table, n in facts.row_counts.items()],
    }
    if facts.sources:
        info["Data-Source"] = [f"{source} ({n} entity rows)" for source, n in facts.sources.items()]
    if facts.runs:
        info["Harvest-Run-Ids"] = id_ranges([run["id"] for run in facts.runs])
    if facts.dump_timestamps:
        info["Dump-Timestamp"] = facts.dump_timestamps
    return info


def data_card(facts: Provenance) -> str:
    """The README that travels in the bag's payload: what, when, from where,
    how much, under which licence, how to cite and how to verify."""
    total = sum(facts.row_counts.values())
    lines = [
        "# MusicBrainz open metadata: data card",
        "",
        f"Exported {facts.exported_at} by mbharvest {__version__} as {facts.payload_format} "
        f"({', '.join(facts.payload_files)}); {total} rows in {len(facts.row_counts)} tables.",
        "",
        "## What",
        "",
        "Metadata of artists, labels, release groups, releases, media, tracks, recordings and their ISRCs, "
        "harvested from MusicBrainz (the WS/2 web service or its JSON data dumps) and normalized into "
        "one row per entity. No audio.",
        "",
        "## Licence",
        "",
        licence_text(facts.supplementary),
        "",
    ]
    if facts.supplementary:
        lines += ["**This package contains supplementary data under CC BY-NC-SA 3.0: it may not be used "
                  "commercially.** Remove tables tag, rating and annotation (and the document rows whose "
                  "licence names CC-BY-NC-SA) to keep CC0 data only.", ""]
    else:
        lines += ["Supplementary data (tags, genres, ratings, annotations; CC BY-NC-SA 3.0) is not included."]
        if facts.left_out:
            lines.append("Left out of this package: "
                         + ", ".join(f"{table} ({n} rows)" for table, n in facts.left_out.items()) + ".")
        if facts.stripped_documents:
            lines.append(f"{facts.stripped_documents} raw documents were included with their supplementary "
                         "fields removed.")
        lines.append("")
    lines += [
        "## Attribution and citation",
        "",
        ATTRIBUTION + " MusicBrainz asks for attribution even where the licence (CC0) does not require it.",
        "",
        "Cite as:",
        "",
        f"> MusicBrainz contributors. *MusicBrainz database* (subset), MetaBrainz Foundation, "
        f"{SOURCE_URL}. Harvested with mbharvest {__version__}; exported {facts.exported_at[:10]}"
        + (f"; data dump of {', '.join(facts.dump_timestamps)}" if facts.dump_timestamps else "") + ".",
        "",
        "## Where it came from",
        "",
    ]
    if facts.dump_timestamps:
        lines += [f"Data dump timestamp(s): {', '.join(facts.dump_timestamps)}.", ""]
    if facts.sources:
        lines += ["| source | entity rows |", "|---|---:|"]
        lines += [f"| {_cell(source)} | {n} |" for source, n in facts.sources.items()]
        lines.append("")
    if facts.runs:
        lines += [f"Harvest runs ({len(facts.runs)}; ids {id_ranges([run['id'] for run in facts.runs])}):", "",
                  "| id | command | args | started | finished | status |", "|---:|---|---|---|---|---|"]
        for run in facts.runs[-_RUNS_LISTED:]:
            lines.append(f"| {run['id']} | {_cell(run.get('command'))} | {_cell(run.get('args'))} | "
                         f"{_cell(run.get('started_at'))} | {_cell(run.get('finished_at'))} | "
                         f"{_cell(run.get('status'))} |")
        if len(facts.runs) > _RUNS_LISTED:
            lines.append(f"\n(the last {_RUNS_LISTED} runs are listed; all are in the harvest_run table)")
        lines.append("")
    else:
        lines += ["No harvest runs are recorded.", ""]
    lines += ["## Rows per table", "", "| table | rows | what |", "|---|---:|---|"]
    lines += [f"| {table} | {n} | {TABLE_DESCRIPTIONS.get(table, '')} |" for table, n in facts.row_counts.items()]
    lines += [
        "",
        "Column descriptions: `mbharvest export datasette-metadata` writes them as Datasette metadata; the "
        "mbharvest README lists the schema.",
        "",
        "## Verify",
        "",
        "This folder is a BagIt bag (RFC 8493) with SHA-256 manifests. Check that no byte changed:",
        "",
        "    python -m bagit --validate BAG_FOLDER",
        "",
    ]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")[:200]


@dataclass
class BagResult:
    out: Path
    payload_format: str
    row_counts: dict[str, int]
    left_out: dict[str, int]
    stripped_documents: int
    supplementary: bool


def export_bagit(db_path: str | Path, out: str | Path, *, payload_format: str = "sqlite",
                 selection: Selection = Selection(), on_progress: ProgressCallback | None = None) -> BagResult:
    """A BagIt bag holding a consistent copy of the database (or its tables as
    CSV), a data card, and SHA-256 manifests.

    Built in a hidden sibling folder and renamed into place at the end, so a
    bag at `out` is always complete."""
    if payload_format not in BAG_FORMATS:
        raise UsageError(f"unknown bag format {payload_format!r} (known: {', '.join(BAG_FORMATS)})")
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{target}: exists and is not an empty folder; a bag needs a new folder")
    source = open_source(db_path)
    staging = target.parent / f".{target.name}.partial-{os.getpid()}"
    try:
        prepare_out_dir(target.parent)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        if payload_format == "sqlite":
            facts = _sqlite_payload(source, Path(db_path).name, staging, selection)
        else:
            with read_snapshot(source):
                facts = _csv_payload(source, staging, selection, on_progress)
        (staging / "README.md").write_text(data_card(facts), encoding="utf-8")
        bagit.make_bag(str(staging), bag_info=bag_info(facts), checksums=["sha256"])
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    except OSError as exc:
        raise HarvesterError(f"{target}: cannot write the bag ({exc.strerror or exc})") from None
    except (bagit.BagError, sqlite3.DatabaseError) as exc:
        raise HarvesterError(f"{target}: cannot make the bag ({exc})") from None
    finally:
        source.close()
        shutil.rmtree(staging, ignore_errors=True)
    return BagResult(out=target, payload_format=payload_format, row_counts=facts.row_counts,
                     left_out=facts.left_out, stripped_documents=facts.stripped_documents,
                     supplementary=selection.supplementary)


def _csv_payload(conn: sqlite3.Connection, staging: Path, selection: Selection,
                 on_progress: ProgressCallback | None) -> Provenance:
    result = _export_tables(conn, staging, selection, "csv", write_csv_table, on_progress)
    return read_provenance(conn, row_counts=result.row_counts, selection=selection, left_out=result.left_out,
                           stripped_documents=result.stripped_documents, payload_format="csv",
                           payload_files=[path.name for path in result.files])


def _sqlite_payload(source: sqlite3.Connection, name: str, staging: Path, selection: Selection) -> Provenance:
    """Copy the database through SQLite's online backup (a consistent
    snapshot even during a harvest), make the copy a self-contained
    rollback-journal file, and without the opt-in remove supplementary data
    from it (VACUUM so no deleted page keeps it)."""
    path = staging / name
    copy = sqlite3.connect(path, isolation_level=None)
    try:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode = DELETE")
        existing = existing_tables(copy)
        left_out = _left_out(copy, existing, selection)
        stripped = 0 if selection.supplementary else count_supplementary_documents(copy)
        if not selection.supplementary:
            copy.execute("BEGIN")
            for table in SUPPLEMENTARY_TABLES:
                if table in existing:
                    copy.execute(f"DELETE FROM [{table}]")
            if stripped:
                copy.create_function("cc0_document_json", 1, cc0_document_json, deterministic=True)
                copy.execute("UPDATE document SET json = cc0_document_json(json), licence = ? "
                             "WHERE instr(licence, ?) > 0", (CC0, _SUPPLEMENTARY_MARK))
            copy.execute("COMMIT")
            copy.execute("VACUUM")
        known = [*CORE_TABLES, DOCUMENT_TABLE, *(SUPPLEMENTARY_TABLES if selection.supplementary else ())]
        row_counts = {table: count_rows(copy, table) for table in known if table in existing}
        return read_provenance(copy, row_counts=row_counts, selection=selection, left_out=left_out,
                               stripped_documents=stripped, payload_format="sqlite", payload_files=[name])
    finally:
        copy.close()
