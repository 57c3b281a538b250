"""The researcher views and the summary tables behind them.

Truth is computed in Python from the base tables' rows (or the JSON bodies),
never from the views' own SQL: the summaries must equal a recount after any
sequence of writes, the views must say what their definitions promise, and
DuckDB's SQLite scanner must read every view and table as SQLite does.
"""

import json
import re
import shutil
import sqlite3
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harvester import store
from harvester.normalize import normalize_entity
from harvester.stats import reference_year
from harvester.views import ALL_VIEWS, COUNTERS, SUMMARY_TABLES, VIEWS, rebuild_summaries
from tests.conftest import FIXTURES
from tests.duckdb_sqlite import attach
from tests.test_export import build_db

GONE = "2026-02-01T00:00:00Z"


def rows(db_path_or_conn, sql: str) -> list[tuple]:
    conn = sqlite3.connect(db_path_or_conn) if isinstance(db_path_or_conn, Path) else db_path_or_conn
    try:
        return conn.execute(sql).fetchall()
    finally:
        if isinstance(db_path_or_conn, Path):
            conn.close()


def year_of(date):
    return date[:4] if date and re.match(r"\d{4}", date) else "unknown"


def truth(conn) -> dict[str, Counter]:
    """Every summary, recounted in Python from the base rows (counts above zero only)."""
    recordings = {rid: (length, gone)
                  for rid, length, gone in rows(conn, "SELECT id, length_ms, gone_at FROM recording")}
    gone_recordings = {rid for rid, (_, gone) in recordings.items() if gone}
    live_pairs = [(rid, isrc) for rid, isrc in rows(conn, "SELECT recording_id, isrc FROM recording_isrc")
                  if rid not in gone_recordings]
    per_isrc = Counter(isrc for _, isrc in live_pairs)
    return {
        "summary_recording_length": Counter((length // 5000 if length and length > 0 else -1,)
                                            for length, gone in recordings.values() if not gone),
        "summary_release_year": Counter((year_of(date),)
                                        for date, gone in rows(conn, "SELECT date, gone_at FROM release") if not gone),
        "summary_release_group_year": Counter(
            (year_of(date), kind or "(none)")
            for date, kind, gone in rows(conn, "SELECT first_release_date, primary_type, gone_at FROM release_group")
            if not gone),
        "summary_isrc": Counter({(isrc,): n for isrc, n in per_isrc.items()}),
        "summary_isrc_country": Counter((isrc[:2], isrc[5:7]) for isrc in per_isrc),
    }


def summaries(conn) -> dict[str, Counter]:
    found = {}
    for counter in COUNTERS:
        keys = ", ".join(counter.key)
        found[counter.table] = Counter({tuple(row[:-1]): row[-1] for row in rows(
            conn, f"SELECT {keys}, {counter.count} FROM {counter.table} WHERE {counter.count} > 0")})
    return found


def test_every_summary_has_a_counter_and_a_view_reads_it():
    assert set(SUMMARY_TABLES) == {c.table for c in COUNTERS}
    for table in SUMMARY_TABLES:
        assert any(table in sql for sql in VIEWS.values()), table


# -- the summaries stay equal to a recount, whoever writes ---------------------------------------------------

RECORDING_IDS = [f"00000000-0000-4000-8000-00000000000{i}" for i in range(4)]
RELEASE_IDS = [f"00000000-0000-4000-9000-00000000000{i}" for i in range(3)]
GROUP_IDS = [f"00000000-0000-4000-a000-00000000000{i}" for i in range(2)]
ISRCS = ["GBAYE0000001", "GBAYE9900002", "USRC11700003", "DEA120000004"]
lengths = st.one_of(st.none(), st.just(0), st.integers(1, 600_000))
dates = st.sampled_from([None, "", "1999", "2023-05", "2023-05-01", "0000", "junk"])

operations = st.one_of(
    st.tuples(st.just("save recording"), st.sampled_from(RECORDING_IDS), lengths,
              st.lists(st.sampled_from(ISRCS), unique=True, max_size=3)),
    st.tuples(st.just("gone"), st.sampled_from(["recording", "release", "release_group"]),
              st.integers(0, 3), st.booleans()),
    st.tuples(st.just("delete"), st.sampled_from(["recording", "release", "release_group"]), st.integers(0, 3)),
    st.tuples(st.just("delete pair"), st.sampled_from(RECORDING_IDS), st.sampled_from(ISRCS)),
    st.tuples(st.just("move pair"), st.sampled_from(RECORDING_IDS), st.sampled_from(ISRCS)),
    st.tuples(st.just("save release"), st.sampled_from(RELEASE_IDS), dates, st.sampled_from(GROUP_IDS),
              st.sampled_from([None, "Album", "Single"]), dates),
)


def apply(db, operation) -> None:
    kind = operation[0]
    with db.atomic():
        if kind == "save recording":
            _, rid, length, isrcs = operation
            body = {"id": rid, "title": "T", "length": length, "video": False, "isrcs": isrcs}
            store.save(db, normalize_entity("recording", body), source="test", fetched_at="2026-01-01T00:00:00Z")
        elif kind == "save release":
            _, rid, date, gid, primary_type, first = operation
            body = {"id": rid, "title": "R", "date": date, "release-group": {
                "id": gid, "title": "G", "primary-type": primary_type, "first-release-date": first}}
            store.save(db, normalize_entity("release", body), source="test", fetched_at="2026-01-01T00:00:00Z")
        elif kind == "gone":
            _, table, index, gone = operation
            ids = {"recording": RECORDING_IDS, "release": RELEASE_IDS, "release_group": GROUP_IDS}[table]
            db.execute(f"UPDATE [{table}] SET gone_at = ? WHERE id = ?",
                       [GONE if gone else None, ids[index % len(ids)]])
        elif kind == "delete":
            _, table, index = operation
            ids = {"recording": RECORDING_IDS, "release": RELEASE_IDS, "release_group": GROUP_IDS}[table]
            db.execute(f"DELETE FROM [{table}] WHERE id = ?", [ids[index % len(ids)]])
        elif kind == "delete pair":
            db.execute("DELETE FROM recording_isrc WHERE recording_id = ? AND isrc = ?", list(operation[1:]))
        elif kind == "move pair":  # a hand-written UPDATE of a key column
            db.execute("UPDATE OR IGNORE recording_isrc SET recording_id = ? WHERE isrc = ?", list(operation[1:]))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(operations, min_size=1, max_size=25))
