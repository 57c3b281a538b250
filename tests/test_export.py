"""Exports against a database built from real MusicBrainz bodies: every
exported value is compared with the database (read with plain sqlite3) and
with the JSON bodies themselves."""

import csv
import json
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

from datetime import datetime

import bagit
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from click.testing import CliRunner

from harvester import __version__, store
from harvester.cli import cli
from harvester.export import parquet as parquet_export
from harvester.export import source as export_source
from harvester.export.dictionary import DICTIONARY, ENTITY_TABLES
from harvester.export import (
    CORE_TABLES, SUPPLEMENTARY_TABLES, Selection, dump_timestamps, export_bagit, export_csv,
    export_parquet, id_ranges, write_datasette_metadata,
)
from harvester.normalize import SUPPLEMENTARY_KEYS, normalize_entity, normalize_page
from tests.conftest import load_ws2
from tests.duckdb_sqlite import attach

ED_SHEERAN_RELEASE = "94ad3a58-a1cc-46a3-acf4-9cb6c1d6f032"
SOURCE = "https://musicbrainz.org"
LOOKUPS = [
    ("release", "musicbrainz-android/release_lookup.json"),
    ("artist", "musicbrainz-android/artist_lookup.json"),
    ("label", "musicbrainz-android/label_lookup.json"),
    ("release-group", "musicbrainz-android/release-group_lookup.json"),
    ("artist", "picard/artist_arabic.json"),
    ("release", "wrtag/release/21a03203-91a4-4948-ae1e-2d0977f1bdbc.json"),
]
SEARCHES = [("recording", "musicbrainzws2/search/MbRecordingResult.json")]
RUN_ARGS = {"artist": ["b8a7c51f-362c-4dcb-a259-bc6e0095f0a6"], "dump_timestamp": "2025-11-19 00:00:00+00"}


def build_db(path: Path) -> Path:
    """A WAL database from real bodies, supplementary data included (so the
    exports have something to leave out), and one run in the ledger."""
    db = store.open_db(path)
    with db.atomic():
        for entity, body in LOOKUPS:
            store.save(db, normalize_entity(entity, load_ws2(body), supplementary=True),
                       source=SOURCE, fetched_at="2026-01-02T03:04:05Z")
        for entity, body in SEARCHES:
            store.save(db, normalize_page(entity, load_ws2(body), supplementary=True).normalized,
                       source=SOURCE, fetched_at="2026-01-02T03:04:05Z")
        db["harvest_run"].insert({"command": "harvest artist", "args": json.dumps(RUN_ARGS),
                                  "started_at": "2026-01-02T03:00:00Z", "finished_at": "2026-01-02T03:05:00Z",
                                  "status": "finished", "requests": 7, "entities_written": 140})
    db.close()
    return path


@pytest.fixture(scope="module")
def source_db(tmp_path_factory) -> Path:
    return build_db(tmp_path_factory.mktemp("db") / "musicbrainz.db")


def db_rows(db_path: Path, table: str) -> tuple[list[str], list[tuple]]:
    """Columns and rows of a table, read independently of the export code."""
    conn = sqlite3.connect(db_path)
    try:
        columns = [row[1] for row in conn.execute(f"PRAGMA table_info([{table}])")]
        rows = sorted(conn.execute(f"SELECT * FROM [{table}]"), key=repr)
    finally:
        conn.close()
    return columns, rows


def db_count(db_path: Path, table: str, where: str = "1") -> int:
    conn = sqlite3.connect(db_path)
    try:
        return conn.execute(f"SELECT count(*) FROM [{table}] WHERE {where}").fetchone()[0]
    finally:
        conn.close()


def read_csv(path: Path) -> tuple[list[str], list[list[str]]]:
    with open(path, encoding="utf-8", newline="") as fh:
        header, *rows = list(csv.reader(fh))
    return header, rows


def has_supplementary_key(doc) -> bool:
    if isinstance(doc, dict):
        return any(k in SUPPLEMENTARY_KEYS for k in doc) or any(has_supplementary_key(v) for v in doc.values())
    if isinstance(doc, list):
        return any(has_supplementary_key(v) for v in doc)
    return False


def test_fixture_database_has_what_the_tests_need(source_db):
    # the bodies give supplementary rows to leave out and documents carrying them
    assert db_count(source_db, "tag") > 0 and db_count(source_db, "rating") > 0
    assert db_count(source_db, "document", "licence LIKE '%CC-BY-NC-SA%'") > 0
    assert db_count(source_db, "recording") >= 100


# -- CSV ------------------------------------------------------------------------------------------------------

