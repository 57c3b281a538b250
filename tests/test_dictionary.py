"""The data dictionary describes everything a database holds: a new table or
column (issue 18 adds several) must be declared with a type and a
description before it ships, or this fails."""

import sqlite3

from harvester import store
from harvester.export.dictionary import DICTIONARY, INTERNAL, TYPES

# the declared SQLite type a logical type may sit in
STORED_AS = {"TEXT": "TEXT", "PARTIAL_DATE": "TEXT", "JSON": "TEXT", "TIMESTAMP": "TEXT", "INTEGER": "INTEGER",
             "BOOLEAN": "INTEGER", "REAL": "REAL"}


def test_every_table_view_and_column_of_a_fresh_database_is_described(tmp_path):
    store.open_db(tmp_path / "fresh.db").close()
    conn = sqlite3.connect(tmp_path / "fresh.db")
    names = [name for name, in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")]
    undescribed = [name for name in names if name not in DICTIONARY]
    assert not undescribed, f"declare these in harvester/export/dictionary.py: {undescribed}"
    for name in names:
        columns = [(row[1], row[2]) for row in conn.execute(f"PRAGMA table_info([{name}])")]
        assert [c for c, _ in columns] == list(DICTIONARY[name].columns), name
        for column, declared in columns:
            entry = DICTIONARY[name].columns[column]
            assert entry.type in TYPES and len(entry.description) > 5, (name, column)
            if declared and not name.endswith(("_fts", "_fts_data", "_fts_idx", "_fts_docsize", "_fts_config")):
                assert declared == STORED_AS[entry.type], (name, column, declared, entry.type)
        assert DICTIONARY[name].description
    conn.close()


def test_internal_tables_are_marked_internal():
    for name in ("_sqlite_migrations", "bulk_load", "harvest_bookmark", "dump_import", "summary_isrc",
                 "artist_fts", "artist_fts_data"):
        assert DICTIONARY[name].kind == INTERNAL, name
    for name in store.TABLES_V1:
        assert DICTIONARY[name].kind != INTERNAL, name