def test_summaries_equal_a_recount_after_any_writes(tmp_path, ops):
    db = store.open_db(tmp_path / f"s{abs(hash(str(ops)))}.db")
    try:
        for operation in ops:
            apply(db, operation)
        assert summaries(db.conn) == truth(db.conn)
    finally:
        db.close()


def start_0_1_0_bulk_load(db, tables: list[str]) -> None:
    """What mbharvest 0.1.0's import did to empty tables before loading them:
    their secondary indexes and triggers dropped, each recorded in bulk_load."""
    marks = ", ".join("?" for _ in tables)
    for name, kind, table, sql in db.execute(
            f"SELECT name, type, tbl_name, sql FROM sqlite_master WHERE tbl_name IN ({marks}) "
            "AND type IN ('index', 'trigger') AND sql IS NOT NULL", tables).fetchall():
        db.execute("INSERT INTO bulk_load (name, type, table_name, sql, pid, started_at) VALUES (?, ?, ?, ?, ?, ?)",
                   [name, kind, table, sql, 999_999_999, "2026-01-01T00:00:00Z"])
        db.execute(f'DROP {kind.upper()} "{name}"')


def test_a_bulk_load_left_by_0_1_0_recounts_when_it_finishes(tmp_path):
    db = store.open_db(tmp_path / "bulk.db")
    with db.atomic():
        start_0_1_0_bulk_load(db, ["recording", "recording_isrc"])
        for i, rid in enumerate(RECORDING_IDS):  # written while the summary triggers are gone
            body = {"id": rid, "title": "T", "length": 60_000 * (i + 1), "isrcs": ISRCS[i:i + 2]}
            store.save(db, normalize_entity("recording", body), source="dump", fetched_at="2026-01-01T00:00:00Z")
        db.execute("UPDATE recording SET gone_at = ? WHERE id = ?", [GONE, RECORDING_IDS[0]])
    assert summaries(db.conn)["summary_recording_length"] == Counter()
    with db.atomic():
        store.finish_bulk_load(db)
    assert summaries(db.conn) == truth(db.conn)
    assert sum(summaries(db.conn)["summary_recording_length"].values()) == 3
    # ISRCS[0] is only on the gone recording: a recount does not list it (nor at 0); ISRCS[1] keeps its live one
    assert dict(db.execute("SELECT isrc, recordings FROM summary_isrc WHERE isrc IN (?, ?)", ISRCS[:2]).fetchall()) \
        == {ISRCS[1]: 1}
    with db.atomic():  # and the triggers are back
        db.execute("UPDATE recording SET gone_at = NULL WHERE id = ?", [RECORDING_IDS[0]])
    assert summaries(db.conn) == truth(db.conn)
    db.close()


