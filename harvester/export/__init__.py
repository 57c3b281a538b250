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

One module per concern: `source` (selection, reading, writing files),
`dictionary` (every table and column: type, description, licence),
`datapackage` (a folder of table files and its datapackage.json), `csv`,
`parquet`, `datasette`, `bagit`.
"""

from harvester.export.bagit import Archive, BagResult, dump_timestamps, export_bagit, id_ranges
from harvester.export.csv import export_csv
from harvester.export.datasette import datasette_metadata, write_datasette_metadata
from harvester.export.dictionary import CORE_TABLES, DOCUMENT_TABLE, SUPPLEMENTARY_TABLES
from harvester.export.parquet import export_parquet
from harvester.export.source import ExportResult, Selection

__all__ = [
    "Archive", "BagResult", "CORE_TABLES", "DOCUMENT_TABLE", "ExportResult", "SUPPLEMENTARY_TABLES", "Selection",
    "datasette_metadata", "dump_timestamps", "export_bagit", "export_csv", "export_parquet", "id_ranges",
    "write_datasette_metadata",
]