BOOLEAN_COLUMNS = {("artist", "ended"), ("label", "ended"), ("recording", "video"), ("relationship", "ended"),
                   ("alias", "primary"), ("alias", "ended"), ("area", "ended"), ("event", "ended"),
                   ("event", "cancelled"), ("place", "ended")}


def csv_text(table: str, column: str, value) -> str:
    """How the CSV export writes a value: booleans as true/false, NULL and '' both as an empty field
    (read_csv cannot tell them apart; test_csv_keeps_null_apart_from_empty does)."""
    if value is None:
        return ""
    if (table, column) in BOOLEAN_COLUMNS:
        return {0: "false", 1: "true"}[value]
    return str(value)


def test_csv_round_trips_every_core_table(source_db, tmp_path):
    result = export_csv(source_db, tmp_path / "csv")
    assert sorted(p.name for p in result.files) == sorted([f"{t}.csv" for t in CORE_TABLES] + ["datapackage.json"])
    for table in CORE_TABLES:
        columns, rows = db_rows(source_db, table)
        header, exported = read_csv(tmp_path / "csv" / f"{table}.csv")
        assert header == columns
        assert len(exported) == len(rows) == result.row_counts[table]
        as_text = sorted(([csv_text(table, c, v) for c, v in zip(columns, row)] for row in rows), key=repr)
        assert sorted(exported, key=repr) == as_text


DUCKDB_TYPES = {"string": "VARCHAR", "integer": "BIGINT", "number": "DOUBLE", "boolean": "BOOLEAN",
                "datetime": "TIMESTAMPTZ"}


def test_csv_read_back_by_duckdb_with_the_declared_types(source_db, tmp_path):
    """A researcher's reading: DuckDB's read_csv with the types datapackage.json declares (no guessing)."""
    export_csv(source_db, tmp_path, Selection(supplementary=True))
    package = json.loads((tmp_path / "datapackage.json").read_text())
    assert package["profile"] == "tabular-data-package"
    duck = attach(shutil.copy(source_db, tmp_path / "copy.db"))  # skips, saying why, where DuckDB cannot be had
    for resource in package["resources"]:
        table, fields = resource["name"], resource["schema"]["fields"]
        assert resource["dialect"]["header"] and resource["encoding"] == "utf-8"
        types = {f["name"]: DUCKDB_TYPES[f["type"]] for f in fields}
        selected = ", ".join(f'epoch("{n}")' if t == "TIMESTAMPTZ" else f'"{n}"' for n, t in types.items())
        read = duck.execute(f"SELECT {selected} FROM read_csv(?, header = true, columns = {types}, "
                            "allow_quoted_nulls = false, auto_detect = false)", [str(tmp_path / resource["path"])])
        columns, rows = db_rows(source_db, table)
        assert [f["name"] for f in fields] == columns
        kinds = [DICTIONARY[table].columns[c].type for c in columns]
        expected = [tuple(parquet_value(k, v).timestamp() if k == "TIMESTAMP" and v else parquet_value(k, v)
                          for k, v in zip(kinds, row)) for row in rows]
        assert sorted(read.fetchall(), key=repr) == sorted(expected, key=repr), table
    # what the comparison above covered: barcodes with a leading zero, '' (no barcode) and NULL (unknown)
    release_resource = next(r for r in package["resources"] if r["name"] == "release")
    release = {f["name"]: f for f in release_resource["schema"]["fields"]}
    assert release["barcode"]["type"] == "string" and release["date"]["type"] == "string"
    columns, releases = db_rows(source_db, "release")
    stored = [row[columns.index("barcode")] for row in releases]
    assert "" in stored and None in stored and any(b and b.startswith("0") for b in stored)
    duck.close()


def test_export_leaves_the_database_as_it_was(source_db, tmp_path):
    before = source_db.read_bytes()
    export_csv(source_db, tmp_path, Selection(documents=True))
    assert source_db.read_bytes() == before
    assert not Path(f"{source_db}-wal").exists() and not Path(f"{source_db}-shm").exists()


def test_csv_values_match_the_json_bodies(source_db, tmp_path):
    export_csv(source_db, tmp_path)
    release = load_ws2("musicbrainz-android/release_lookup.json")
    header, rows = read_csv(tmp_path / "release.csv")
    by_id = {row[header.index("id")]: dict(zip(header, row)) for row in rows}
    assert by_id[ED_SHEERAN_RELEASE]["title"] == release["title"] == "+"
    assert by_id[ED_SHEERAN_RELEASE]["barcode"] == release["barcode"] == "5052498646524"
    arabic = load_ws2("picard/artist_arabic.json")
    header, rows = read_csv(tmp_path / "artist.csv")
    names = {row[header.index("id")]: row[header.index("name")] for row in rows}
    assert names[arabic["id"]] == arabic["name"] == "محمد منير"
    raw = (tmp_path / "artist.csv").read_bytes()
    assert arabic["name"].encode("utf-8") in raw and not raw.startswith(b"\xef\xbb\xbf")