def test_a_dump_import_leaves_the_summaries_equal_to_a_recount(tmp_path):
    """Tables a dump import builds beside and swaps in never fire the summary
    triggers (recounted at the swap); tables it merges in place do fire them."""
    from benchmarks.release_dump import ReleaseDump
    from harvester.dumps import ImportOptions, import_dumps

    def lines(name: str, docs: list[dict]) -> Path:
        path = tmp_path / name
        path.write_bytes(b"".join(json.dumps(doc).encode() + b"\n" for doc in docs))
        return path

    releases = list(ReleaseDump(150, seed=5).documents())
    db = store.open_db(tmp_path / "imported.db")
    import_dumps(db, [lines("release.jsonl", releases)], ImportOptions(entity_type="release",
                                                                      timestamp="2025-11-22T00:00:52Z"))
    imported = summaries(db.conn)
    assert imported == truth(db.conn) and sum(imported["summary_recording_length"].values()) > 500
    nested = [track["recording"] for release in releases for medium in release["media"]
              for track in medium["tracks"]][:5]
    changed = [{**recording, "length": 3_600_000 + n, "isrcs": [f"GBAAA26{n:05d}"]}
               for n, recording in enumerate(nested)]  # an hour long each, with a new ISRC
    import_dumps(db, [lines("recording.jsonl", changed)], ImportOptions(entity_type="recording",
                                                                        timestamp="2025-11-26T00:00:48Z"))
    assert summaries(db.conn) == truth(db.conn)
    assert summaries(db.conn)["summary_recording_length"][(720,)] == len({r["id"] for r in changed})
    db.close()


def test_rebuild_touches_only_the_summaries_of_the_tables_named(tmp_path):
    db = store.open_db(tmp_path / "r.db")
    with db.atomic():
        assert rebuild_summaries(db, {"release"}) == ["summary_release_year"]
        assert rebuild_summaries(db, {"recording"}) == [
            "summary_recording_length", "summary_isrc", "summary_isrc_country"]
    db.close()


# -- the views say what they promise ------------------------------------------------------------------------

@pytest.fixture(scope="module")
def views_db(tmp_path_factory) -> Path:
    """Real MusicBrainz bodies, with a recording and a release marked gone."""
    path = build_db(tmp_path_factory.mktemp("views") / "musicbrainz.db")
    conn = sqlite3.connect(path)
    with conn:
        gone_recording = conn.execute("SELECT min(recording_id) FROM recording_isrc").fetchone()[0]
        conn.execute("UPDATE recording SET gone_at = ? WHERE id = ?", (GONE, gone_recording))
        conn.execute("UPDATE release SET gone_at = ? WHERE id = (SELECT min(id) FROM release WHERE date IS NOT NULL)",
                     (GONE,))
    conn.close()
    return path


