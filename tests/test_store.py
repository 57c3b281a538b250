"""The database shape and the write path, on real bodies."""

import sqlite3

import pytest

from harvester.errors import DatabaseError, UsageError
from harvester.normalize import normalize_entity, normalize_isrc_lookup, normalize_page
from harvester.store import ensure_db_shape, open_db, save, save_redirect, table_counts
from harvester.views import SUMMARY_TABLES
from tests.conftest import load_ws2, ws2_index
from tests.test_normalize import EDITED_NULL_COPIES, normalize_body

T0 = "2026-01-01T00:00:00Z"
T1 = "2026-02-01T00:00:00Z"

CONTRACT_COLUMNS = {
    "artist": "id name sort_name type country disambiguation",
    "label": "id name sort_name type country label_code",
    "release_group": "id title primary_type first_release_date artist_credit",
    "release": "id title status date country barcode release_group_id artist_credit",
    "medium": "release_id position format track_count",
    "track": "id release_id medium_position position title length_ms recording_id",
    "recording": "id title length_ms first_release_date video disambiguation artist_credit",
    "recording_isrc": "recording_id isrc",
    "release_label": "release_id label_id catalog_number",
    "artist_credit_name": "entity_type entity_id position artist_id name join_phrase",
    "mbid_redirect": "old_id new_id entity_type",
    "harvest_run": "id command started_at finished_at status requests entities_written",
    # issue 18
    "work": "id title type language disambiguation",
    "work_iswc": "work_id iswc",
    "relationship": "entity_type entity_id target_type target_id type direction",
    "url": "id resource",
    "alias": "entity_type entity_id name sort_name locale type primary",
    "area": "id name type",
    "release_event": "release_id area_id date",
    "event": "id name type", "instrument": "id name type", "place": "id name type", "series": "id name type",
}
CONTRACT_KEYS = {
    "artist": ["id"], "label": ["id"], "release_group": ["id"], "release": ["id"],
    "medium": ["release_id", "position"], "track": ["id"], "recording": ["id"],
    "recording_isrc": ["recording_id", "isrc"], "release_label": ["release_id", "label_id", "catalog_number"],
    "artist_credit_name": ["entity_type", "entity_id", "position"], "mbid_redirect": ["old_id"],
    "harvest_run": ["id"], "work": ["id"], "work_iswc": ["work_id", "iswc"],
    "relationship": ["entity_id", "entity_type", "target_type", "target_id", "link_key"], "url": ["id"],
    "alias": ["entity_type", "entity_id", "position"], "area": ["id"], "release_event": ["release_id", "position"],
    "event": ["id"], "instrument": ["id"], "place": ["id"], "series": ["id"],
}
ENTITY_TABLES = ["artist", "label", "release_group", "release", "medium", "track", "recording",
                 "recording_isrc", "release_label", "artist_credit_name"]


def store_all_fixtures(db, fetched_at=T0):
    for entry in ws2_index():
        if entry["path"] in EDITED_NULL_COPIES:
            continue
        with db.atomic():
            save(db, normalize_body(entry["entity"], entry["kind"], load_ws2(entry["path"])),
                 source="fixtures", fetched_at=fetched_at)


def content(db, exclude=()):
    """Every row of every table, order-independent. Full-text indexes are
    compared by what they index; their shadow tables' internal segment
    layout legitimately changes with every update."""
    tables = [name for name in db.table_names() if "_fts_" not in name]
    return {name: sorted((tuple((k, v) for k, v in row.items() if k not in exclude) for row in db[name].rows), key=repr)
            for name in tables}


def test_contract_tables_keys_and_columns(db):
    for table, columns in CONTRACT_COLUMNS.items():
        assert set(columns.split()) <= set(db[table].columns_dict), table
        assert db[table].pks == CONTRACT_KEYS[table], table
    for table in ("artist", "label", "release_group", "release", "medium", "track", "recording"):
        assert {"fetched_at", "source"} <= set(db[table].columns_dict), table