def test_csv_leaves_supplementary_data_out_unless_asked(source_db, tmp_path):
    result = export_csv(source_db, tmp_path / "cc0", Selection(documents=True))
    assert not any((tmp_path / "cc0" / f"{t}.csv").exists() for t in SUPPLEMENTARY_TABLES)
    assert result.left_out == {t: db_count(source_db, t) for t in SUPPLEMENTARY_TABLES if db_count(source_db, t)}
    header, documents = read_csv(tmp_path / "cc0" / "document.csv")
    assert len(documents) == db_count(source_db, "document")
    assert {row[header.index("licence")] for row in documents} == {"CC0-1.0"}
    assert not any(has_supplementary_key(json.loads(row[header.index("json")])) for row in documents)
    assert result.stripped_documents == db_count(source_db, "document", "licence LIKE '%CC-BY-NC-SA%'")

    full = export_csv(source_db, tmp_path / "all", Selection(documents=True, supplementary=True))
    assert full.left_out == {}
    for table in (*SUPPLEMENTARY_TABLES, "document"):
        columns, rows = db_rows(source_db, table)
        header, exported = read_csv(tmp_path / "all" / f"{table}.csv")
        assert len(exported) == len(rows)
    header, documents = read_csv(tmp_path / "all" / "document.csv")
    assert sum(has_supplementary_key(json.loads(row[header.index("json")])) for row in documents) == \
        db_count(source_db, "document", "licence LIKE '%CC-BY-NC-SA%'")


def test_a_cc0_export_removes_supplementary_files_of_an_earlier_export(source_db, tmp_path):
    export_csv(source_db, tmp_path, Selection(documents=True, supplementary=True))
    assert (tmp_path / "tag.csv").exists() and (tmp_path / "document.csv").exists()
    (tmp_path / "notes.txt").write_text("mine")
    result = export_csv(source_db, tmp_path)
    assert sorted(p.name for p in result.removed) == ["annotation.csv", "document.csv", "rating.csv", "tag.csv"]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([f"{t}.csv" for t in CORE_TABLES]
                                                                + ["notes.txt", "datapackage.json"])
    described = json.loads((tmp_path / "datapackage.json").read_text())
    assert sorted(r["path"] for r in described["resources"]) == sorted(f"{t}.csv" for t in CORE_TABLES)


# -- Parquet --------------------------------------------------------------------------------------------------

def parquet_value(kind: str, value):
    """What a database value becomes in Parquet, by its column's type in the data dictionary."""
    if value is None:
        return None
    if kind == "TIMESTAMP":
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    if kind == "BOOLEAN":
        return {0: False, 1: True}[value]
    if kind == "REAL":
        return float(value)
    return value if kind == "INTEGER" else str(value)


def test_parquet_round_trips_with_the_dictionary_types(source_db, tmp_path):
    result = export_parquet(source_db, tmp_path, Selection(supplementary=True))
    for table in (*CORE_TABLES, *SUPPLEMENTARY_TABLES):
        columns, rows = db_rows(source_db, table)
        exported = pq.read_table(tmp_path / f"{table}.parquet")
        assert exported.column_names == columns
        assert exported.num_rows == len(rows) == result.row_counts[table]
        kinds = [DICTIONARY[table].columns[c].type for c in columns]
        expected = [tuple(parquet_value(k, v) for k, v in zip(kinds, row)) for row in rows]
        assert sorted((tuple(r.values()) for r in exported.to_pylist()), key=repr) == sorted(expected, key=repr)
    recording = pq.read_schema(tmp_path / "recording.parquet")
    assert recording.field("length_ms").type == pa.int64()
    assert recording.field("video").type == pa.bool_()
    assert recording.field("title").type == pa.string()
    assert recording.field("first_release_date").type == pa.string()  # partial dates are not calendar dates
    for table, column in (("recording", "fetched_at"), ("recording", "gone_at"), ("harvest_run", "started_at"),
                          ("mbid_redirect", "recorded_at")):
        assert pq.read_schema(tmp_path / f"{table}.parquet").field(column).type == pa.timestamp("us", tz="UTC")
    assert pq.read_table(tmp_path / "rating.parquet").schema.field("value").type == pa.float64()
    label = pq.read_schema(tmp_path / "label.parquet")
    assert label.field("label_code").type == pa.string() and label.field("ended").type == pa.bool_()
    assert db_count(source_db, "label", "label_code = 'SPREC'") == 1  # a real code that is not a number
    assert recording.metadata[b"license"].startswith(b"CC0 1.0")
    assert recording.field("length_ms").metadata[b"description"] == b"Length in milliseconds (NULL when unknown)."