def test_views_give_what_their_definitions_promise(views_db):
    recordings = rows(views_db, "SELECT id, length_ms, gone_at FROM recording")
    live = {rid: length for rid, length, gone in recordings if not gone}
    gone = {rid for rid, _, g in recordings if g}
    assert gone and live
    pairs = rows(views_db, "SELECT recording_id, isrc FROM recording_isrc")

    histogram = Counter(length // 5000 * 5000 for length in live.values() if length and length > 0)
    assert rows(views_db, "SELECT * FROM recording_length_histogram") == [
        (start, start + 5000, n) for start, n in sorted(histogram.items())]

    releases = rows(views_db, "SELECT date, gone_at FROM release")
    per_year = Counter(year_of(date) for date, g in releases if not g)
    assert rows(views_db, "SELECT * FROM releases_per_year") == sorted(per_year.items())
    assert sum(per_year.values()) == len(releases) - 1

    groups = rows(views_db, "SELECT first_release_date, primary_type FROM release_group WHERE gone_at IS NULL")
    per_type = Counter((year_of(d), t or "(none)") for d, t in groups)
    assert rows(views_db, "SELECT * FROM release_groups_per_year") == [(*k, n) for k, n in sorted(per_type.items())]

    by_isrc: dict[str, list[str]] = {}
    for rid, isrc in pairs:
        if rid not in gone:
            by_isrc.setdefault(isrc, []).append(rid)
    year = datetime.now(timezone.utc).year
    assert sorted(rows(views_db, "SELECT * FROM isrc_summary")) == sorted(
        (isrc, isrc[:2], isrc[2:5], reference_year(isrc[5:7], year), len(ids), " ".join(sorted(ids)))
        for isrc, ids in by_isrc.items())
    countries = Counter(isrc[:2] for isrc in by_isrc)
    assert rows(views_db, "SELECT * FROM isrc_countries") == sorted(countries.items(), key=lambda i: (-i[1], i[0]))

    with_isrcs = {row[0]: row for row in rows(views_db, "SELECT * FROM recording_with_isrcs")}
    assert set(with_isrcs) == set(live)
    for rid, length in live.items():
        own = sorted(isrc for r, isrc in pairs if r == rid)
        shown = f"{length // 60000}:{length // 1000 % 60:02d}" if length and length > 0 else None
        assert with_isrcs[rid][4] == shown and with_isrcs[rid][-2:] == (len(own), " ".join(own) or None)


def test_duckdb_reads_every_view_and_table_as_sqlite_does(views_db):
    """What issue 15 found broken: integer division, printf, NOT IN, count(*),
    a text label code in a numeric column, and SHOW ALL TABLES failing for the
    whole database because of one view."""
    duck = attach(views_db)
    conn = sqlite3.connect(views_db)
    names = [name for name, in conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') AND name NOT LIKE '%\\_fts%' ESCAPE '\\'")]
    assert set(ALL_VIEWS) <= set(names) and "label" in names
    for name in names:
        expected = sorted(conn.execute(f"SELECT * FROM [{name}]").fetchall(), key=repr)
        assert sorted(duck.execute(f'SELECT * FROM mb."{name}"').fetchall(), key=repr) == expected, name
    assert conn.execute("SELECT count(*) FROM label WHERE label_code GLOB '*[A-Z]*'").fetchone()[0] > 0  # 'SPREC'
    tables = {name for name, in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert tables <= {row[2] for row in duck.execute("SHOW ALL TABLES").fetchall() if row[0] == "mb"}
    listed = duck.execute("SELECT table_name FROM information_schema.tables WHERE table_catalog = 'mb'").fetchall()
    assert set(names) <= {name for name, in listed}
    columns = dict(duck.execute("SELECT table_name, count(*) FROM information_schema.columns "
                                "WHERE table_catalog = 'mb' GROUP BY 1").fetchall())
    assert all(columns[name] == len(conn.execute(f"PRAGMA table_info([{name}])").fetchall()) for name in tables)
    for view in ALL_VIEWS:
        described = [row[0] for row in duck.execute(f"DESCRIBE mb.{view}").fetchall()]
        assert described == [row[1] for row in conn.execute(f"PRAGMA table_info([{view}])")], view
    conn.close()
    duck.close()


def test_a_database_of_the_previous_release_upgrades_to_the_portable_views(tmp_path):
    """0.1.0's label_code was INTEGER with 'SPREC'-like text possible; its views used `/`, printf and NOT IN."""
    old = tmp_path / "old.db"
    shutil.copy(FIXTURES / "db" / "mbharvest-0.1.0.db", old)
    before = {row[0]: row for row in rows(old, "SELECT * FROM label")}
    fts_before = rows(old, "SELECT rowid, name FROM label_fts ORDER BY rowid")
    db = store.open_db(old)
    assert summaries(db.conn) == truth(db.conn)
    declared = {row[1]: row[2] for row in db.execute("PRAGMA table_info(label)")}
    assert declared["label_code"] == "TEXT"
    width = len(next(iter(before.values())))  # later migrations add columns at the end (0011: area_id)
    after = {row[0]: row[:width] for row in rows(db.conn, "SELECT * FROM label")}
    code_at = list(declared).index("label_code")
    assert {k: tuple(str(v) if i == code_at and v is not None else v for i, v in enumerate(row))
            for k, row in before.items()} == after
    assert rows(db.conn, "SELECT rowid, name FROM label_fts ORDER BY rowid") == fts_before
    assert {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'label'")
            } >= {"label_ai", "label_ad", "label_au"}
    db.close()
    duck = attach(old)
    for view in ALL_VIEWS:
        assert sorted(duck.execute(f"SELECT * FROM mb.{view}").fetchall(), key=repr) == sorted(
            rows(old, f"SELECT * FROM {view}"), key=repr), view
    duck.close()


def test_gone_is_is_not_null_for_every_value_a_text_column_holds_and_reads_the_gone_at_index(tmp_path):
    from harvester.views import gone
    db = store.open_db(tmp_path / "g.db")
    values = [None, "", " ", "2025-11-22T00:00:52Z", "-", "\x00", 0, -1.5, float("-inf"), 10**18, b"", b"\x00"]
    with db.atomic():
        for n, value in enumerate(values):
            db.execute("INSERT INTO recording (id, title, gone_at) VALUES (?, 'T', ?)", [f"r{n}", value])
    assert {typeof for (typeof,) in db.execute("SELECT typeof(gone_at) FROM recording")} == {"null", "text", "blob"}
    assert [row[0] for row in db.execute(f"SELECT id FROM recording r WHERE {gone('r')} ORDER BY rowid")] == [
        f"r{n}" for n, value in enumerate(values) if value is not None]
    plan = " ".join(row[3] for row in db.execute(f"EXPLAIN QUERY PLAN SELECT id FROM recording r WHERE {gone('r')}"))
    assert "USING INDEX idx_recording_gone_at" in plan, plan
    db.close()