def test_table_set_is_exactly_the_schema(db):
    base = {name for name in db.table_names() if "_fts" not in name}
    assert base == set(CONTRACT_COLUMNS) | {"document", "tag", "rating", "annotation", "harvest_bookmark",
                                            "harvest_plan", "dump_import", "bulk_load", "dump_sync",
                                            "dump_sync_file", "_sqlite_migrations", *SUMMARY_TABLES}
    assert {"artist_fts", "label_fts", "release_fts", "release_group_fts", "recording_fts",
            "alias_fts"} <= set(db.table_names())


def test_every_id_column_leads_an_index(db):
    for table in db.tables:
        if table.name.startswith("_") or "_fts" in table.name:
            continue
        leading = {index.columns[0] for index in table.indexes}
        leading.add(table.pks[0])
        for column in table.columns_dict:
            # relationship.type_id is the MBID of a relationship type (a few hundred), not of an entity:
            # nothing joins on it, and an index would cost ~15% of the relationship table
            if column.endswith("_id") and (table.name, column) != ("relationship", "type_id"):
                assert column in leading, f"{table.name}.{column} has no index"


def test_foreign_keys_declared(db):
    fks = {(fk.table, fk.column, fk.other_table) for t in db.tables for fk in t.foreign_keys}
    assert {("track", "recording_id", "recording"), ("track", "release_id", "release"),
            ("release", "release_group_id", "release_group"), ("recording_isrc", "recording_id", "recording"),
            ("artist_credit_name", "artist_id", "artist"), ("release_label", "label_id", "label")} <= fks


def test_full_text_search_finds_titles(db):
    store_all_fixtures(db)
    hits = db.execute("SELECT title FROM recording WHERE rowid IN "
                      "(SELECT rowid FROM recording_fts WHERE recording_fts MATCH 'teen spirit')").fetchall()
    assert ("Smells Like Teen Spirit",) in hits


def test_stored_release_matches_the_body(db):
    body = load_ws2("musicbrainz-android/release_lookup.json")
    with db.atomic():
        written = save(db, normalize_entity("release", body), source="api", fetched_at=T0)
    assert written == 1 + 1 + 12 + 1 + 1  # release, its group, 12 recordings, a label, an artist
    assert db["track"].count == 12 and db["recording_isrc"].count == 12
    row = db["release"].get("94ad3a58-a1cc-46a3-acf4-9cb6c1d6f032")
    assert (row["title"], row["barcode"], row["fetched_at"], row["source"]) == ("+", "5052498646524", T0, "api")
    assert db.execute("SELECT count(DISTINCT isrc) FROM recording_isrc").fetchone()[0] == 12
    document = db["document"].get(("release", "94ad3a58-a1cc-46a3-acf4-9cb6c1d6f032"))
    assert '"title":"The A Team"' in document["json"]


def test_storing_the_same_documents_twice_changes_nothing(db):
    store_all_fixtures(db)
    first = content(db)
    store_all_fixtures(db)
    assert content(db) == first
    counts = table_counts(db)
    assert counts["recording"] > 300 and counts["track"] > 700


def test_storing_again_later_changes_only_the_fetch_time(db):
    store_all_fixtures(db, T0)
    first = content(db, exclude=("fetched_at",))
    store_all_fixtures(db, T1)
    assert content(db, exclude=("fetched_at",)) == first
    assert {r["fetched_at"] for r in db["recording"].rows} == {T1}


def test_a_newer_version_updates_and_keeps_what_other_writers_set(db):
    body = load_ws2("musicbrainz-android/release_lookup.json")
    with db.atomic():
        save(db, normalize_entity("release", body), source="api", fetched_at=T0)
    db.execute("UPDATE release SET gone_at = 'marker' WHERE id = ?", [body["id"]])
    # a poorer, newer document: no release-group, no media, a corrected title
    newer = {"id": body["id"], "title": "+ (Deluxe)", "status": "Official"}
    with db.atomic():
        save(db, normalize_entity("release", newer), source="api2", fetched_at=T1)
    row = db["release"].get(body["id"])
    assert row["title"] == "+ (Deluxe)" and row["source"] == "api2"
    assert row["release_group_id"] == "05ce100c-eddf-4967-8d7e-33fc0883fe39"
    assert row["barcode"] == "5052498646524" and row["gone_at"] == "marker"
    assert db["track"].count == 12  # media absent from the newer document: tracks kept


