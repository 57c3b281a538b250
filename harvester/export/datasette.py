"""Datasette metadata: title, licence, source, and descriptions of the tables
and columns this database has."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from harvester.export.dictionary import (
    ATTRIBUTION, CC0_LICENSE, CC0_URL, COLUMN_DESCRIPTIONS, SOURCE, SOURCE_URL, SUPPLEMENTARY_LICENSE,
    SUPPLEMENTARY_TABLES, SUPPLEMENTARY_URL, TABLE_DESCRIPTIONS,
)
from harvester.export.source import (
    AtomicFile, write_error, existing_tables, open_source, prepare_out_dir, table_columns,
)


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
        with AtomicFile(path) as partial:
            partial.write_text(json.dumps(metadata, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    except OSError as exc:
        raise write_error(path, exc) from None
    return path