def test_parquet_types_do_not_depend_on_the_data(tmp_path):
    # an all-NULL or all-numeric label_code, a table with no rows: the same schema as with real values
    db_path = tmp_path / "plain.db"
    db = store.open_db(db_path)
    with db.atomic():
        store.upsert_rows(db, "label", [{"id": "a", "name": "A", "label_code": 7, "ended": 1},
                                        {"id": "b", "name": "B", "label_code": None, "ended": 0}])
    db.close()
    export_parquet(db_path, tmp_path / "out")
    label = pq.read_table(tmp_path / "out" / "label.parquet")
    assert label.schema.field("label_code").type == pa.string()
    assert {r["id"]: (r["label_code"], r["ended"]) for r in label.to_pylist()} == {"a": ("7", True), "b": (None, False)}
    empty = pq.read_schema(tmp_path / "out" / "recording.parquet")
    assert empty.field("video").type == pa.bool_() and empty.field("fetched_at").type == pa.timestamp("us", tz="UTC")


def test_parquet_refuses_a_value_its_type_cannot_hold(tmp_path):
    db_path = tmp_path / "odd.db"
    db = store.open_db(db_path)
    with db.atomic():
        store.upsert_rows(db, "recording", [{"id": "r", "title": "T", "video": 2}])
    db.close()
    result = CliRunner().invoke(cli, ["export", "parquet", "--db", str(db_path), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "recording.video" in result.output and "2 is not 0 or 1" in result.output


def test_large_tables_come_in_row_groups_and_a_dataset_description(source_db, tmp_path, monkeypatch):
    monkeypatch.setattr(parquet_export, "PARQUET_ROW_GROUP", 50)
    monkeypatch.setattr(export_source, "BATCH_ROWS", 10)
    monkeypatch.setattr(parquet_export.write_parquet_table, "__defaults__", (None, 50))
    result = export_parquet(source_db, tmp_path)
    recordings = db_count(source_db, "recording")
    groups = pq.ParquetFile(tmp_path / "recording.parquet").metadata
    assert groups.num_row_groups == -(-recordings // 50) > 1
    full = groups.num_row_groups - 1
    assert [groups.row_group(i).num_rows for i in range(full)] == [50] * full
    described = json.loads((tmp_path / "datapackage.json").read_text())
    assert tmp_path / "datapackage.json" in result.files
    assert {r["name"]: r["path"] for r in described["resources"]} == {t: f"{t}.parquet" for t in CORE_TABLES}
    recording = next(r for r in described["resources"] if r["name"] == "recording")
    assert recording["format"] == "parquet" and recording["schema"]["primaryKey"] == ["id"]
    assert {f["name"]: f["type"] for f in recording["schema"]["fields"]}["fetched_at"] == "datetime"
    assert described["licenses"][0]["path"] == "https://creativecommons.org/publicdomain/zero/1.0/"
    assert described["sources"][0]["path"] == "https://musicbrainz.org/"


def test_parquet_values_match_the_json_bodies(source_db, tmp_path):
    export_parquet(source_db, tmp_path)
    search = load_ws2("musicbrainzws2/search/MbRecordingResult.json")["recordings"]
    lengths = {row["id"]: row["length_ms"] for row in pq.read_table(tmp_path / "recording.parquet").to_pylist()}
    expected = {item["id"]: item.get("length") for item in search}
    assert {rid: lengths[rid] for rid in expected} == expected
    assert all(isinstance(v, int) for v in expected.values() if v is not None)
    releases = {row["id"]: row for row in pq.read_table(tmp_path / "release.parquet").to_pylist()}
    assert (releases[ED_SHEERAN_RELEASE]["title"], releases[ED_SHEERAN_RELEASE]["barcode"]) == ("+", "5052498646524")
    arabic = load_ws2("picard/artist_arabic.json")
    names = {row["id"]: row["name"] for row in pq.read_table(tmp_path / "artist.parquet").to_pylist()}
    assert names[arabic["id"]] == arabic["name"]


def test_parquet_of_an_empty_table_has_its_schema(source_db, tmp_path):
    export_parquet(source_db, tmp_path)
    redirects = pq.read_table(tmp_path / "mbid_redirect.parquet")
    assert redirects.num_rows == 0 and redirects.column_names == ["old_id", "new_id", "entity_type", "recorded_at"]


def test_parquet_without_pyarrow_names_the_extra(source_db, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "pyarrow", None)
    result = CliRunner().invoke(cli, ["export", "parquet", "--db", str(source_db), "--out", str(tmp_path / "p")])
    assert result.exit_code == 1
    assert "mbharvest[parquet]" in result.output
    assert not (tmp_path / "p").exists()


# -- Datasette ------------------------------------------------------------------------------------------------

INTERNAL_TABLES = {"_sqlite_migrations", "bulk_load", "harvest_bookmark", "harvest_plan", "dump_import",
                   "dump_sync", "dump_sync_file"}


def test_datasette_metadata_follows_the_documented_format(source_db, tmp_path):
    path = write_datasette_metadata(source_db, tmp_path / "metadata.json")
    metadata = json.loads(path.read_text(encoding="utf-8"))
    for key in ("title", "description", "license", "license_url", "source", "source_url"):
        assert isinstance(metadata[key], str) and metadata[key]
    assert metadata["license_url"] == "https://creativecommons.org/publicdomain/zero/1.0/"
    assert "MetaBrainz" in metadata["source"] and metadata["source_url"] == "https://musicbrainz.org/"
    assert list(metadata["databases"]) == ["musicbrainz"]  # Datasette names a database after its file stem
    tables = metadata["databases"]["musicbrainz"]["tables"]
    conn = sqlite3.connect(source_db)
    names = {name for name, in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    assert set(tables) == names
    for name in names:
        present = {row[1] for row in conn.execute(f"PRAGMA table_info([{name}])")}
        assert tables[name]["description"] and set(tables[name]["columns"]) == present, name
    conn.close()
    for name in ("recording_with_isrcs", "releases_per_year", "isrc_summary", "recording_length_histogram"):
        assert "hidden" not in tables[name] and tables[name]["description"]
    for name in INTERNAL_TABLES | {"summary_isrc", "artist_fts", "artist_fts_data"}:
        assert tables[name]["hidden"] is True, name
    for name in store.TABLES_V1:
        assert "hidden" not in tables[name], name
    for name in SUPPLEMENTARY_TABLES:
        assert tables[name]["license"] == "CC BY-NC-SA 3.0"
        assert tables[name]["license_url"] == "https://creativecommons.org/licenses/by-nc-sa/3.0/"
    assert "license" not in tables["recording"]
    dates = {(t, c) for t, entry in DICTIONARY.items() for c, column in entry.columns.items()
             if column.type in ("PARTIAL_DATE", "TIMESTAMP")}
    faceted = {(t, c) for t, entry in tables.items() for c in entry.get("facets", ())}
    assert faceted and not faceted & dates and ("release", "status") in faceted
    queries = metadata["databases"]["musicbrainz"]["queries"]
    assert {f"c{n}" for n in range(1, 9)} <= {name.split("_")[0] for name in queries}


def test_datasette_metadata_cli_default_is_next_to_the_database(source_db, tmp_path):
    db_path = tmp_path / "data" / "musicbrainz.db"
    db_path.parent.mkdir()
    db_path.write_bytes(source_db.read_bytes())
    result = CliRunner().invoke(cli, ["export", "datasette-metadata", "--db", str(db_path)])
    assert result.exit_code == 0, result.output
    assert json.loads((tmp_path / "data" / "metadata.json").read_text())["databases"]["musicbrainz"]["tables"]


# -- BagIt ----------------------------------------------------------------------------------------------------

def bag_info_lines(bag_dir: Path) -> list[str]:
    return (bag_dir / "bag-info.txt").read_text(encoding="utf-8").splitlines()


def validates_on_the_command_line(bag_dir: Path) -> bool:
    return subprocess.run([sys.executable, "-m", "bagit", "--validate", "--quiet", str(bag_dir)],
                          capture_output=True).returncode == 0


def test_bag_of_the_database_validates_and_detects_one_changed_byte(source_db, tmp_path):
    bag_dir = tmp_path / "bag"
    export_bagit(source_db, bag_dir)
    bag = bagit.Bag(str(bag_dir))
    bag.validate()
    assert validates_on_the_command_line(bag_dir)
    assert "sha256" in bag.algorithms
    assert sorted(p.name for p in (bag_dir / "data").iterdir()) == [
        "README.md", "data-dictionary.json", "data-dictionary.md", "musicbrainz.db"]
    assert (bag_dir / "bagit.txt").read_text() == "BagIt-Version: 1.0\nTag-File-Character-Encoding: UTF-8\n"
    assert bag.version_info == (1, 0)

    copy = bag_dir / "data" / "musicbrainz.db"
    for table in CORE_TABLES:
        assert db_rows(copy, table) == db_rows(source_db, table)
    conn = sqlite3.connect(copy)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "delete"  # one self-contained file
    conn.close()

    data = bytearray(copy.read_bytes())
    data[len(data) // 2] ^= 0x01
    copy.write_bytes(bytes(data))
    with pytest.raises(bagit.BagValidationError):
        bagit.Bag(str(bag_dir)).validate()
    assert not validates_on_the_command_line(bag_dir)


def test_bag_data_card_and_bag_info_carry_licence_counts_and_provenance(source_db, tmp_path):
    bag_dir = tmp_path / "bag"
    export_bagit(source_db, bag_dir)
    card = (bag_dir / "data" / "README.md").read_text(encoding="utf-8")
    assert "CC0 1.0" in card and "https://creativecommons.org/publicdomain/zero/1.0/" in card
    assert "MetaBrainz Foundation" in card and "Cite as" in card
    for table in CORE_TABLES:
        assert f"| {table} | {db_count(source_db, table)} |" in card
    assert "harvest artist" in card and "b8a7c51f-362c-4dcb-a259-bc6e0095f0a6" in card
    assert f"| {SOURCE} | {sum(db_count(source_db, t) for t in ENTITY_TABLES)} |" in card
    assert "2025-11-19 00:00:00+00" in card
    info = bag_info_lines(bag_dir)
    assert not any(line.startswith(("Source-Organization", "Contact-")) for line in info)  # none configured
    assert "Data-Origin: MusicBrainz (MetaBrainz Foundation), https://musicbrainz.org/" in info
    assert f"Bag-Software-Agent: mbharvest {__version__} with bagit-python {bagit.VERSION}" in info
    assert any(line.startswith("External-Description: ") for line in info)
    assert f"Row-Count: recording {db_count(source_db, 'recording')}" in info
    assert "Harvest-Run-Ids: 1" in info and "Dump-Timestamp: 2025-11-19 00:00:00+00" in info
    assert "Contains-Supplementary-Data: no" in info


def test_bag_data_dictionary_lists_every_table_and_column(source_db, tmp_path):
    export_bagit(source_db, tmp_path / "bag")
    copy = tmp_path / "bag" / "data" / "musicbrainz.db"
    conn = sqlite3.connect(copy)
    truth = {name: [row[1] for row in conn.execute(f"PRAGMA table_info([{name}])")]
             for name, in conn.execute("SELECT name FROM sqlite_master WHERE type IN ('table', 'view')")}
    conn.close()
    entries = json.loads((tmp_path / "bag" / "data" / "data-dictionary.json").read_text())
    assert {e["name"]: [c["name"] for c in e["columns"]] for e in entries} == truth
    assert all(c["description"] != "(not described)" for e in entries for c in e["columns"])
    recording = next(e for e in entries if e["name"] == "recording")
    assert {c["name"]: (c["type"], c["sqlite_type"]) for c in recording["columns"]}["video"] == ("BOOLEAN", "INTEGER")
    markdown = (tmp_path / "bag" / "data" / "data-dictionary.md").read_text()
    for name, columns in truth.items():
        assert f"## {name} (" in markdown
        assert all(f"| {column} | " in markdown for column in columns)


def test_bag_provenance_is_complete_and_names_the_archive(tmp_path):
    db_path = build_db(tmp_path / "prov.db")
    long_args = {"keys": [f"{i:08d}-0000-4000-8000-000000000000" for i in range(40)]}
    sync_args = {"dump_timestamp": "2025-11-22T00:00:52Z", "archives": [
        {"entity": "release", "dump_url": "https://dumps.example/20251122-001/release.tar.xz", "sha256": "ab" * 32},
        {"entity": "recording", "dump_url": "https://dumps.example/20251122-001/recording.tar.xz",
         "sha256": "cd" * 32}]}
    conn = sqlite3.connect(db_path)
    with conn:
        for command, args in (("harvest recording", long_args), ("sync-dumps", sync_args)):
            conn.execute("INSERT INTO harvest_run (command, args, started_at, status) VALUES (?, ?, ?, 'finished')",
                         (command, json.dumps(args), "2026-01-03T00:00:00Z"))
    conn.close()
    config = tmp_path / "mbharvest.toml"
    config.write_text('[archive]\norganization = "Example Sound Archive"\ncontact_name = "A. Archivist"\n'
                      'contact_email = "archive@example.org"\n')
    result = CliRunner().invoke(cli, ["export", "bagit", "--config", str(config), "--db", str(db_path),
                                      "--out", str(tmp_path / "bag"), "--contact-name", "B. Keeper"])
    assert result.exit_code == 0, result.output
    info = bag_info_lines(tmp_path / "bag")
    assert "Source-Organization: Example Sound Archive" in info and "Contact-Email: archive@example.org" in info
    assert "Contact-Name: B. Keeper" in info  # the option wins over the config
    assert "Data-Origin: MusicBrainz (MetaBrainz Foundation), https://musicbrainz.org/" in info
    for dump in sync_args["archives"]:
        assert f"Dump-URL: {dump['dump_url']} sha256:{dump['sha256']}" in info
    card = (tmp_path / "bag" / "data" / "README.md").read_text(encoding="utf-8")
    assert json.dumps(long_args) in card and json.dumps(sync_args) in card  # never cut
    assert all(dump["dump_url"] in card and dump["sha256"] in card for dump in sync_args["archives"])
    assert "Example Sound Archive" in card and f"mbharvest {__version__}" in card
    assert validates_on_the_command_line(tmp_path / "bag")


def test_reading_a_bags_database_leaves_the_bag_valid_byte_for_byte(source_db, tmp_path):
    """stats, report, runs and every export on the bag's own database: the
    file's bytes and the payload folder are unchanged, and the bag validates."""
    bag_dir = tmp_path / "bag"
    export_bagit(source_db, bag_dir)
    copy = bag_dir / "data" / "musicbrainz.db"
    before = {path.name: path.read_bytes() for path in (bag_dir / "data").iterdir()}
    elsewhere = tmp_path / "elsewhere"
    for command in (["stats"], ["stats", "--json"], ["runs"], ["report", "--out", str(elsewhere / "report")],
                    ["export", "csv", "--out", str(elsewhere / "csv")],
                    ["export", "parquet", "--out", str(elsewhere / "parquet")],
                    ["export", "datasette-metadata", "--out", str(elsewhere / "metadata.json")],
                    ["export", "bagit", "--out", str(elsewhere / "bag")]):
        result = CliRunner().invoke(cli, [*command, "--db", str(copy)])
        assert result.exit_code == 0, (command, result.output)
        assert {path.name: path.read_bytes() for path in (bag_dir / "data").iterdir()} == before, command
    bagit.Bag(str(bag_dir)).validate()
    assert validates_on_the_command_line(bag_dir)


def test_bag_leaves_supplementary_data_out_by_default(source_db, tmp_path):
    bag_dir = tmp_path / "bag"
    result = export_bagit(source_db, bag_dir)
    copy = bag_dir / "data" / "musicbrainz.db"
    assert all(db_count(copy, t) == 0 for t in SUPPLEMENTARY_TABLES)
    assert result.left_out["tag"] == db_count(source_db, "tag")
    assert db_count(copy, "document") == db_count(source_db, "document")
    _, documents = db_rows(copy, "document")
    assert not any(has_supplementary_key(json.loads(row[2])) for row in documents)
    assert {row[3] for row in documents} == {"CC0-1.0"}
    # VACUUMed: no free page keeps the deleted rows' bytes
    conn = sqlite3.connect(copy)
    assert conn.execute("PRAGMA freelist_count").fetchone()[0] == 0
    conn.close()
    card = (bag_dir / "data" / "README.md").read_text(encoding="utf-8")
    assert "not included" in card and f"tag ({db_count(source_db, 'tag')} rows)" in card


def test_bag_with_supplementary_data_says_so(source_db, tmp_path):
    bag_dir = tmp_path / "bag"
    export_bagit(source_db, bag_dir, payload_format="csv", selection=Selection(supplementary=True))
    bagit.Bag(str(bag_dir)).validate()
    for table in SUPPLEMENTARY_TABLES:
        assert len(read_csv(bag_dir / "data" / f"{table}.csv")[1]) == db_count(source_db, table)
    card = (bag_dir / "data" / "README.md").read_text(encoding="utf-8")
    assert "CC BY-NC-SA 3.0" in card and "NonCommercial" in card and "may not be used commercially" in card
    info = bag_info_lines(bag_dir)
    assert any(line.startswith("License: ") and "CC BY-NC-SA 3.0" in line and "NonCommercial" in line
               for line in info)
    assert "Contains-Supplementary-Data: yes (CC BY-NC-SA 3.0, NonCommercial)" in info
    assert f"Row-Count: tag {db_count(source_db, 'tag')}" in info


def test_bag_of_csv_round_trips(source_db, tmp_path):
    bag_dir = tmp_path / "bag"
    export_bagit(source_db, bag_dir, payload_format="csv")
    assert validates_on_the_command_line(bag_dir)
    for table in CORE_TABLES:
        header, exported = read_csv(bag_dir / "data" / f"{table}.csv")
        assert len(exported) == db_count(source_db, table)
    assert not (bag_dir / "data" / "tag.csv").exists()


def test_bag_copies_committed_rows_still_in_the_write_ahead_log(tmp_path):
    db_path = build_db(tmp_path / "live.db")
    writer = sqlite3.connect(db_path)
    writer.execute("PRAGMA wal_autocheckpoint = 0")
    writer.execute("INSERT INTO artist (id, name) VALUES ('wal-only', 'Only In The WAL')")
    writer.commit()  # committed, not checkpointed: the main file alone lacks it
    assert Path(f"{db_path}-wal").stat().st_size > 0
    export_bagit(db_path, tmp_path / "bag")
    writer.close()
    copy = tmp_path / "bag" / "data" / "live.db"
    assert db_count(copy, "artist", "id = 'wal-only'") == 1
    assert not Path(f"{copy}-wal").exists()
    bagit.Bag(str(tmp_path / "bag")).validate()


def test_bag_refuses_a_folder_with_files(source_db, tmp_path):
    (tmp_path / "bag").mkdir()
    (tmp_path / "bag" / "keep.txt").write_text("mine")
    result = CliRunner().invoke(cli, ["export", "bagit", "--db", str(source_db), "--out", str(tmp_path / "bag")])
    assert result.exit_code == 2 and "not an empty folder" in result.output
    assert [p.name for p in (tmp_path / "bag").iterdir()] == ["keep.txt"]


# -- command line and errors ----------------------------------------------------------------------------------

def test_cli_csv_says_what_it_left_out(source_db, tmp_path):
    result = CliRunner().invoke(cli, ["--db", str(source_db), "export", "csv", "--out", str(tmp_path / "c"), "-v"])
    assert result.exit_code == 0, result.output
    assert "left out supplementary data" in result.stderr and "--include-supplementary-data" in result.stderr
    assert f"{sum(db_count(source_db, t) for t in CORE_TABLES):,} rows in {len(CORE_TABLES)} tables" in result.stdout
    quiet = CliRunner().invoke(cli, ["export", "csv", "--db", str(source_db), "--out", str(tmp_path / "q"),
                                     "--include-supplementary-data"])
    assert quiet.exit_code == 0 and quiet.stdout == "" and quiet.stderr == ""
    assert (tmp_path / "q" / "tag.csv").exists()


@pytest.mark.parametrize("command", [["csv", "--out", "x"], ["parquet", "--out", "x"], ["bagit", "--out", "x"],
                                     ["datasette-metadata"]])
def test_missing_database_is_a_usage_error_and_is_not_created(tmp_path, command):
    missing = tmp_path / "none.db"
    result = CliRunner().invoke(cli, ["export", *command, "--db", str(missing)])
    assert result.exit_code == 2
    assert "no database at" in result.output
    assert not missing.exists()


def test_unwritable_output_folder_is_a_clear_error(source_db, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    for command in (["csv"], ["bagit"]):
        result = CliRunner().invoke(cli, ["export", *command, "--db", str(source_db), "--out", str(blocker / "out")])
        assert result.exit_code == 2, result.output
        assert str(blocker) in result.output and "Traceback" not in result.output


def test_not_an_mbharvest_database(tmp_path):
    other = tmp_path / "other.db"
    sqlite3.connect(other).execute("CREATE TABLE t (x)").connection.close()
    result = CliRunner().invoke(cli, ["export", "csv", "--db", str(other), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and "not an mbharvest database" in result.output


# -- pure pieces ----------------------------------------------------------------------------------------------

def test_id_ranges():
    assert id_ranges([5, 1, 2, 3, 8, 7, 10]) == "1-3, 5, 7-8, 10"
    assert id_ranges([]) == ""


def test_dump_timestamps_come_from_run_args():
    runs = [{"args": json.dumps({"dump_timestamp": "2025-11-19"})}, {"args": "not json"}, {"args": None},
            {"args": json.dumps(["x"])}, {"args": json.dumps({"dump_timestamp": "2025-11-19"})}]
    assert dump_timestamps(runs) == ["2025-11-19"]