def test_child_sets_are_replaced_when_the_document_carries_them(db):
    doc = {"id": "d6243d55-bb4f-4518-9c1c-d507a5d3843a", "title": "Rot", "isrcs": ["GBAHS1100095", "GBAHS1100199"],
           "artist-credit": [{"name": "A", "joinphrase": " feat. ", "artist": {"id": "a1", "name": "A"}},
                             {"name": "B", "joinphrase": "", "artist": {"id": "b1", "name": "B"}}]}
    with db.atomic():
        save(db, normalize_entity("recording", doc), source="api", fetched_at=T0)
    doc.update(isrcs=["GBAHS1100200"], **{"artist-credit": [{"name": "A", "artist": {"id": "a1", "name": "A"}}]})
    with db.atomic():
        save(db, normalize_entity("recording", doc), source="api", fetched_at=T1)
    assert [r["isrc"] for r in db["recording_isrc"].rows] == ["GBAHS1100200"]
    assert [(r["position"], r["artist_id"]) for r in db["artist_credit_name"].rows] == [(0, "a1")]
    assert db["recording"].get(doc["id"])["artist_credit"] == "A"


def test_recording_context_adds_tracks_without_deleting_the_release_tracks(db):
    with db.atomic():
        save(db, normalize_entity("release", load_ws2("musicbrainz-android/release_lookup.json")),
             source="api", fetched_at=T0)
    recording = {"id": "17eb8cd6-7bb0-4579-90af-dc38c1b3fc6a", "title": "The A Team", "releases": [
        {"id": "94ad3a58-a1cc-46a3-acf4-9cb6c1d6f032", "title": "+", "media": [
            {"position": 1, "format": "CD", "track-count": 12, "track": [
                {"id": "99def906-c09e-37c2-a0df-f0a86cae4d2a", "number": "1", "title": "The A Team",
                 "length": 261000}]}]}]}
    with db.atomic():
        save(db, normalize_entity("recording", recording), source="api", fetched_at=T1)
    assert db["track"].count == 12 and db["medium"].count == 1


def test_isrc_lookup_then_recording_lookup(db):
    with db.atomic():
        save(db, normalize_isrc_lookup(load_ws2("fuzzbin/musicbrainz_isrc_response.json")), source="api", fetched_at=T0)
    assert db.execute("SELECT count(*) FROM recording_isrc WHERE isrc = 'USGF19942501'").fetchone()[0] == 2


def test_browse_page_stores_every_item(db):
    page = normalize_page("release", load_ws2("hqub-musicbrainz/release-browse.json"))
    with db.atomic():
        save(db, page.normalized, source="api", fetched_at=T0)
    assert db["release"].count == 10 and db["document"].count == 10


def test_supplementary_is_not_stored_by_default(db):
    with db.atomic():
        save(db, normalize_entity("artist", load_ws2("hqub-musicbrainz/artist-get.json")), source="api", fetched_at=T0)
    assert (db["tag"].count, db["rating"].count, db["annotation"].count) == (0, 0, 0)
    assert "tags" not in db["document"].get(("artist", "72c536dc-7137-4477-a521-567eeb840fa8"))["json"]


def test_redirects(db):
    save_redirect(db, {"old_id": "old", "new_id": "new", "entity_type": "artist"}, recorded_at=T0)
    assert db["mbid_redirect"].get("old")["new_id"] == "new"


def test_open_db_uses_wal_and_is_idempotent(tmp_path):
    path = tmp_path / "sub" / "x.db"
    db = open_db(path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    applied = [row["name"] for row in db["_sqlite_migrations"].rows]
    db.close()
    db = open_db(path)
    # every migration applied once (0001_initial first; later ones in the order they were added)
    assert [row["name"] for row in db["_sqlite_migrations"].rows] == applied
    assert applied[0] == "0001_initial" and len(set(applied)) == len(applied)
    assert {"0002_dump_import", "0003_views", "0004_harvest_state"} <= set(applied)
    ensure_db_shape(db)


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(tmp_path):
    path = tmp_path / "notes.db"
    path.write_bytes(b"these are my notes, not a database\n" * 100)
    before = path.read_bytes()
    with pytest.raises(UsageError, match="is not an SQLite database") as refused:
        open_db(path)
    assert refused.value.exit_code == 2
    assert path.read_bytes() == before


def test_a_database_path_that_cannot_be_created_is_refused(tmp_path):
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    with pytest.raises(DatabaseError, match="cannot create its folder"):
        open_db(blocker / "x.db")


def test_readers_see_only_committed_pages(tmp_path):
    path = tmp_path / "w.db"
    writer = open_db(path)
    reader = sqlite3.connect(path)
    body = load_ws2("musicbrainz-android/release_lookup.json")
    with writer.atomic():
        save(writer, normalize_entity("release", body), source="api", fetched_at=T0)
        assert reader.execute("SELECT count(*) FROM track").fetchone()[0] == 0
    assert reader.execute("SELECT count(*) FROM track").fetchone()[0] == 12


def _redundant_indexes(db) -> list[tuple[str, str]]:
    """Plain indexes whose columns lead another index of their table (it answers every query they do)."""
    found = []
    for (table,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        indexes = [(name, [row[2] for row in db.execute(f"PRAGMA index_info([{name}])")], unique, partial)
                   for _, name, unique, _, partial in db.execute(f"PRAGMA index_list([{table}])").fetchall()]
        found += [(name, other) for name, columns, unique, partial in indexes if not unique and not partial
                  for other, wider, _, _ in indexes if len(wider) > len(columns) and wider[:len(columns)] == columns]
    return found


def test_no_index_is_the_leading_part_of_another_in_a_new_or_an_upgraded_database(tmp_path):
    import shutil
    from pathlib import Path
    old = tmp_path / "old.db"
    shutil.copy(Path(__file__).parent / "fixtures" / "db" / "mbharvest-0.1.0.db", old)
    conn = sqlite3.connect(old)
    assert _redundant_indexes(conn) == [("idx_recording_isrc_isrc", "idx_recording_isrc_isrc_recording_id")]
    conn.close()
    for path in (tmp_path / "new.db", old):
        db = open_db(path)
        assert _redundant_indexes(db) == [], path.name
        # the statistics' ISRC counts still read an index, not the table
        plan = " ".join(row[3] for row in db.execute(
            "EXPLAIN QUERY PLAN SELECT isrc, count(*) FROM recording_isrc GROUP BY isrc"))
        assert "COVERING INDEX idx_recording_isrc_isrc_recording_id" in plan, plan
        db.close()


def test_opening_a_database_again_keeps_the_locks_of_this_process_s_open_connections(tmp_path):
    """POSIX drops every lock a process holds on a file when it closes any
    descriptor of it: reading the header with open() while connections were
    open let another process's last close checkpoint and delete the -wal
    under them ("database disk image is malformed" on the next read)."""
    import subprocess
    import sys
    path = tmp_path / "mb.db"
    first = open_db(path)
    first.execute("SELECT count(*) FROM artist").fetchone()
    second = open_db(path)  # examines the file while `first` holds its locks
    other = ("import sqlite3, sys\nc = sqlite3.connect(sys.argv[1])\n"
             "c.execute(\"INSERT INTO artist (id, name) VALUES ('a', 'A')\")\nc.commit()\nc.close()\n")
    subprocess.run([sys.executable, "-c", other, str(path)], check=True)
    # another process's close may not think itself the last: this one's connections still hold the file
    assert (tmp_path / "mb.db-wal").exists()
    assert [second.execute("SELECT count(*) FROM artist").fetchone()[0],
            first.execute("SELECT count(*) FROM artist").fetchone()[0], open_db(path).execute(
                "SELECT count(*) FROM artist").fetchone()[0]] == [1, 1, 1]
    first.close()
    second.close()
