"""`mbharvest import-dump` on small dumps built here from real lookup bodies.

Expectations are computed from the JSON lines themselves (ids, ISRCs,
credits), never from what the importer wrote."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import tarfile
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from benchmarks.synthetic_dump import write_recording_dump
from harvester.cli import cli
from harvester.dumps import importer as dumps
from harvester.dumps import lookups, merge, staging
from harvester.dumps import ImportOptions, Progress, dump_time, format_progress, import_dumps
from harvester.normalize import normalize_isrc
from harvester.store import PRIMARY_KEYS, open_db
from tests.conftest import load_ws2
from tests.test_store import content

TIMESTAMP = "2025-11-22 00:00:52.535446+00"
SOURCE = "dump:2025-11-22T00:00:52Z"
NEWER = "2025-11-26 00:00:48.12+00"

RECORDING_BODIES = [
    "sortipy/recordings-line1-ab80a174-1b7d-41c8-bddb-5edfd849d512.json",
    "sortipy/recordings-line2-5fbaab56-3904-40fe-9ef2-be59a16c86be.json",
    "sortipy/recordings-line3-5e7029b3-f17e-4d4d-a08e-0bfd8f4a5765.json",
    "picard/recording.json",
    "picard/recording_video.json",
    "picard/recording_multi_artists_1.json",
    "picard/recording_credits.json",
]
RELEASE_BODIES = [
    "musicbrainz-android/release_lookup.json",
    "sortipy/releases-line1-58558cec-d9f1-40e4-a857-f7af88883c12.json",
    "wrtag/release/21a03203-91a4-4948-ae1e-2d0977f1bdbc.json",
    "wrtag/release/70130d47-2145-4e61-972e-49d3d21a087e.json",
    "wrtag/release/a99c577f-027d-4f96-8c47-d2b113fc0f2f.json",
]
ARTIST_BODIES = ["picard/artist.json", "picard/artist_arabic.json", "picard/artist_ended.json",
                 "hqub-musicbrainz/artist-get.json"]
LABEL_BODIES = ["musicbrainz-android/label_lookup.json", "hqub-musicbrainz/label-get.json"]
RELEASE_GROUP_BODIES = ["musicbrainz-android/release-group_lookup.json", "hqub-musicbrainz/releasegroup-get.json",
                        "picard/release_group.json"]
ENTITY_TABLES = ["artist", "label", "release_group", "release", "medium", "track", "recording",
                 "recording_isrc", "release_label", "artist_credit_name", "tag", "rating", "annotation",
                 "document", "mbid_redirect"]


# -- building dumps --

def line_of(doc) -> bytes:
    return json.dumps(doc, ensure_ascii=False, separators=(",", ":")).encode() + b"\n"


def write_archive(path: Path, entity: str, lines: list[bytes], timestamp: str | None = TIMESTAMP) -> Path:
    """An archive shaped like the published ones: TIMESTAMP, COPYING, mbdump/<entity>."""
    mode = {".xz": "w:xz", ".gz": "w:gz"}.get(path.suffix, "w")
    members = [("COPYING", b"CC0\n")] + ([("TIMESTAMP", timestamp.encode() + b"\n")] if timestamp else [])
    members.append((f"mbdump/{entity}", b"".join(lines)))
    with tarfile.open(path, mode) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), 1_700_000_000
            tar.addfile(info, io.BytesIO(data))
    return path


def bodies(paths: list[str]) -> list[dict]:
    return [load_ws2(p) for p in paths]


# -- what the lines hold, computed independently --

def credited_artists(doc) -> set[str]:
    """Artist ids of every artist credit in a document, and of every artist
    a relationship points at, at any depth."""
    found = set()
    if isinstance(doc, dict):
        for item in doc.get("artist-credit") or []:
            if item.get("artist", {}).get("id"):
                found.add(item["artist"]["id"])
        for relation in doc.get("relations") or []:
            if (relation.get("artist") or {}).get("id"):
                found.add(relation["artist"]["id"])
        for value in doc.values():
            found |= credited_artists(value)
    elif isinstance(doc, list):
        for value in doc:
            found |= credited_artists(value)
    return found


def targets(doc, target_type: str) -> list[dict]:
    """Every entity of a type that a relationship points at, at any depth."""
    found = []
    if isinstance(doc, dict):
        for relation in doc.get("relations") or []:
            if (relation.get(target_type) or {}).get("id"):
                found.append(relation[target_type])
        for value in doc.values():
            found += targets(value, target_type)
    elif isinstance(doc, list):
        for value in doc:
            found += targets(value, target_type)
    return found


def related(doc, target_type: str) -> set[str]:
    return {target["id"] for target in targets(doc, target_type)}


def recording_ids(docs: list[dict]) -> set[str]:
    """The recordings recording lines hold: their own, and those their relationships point at."""
    return {d["id"] for d in docs} | set().union(*(related(d, "recording") for d in docs))


def release_tracks(release: dict) -> list[dict]:
    return [t for m in release.get("media") or [] for t in (m.get("tracks") or []) + (m.get("data-tracks") or [])
            + ([m["pregap"]] if m.get("pregap") else []) if t.get("id")]


def ids(db, table: str, column: str = "id") -> set:
    return {row[0] for row in db.execute(f"SELECT {column} FROM [{table}]").fetchall()}


def count(db, table: str) -> int:
    return db.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0]


def entity_content(db):
    return {name: rows for name, rows in content(db).items() if name in ENTITY_TABLES or name.endswith("_fts")}


# -- running the command --

@pytest.fixture
def run(tmp_path, monkeypatch):
    """Run mbharvest in-process against tmp_path/mb.db, outside any config."""
    monkeypatch.chdir(tmp_path)
    for var in [v for v in os.environ if v.startswith("MBHARVEST_")]:
        monkeypatch.delenv(var)

    def invoke(*args: str):
        return CliRunner().invoke(cli, ["import-dump", "--db", str(tmp_path / "mb.db"), *map(str, args)])
    return invoke


def db_of(tmp_path: Path):
    return open_db(tmp_path / "mb.db")


# -- formats and counts --

def test_recording_tar_xz_holds_exactly_the_lines(tmp_path, run):
    docs = bodies(RECORDING_BODIES)
    archive = write_archive(tmp_path / "recording.tar.xz", "recording", [line_of(d) for d in docs])
    result = run(archive)
    assert result.exit_code == 0, result.output
    assert result.stdout == ""  # nothing on stdout without -v
    db = db_of(tmp_path)
    assert ids(db, "recording") == recording_ids(docs)
    assert {(r, i) for r, i in db.execute("SELECT recording_id, isrc FROM recording_isrc").fetchall()} == {
        (d["id"], normalize_isrc(code)) for d in docs for code in d.get("isrcs", [])}
    assert ids(db, "artist") == set().union(*(credited_artists(d) for d in docs))
    assert ids(db, "release") == {r["id"] for d in docs for r in d.get("releases", [])} | set().union(
        *(related(d, "release") for d in docs))
    for doc in docs:
        title, length, source, fetched = db.execute(
            "SELECT title, length_ms, source, fetched_at FROM recording WHERE id = ?", (doc["id"],)).fetchone()
        assert (title, length) == (doc["title"], doc.get("length"))
        assert (source, fetched) == (SOURCE, "2025-11-22T00:00:52Z")
    expected_credits = {("recording", d["id"], i) for d in docs for i, _ in enumerate(d["artist-credit"])}
    expected_credits |= {("recording", r["id"], i) for d in docs for r in targets(d, "recording")
                         for i, _ in enumerate(r.get("artist-credit") or [])}
    for release in (r for d in docs for r in d.get("releases", [])):
        expected_credits |= {("release", release["id"], i) for i, _ in enumerate(release.get("artist-credit", []))}
        group = release.get("release-group", {})
        expected_credits |= {("release_group", group["id"], i) for i, _ in enumerate(group.get("artist-credit", []))}
    assert {tuple(r) for r in db.execute("SELECT entity_type, entity_id, position FROM artist_credit_name")} == (
        expected_credits)


def test_release_tar_gz_media_tracks_isrcs_and_labels(tmp_path, run):
    docs = bodies(RELEASE_BODIES)
    archive = write_archive(tmp_path / "release.tar.gz", "release", [line_of(d) for d in docs])
    assert run(archive).exit_code == 0
    db = db_of(tmp_path)
    assert ids(db, "release") == {d["id"] for d in docs}
    tracks = [t for d in docs for t in release_tracks(d)]
    assert ids(db, "track") == {t["id"] for t in tracks}
    assert ids(db, "recording") == {t["recording"]["id"] for t in tracks}
    assert {tuple(r) for r in db.execute("SELECT recording_id, isrc FROM recording_isrc").fetchall()} == {
        (t["recording"]["id"], normalize_isrc(code)) for t in tracks for code in t["recording"].get("isrcs", [])}
    assert count(db, "recording_isrc") >= 12  # the android release carries 12
    assert count(db, "medium") == sum(len(d.get("media", [])) for d in docs)
    assert {tuple(r) for r in db.execute("SELECT release_id, label_id, catalog_number FROM release_label")} == {
        (d["id"], (li.get("label") or {}).get("id"), li.get("catalog-number") or "")
        for d in docs for li in d.get("label-info", [])}


def test_the_log_file_says_what_each_merge_step_took_and_wrote(tmp_path, run):
    docs = bodies(RELEASE_BODIES)
    archive = write_archive(tmp_path / "release.tar.gz", "release", [line_of(d) for d in docs])
    log = tmp_path / "import.log"
    assert run(archive, "--log-file", log).exit_code == 0
    text = log.read_text()
    steps = re.findall(r" INFO release merge, (\w+) (?:built beside|merged in place): [\d.]+ s(, [\d,]+ MB written)?$",
                       text, re.MULTILINE)
    db = db_of(tmp_path)
    ledger = {"harvest_run", "dump_import"}  # written by the import itself, not merged
    filled = {table for table in set(PRIMARY_KEYS) - ledger if db[table].exists() and count(db, table)}
    assert filled >= {"release", "track", "recording", "recording_isrc", "artist_credit_name"}
    assert filled <= {table for table, _ in steps} <= set(PRIMARY_KEYS)
    assert re.search(r" INFO release merge, the transaction, its commit included: [\d.]+ s", text, re.MULTILINE)
    # five lines fit in one staging range: staged in this process, none started (test_staging_processes.py)
    assert " staging on " not in text
    if Path("/proc/self/io").exists():  # Linux: what each step wrote
        assert all(written for _, written in steps)


def test_the_set_lookups_are_read_through_a_page_cache_of_the_merges_share_of_memory(tmp_path, run, monkeypatch):
    # a release's relationships are looked up by target in a file ordered by
    # target: with SQLite's default 2 MB cache nearly every lookup went to the kernel
    seen = []
    build = lookups.SetLookups.build

    def recording(self, *args):
        build(self, *args)
        seen.append(self.connections[-1].execute("PRAGMA staged.cache_size").fetchone()[0])
    monkeypatch.setattr(lookups.SetLookups, "build", recording)
    docs = bodies(RELEASE_BODIES)
    archive = write_archive(tmp_path / "release.tar.gz", "release", [line_of(d) for d in docs])
    assert run(archive, "--memory", "200").exit_code == 0
    assert seen == [-int(200 * 1024 * dumps.MEMORY_SHARES["cache"])]


def test_a_label_info_without_a_label_is_one_row_with_a_null_label_in_every_dump(tmp_path, run):
    """Issue 18: a catalogue number without a label is release_label.label_id NULL (0.1.0 wrote '', which failed
    PRAGMA foreign_key_check): staged, merged, and merged again by the next dump without a second row."""
    docs = bodies(RELEASE_BODIES)
    docs[0]["label-info"] = [{"catalog-number": "NO-LABEL-1", "label": None}] + docs[0]["label-info"]
    expected = {(d["id"], (li.get("label") or {}).get("id"), li.get("catalog-number") or "")
                for d in docs for li in d.get("label-info", [])}
    assert (docs[0]["id"], None, "NO-LABEL-1") in expected
    for number, stamp in enumerate(("2025-11-22 00:00:52+00", "2025-11-26 00:00:48+00")):
        (tmp_path / str(number)).mkdir()
        archive = write_archive(tmp_path / str(number) / "release.tar.xz", "release", [line_of(d) for d in docs],
                                timestamp=stamp)
        assert run(archive).exit_code == 0
        db = db_of(tmp_path)
        rows = [tuple(r) for r in db.execute("SELECT release_id, label_id, catalog_number FROM release_label")]
        assert sorted(rows, key=repr) == sorted(expected, key=repr)  # each once, after either dump
        db.execute("PRAGMA foreign_keys = ON")
        assert db.execute("PRAGMA foreign_key_check").fetchall() == []
        db.conn.close()


def test_bare_mbdump_file_jsonl_and_plain_tar(tmp_path, run):
    (tmp_path / "mbdump").mkdir()
    artists = bodies(ARTIST_BODIES)
    bare = tmp_path / "mbdump" / "artist"
    bare.write_bytes(b"".join(line_of(d) for d in artists))
    labels = bodies(LABEL_BODIES)
    jsonl = tmp_path / "labels.jsonl"
    jsonl.write_bytes(b"".join(line_of(d) for d in labels))
    groups = bodies(RELEASE_GROUP_BODIES)
    plain = write_archive(tmp_path / "release-group.tar", "release-group", [line_of(d) for d in groups])

    assert run(bare, "--timestamp", "2025-11-22T00:00:52Z").exit_code == 0
    assert run("--entity", "label", jsonl).exit_code == 0
    assert run(plain).exit_code == 0
    db = db_of(tmp_path)
    assert {d["id"] for d in artists} <= ids(db, "artist")
    assert ids(db, "label") == {d["id"] for d in labels} | {
        li["label"]["id"] for d in labels for r in d.get("releases", []) for li in r.get("label-info", [])
        if li.get("label")}
    assert {d["id"] for d in groups} <= ids(db, "release_group")
    assert ids(db, "release") == {r["id"] for d in labels + groups for r in d.get("releases", [])} | {
        r["id"] for d in artists for r in d.get("releases", [])}
    sources = dict(db.execute("SELECT id, source FROM artist").fetchall())
    assert {sources[d["id"]] for d in artists} == {SOURCE}
    mtime = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(int(jsonl.stat().st_mtime)))
    assert {db.execute("SELECT source FROM label WHERE id = ?", (d["id"],)).fetchone()[0] for d in labels} == {
        f"dump:{mtime}"}
    runs = db.execute("SELECT command, status, requests, entities_written FROM harvest_run ORDER BY id").fetchall()
    assert [r[:3] for r in runs] == [("import-dump", "complete", 0)] * 3
    assert runs[0][3] >= len(artists)


def test_cc0_filter_and_documents(tmp_path, run):
    docs = bodies(["picard/recording.json", "musicbrainz-android/recording_lookup.json"])
    assert any("tags" in d for d in docs)
    archive = write_archive(tmp_path / "recording.tar.xz", "recording", [line_of(d) for d in docs])
    assert run(archive).exit_code == 0
    db = db_of(tmp_path)
    assert (count(db, "tag"), count(db, "rating"), count(db, "annotation"), count(db, "document")) == (0, 0, 0, 0)

    opted = tmp_path / "opted"
    opted.mkdir()
    result = CliRunner().invoke(cli, ["import-dump", str(archive), "--db", str(opted / "mb.db"),
                                      "--include-supplementary", "--keep-documents"])
    assert result.exit_code == 0, result.output
    db = open_db(opted / "mb.db")
    expected_tags = {(d["id"], t["name"]) for d in docs for t in d.get("tags", [])}
    assert expected_tags and {tuple(r) for r in db.execute(
        "SELECT entity_id, name FROM tag WHERE entity_type = 'recording' AND kind = 'tag'")} == expected_tags
    assert {r[0] for r in db.execute("SELECT DISTINCT licence FROM tag")} == {"CC-BY-NC-SA-3.0"}
    assert ids(db, "document", "entity_id") == {d["id"] for d in docs}


def test_cc0_documents_drop_supplementary_fields(tmp_path, run):
    doc = load_ws2("picard/recording.json")
    archive = write_archive(tmp_path / "recording.tar.xz", "recording", [line_of(doc)])
    assert run(archive, "--keep-documents").exit_code == 0
    kept = json.loads(db_of(tmp_path).execute("SELECT json FROM document").fetchone()[0])
    assert "tags" in doc and "tags" not in kept and kept["id"] == doc["id"]


# -- re-import, newer dumps --

def test_reimport_of_a_completed_dump_changes_nothing(tmp_path, run):
    archive = write_archive(tmp_path / "recording.tar.xz", "recording",
                            [line_of(d) for d in bodies(RECORDING_BODIES)])
    assert run(archive).exit_code == 0
    before = entity_content(db_of(tmp_path))
    again = run(archive, "-v")
    assert again.exit_code == 0
    assert "already imported" in again.stderr and "nothing changed" in again.stderr
    db = db_of(tmp_path)
    assert entity_content(db) == before
    assert db.execute("SELECT status, entities_written FROM harvest_run ORDER BY id").fetchall() == [
        ("complete", db.execute("SELECT entities_written FROM harvest_run WHERE id = 1").fetchone()[0]),
        ("complete", 0)]


def test_a_newer_dump_updates_rows_and_the_full_text_index(tmp_path, run):
    docs = bodies(RECORDING_BODIES)
    assert run(write_archive(tmp_path / "old.tar.xz", "recording", [line_of(d) for d in docs])).exit_code == 0
    renamed = dict(docs[0], title="Zyxwv Renamed")
    newer = write_archive(tmp_path / "new.tar.xz", "recording", [line_of(renamed)] + [line_of(d) for d in docs[1:]],
                          timestamp=NEWER)
    assert run(newer).exit_code == 0
    db = db_of(tmp_path)
    assert db.execute("SELECT title, source FROM recording WHERE id = ?", (docs[0]["id"],)).fetchone() == (
        "Zyxwv Renamed", "dump:2025-11-26T00:00:48Z")
    assert count(db, "recording") == len(recording_ids(docs))
    found = db.execute("SELECT r.id FROM recording_fts f JOIN recording r ON r.rowid = f.rowid "
                       "WHERE recording_fts MATCH 'Zyxwv'").fetchall()
    assert found == [(docs[0]["id"],)]
    old_word = docs[0]["title"].split()[0]
    assert (docs[0]["id"],) not in db.execute(
        "SELECT r.id FROM recording_fts f JOIN recording r ON r.rowid = f.rowid WHERE recording_fts MATCH ?",
        (f'"{old_word}"',)).fetchall()
    for table in ("recording", "artist", "release", "release_group"):
        db.execute(f"INSERT INTO {table}_fts ({table}_fts) VALUES ('integrity-check')")


# -- interruption and resumption --

def synthetic_lines(count: int, seed: int = 7) -> list[bytes]:
    from benchmarks.synthetic_dump import recording_lines
    return [line_of(d) for d in recording_lines(count, seed)]


def test_budget_stops_between_batches_and_rerun_resumes(tmp_path, run, monkeypatch):
    lines = synthetic_lines(1200)
    archive = write_archive(tmp_path / "recording.tar.xz", "recording", lines)
    calls = []
    real = dumps.normalize_entity
    monkeypatch.setattr(dumps, "normalize_entity", lambda *a, **k: calls.append(1) or real(*a, **k))
    rounds = 0
    while True:
        rounds += 1
        # one process: the lines are normalized here, where `calls` counts them
        result = run(archive, "--batch-size", "250", "--max-runtime", "0", "--processes", "1")
        assert result.exit_code == 0, result.output
        if "run again" not in result.stderr:
            break
        assert rounds < 10
    assert rounds == 5  # 4 partial runs of one batch each, then the last batch
    db = db_of(tmp_path)
    assert [r[0] for r in db.execute("SELECT status FROM harvest_run ORDER BY id")] == ["partial"] * 4 + ["complete"]
    assert len(calls) == len(lines)  # no line normalized twice
    clean = tmp_path / "clean"
    clean.mkdir()
    CliRunner().invoke(cli, ["import-dump", str(archive), "--db", str(clean / "mb.db")])
    assert entity_content(db) == entity_content(open_db(clean / "mb.db"))
    assert ids(db, "recording") == {json.loads(line)["id"] for line in lines}


def test_a_crash_while_staging_loses_nothing_and_resumes_after_the_last_chunk(tmp_path, run, monkeypatch):
    lines = synthetic_lines(1000)
    archive = write_archive(tmp_path / "recording.tar.gz", "recording", lines)
    real_write, chunks = staging.write_chunk, []

    def failing_write(*args, **kwargs):
        chunks.append(1)
        if len(chunks) == 3:
            raise OSError("injected failure")
        return real_write(*args, **kwargs)

    monkeypatch.setattr(staging, "write_chunk", failing_write)
    # one process: chunks are written here, where the failure is injected
    crashed = run(archive, "--batch-size", "200", "--processes", "1")
    assert crashed.exit_code == 1 and "injected failure" in crashed.stderr
    db = db_of(tmp_path)
    assert db.execute("SELECT lines_staged, lines_committed FROM dump_import").fetchone() == (400, 0)
    assert count(db, "recording") == 0  # staged, not merged: readers see the database as it was
    assert db.execute("SELECT status FROM harvest_run").fetchone() == ("failed",)

    monkeypatch.setattr(staging, "write_chunk", real_write)
    calls = []
    real = dumps.normalize_entity
    monkeypatch.setattr(dumps, "normalize_entity", lambda *a, **k: calls.append(1) or real(*a, **k))
    resumed = run(archive, "--batch-size", "200", "-v", "--processes", "1")
    assert resumed.exit_code == 0
    assert "resumed after line 400" in resumed.stdout
    assert len(calls) == len(lines) - 400
    assert ids(db_of(tmp_path), "recording") == {json.loads(line)["id"] for line in lines}
    assert not (tmp_path / "mb.db.import").exists() or not any((tmp_path / "mb.db.import").iterdir())


@pytest.mark.parametrize("step", ["build", "swap"])
def test_a_failed_merge_leaves_the_database_as_it_was_and_the_rerun_merges_without_reading_again(
        tmp_path, run, monkeypatch, step):
    lines = synthetic_lines(1000)
    archive = write_archive(tmp_path / "recording.tar.gz", "recording", lines)
    clean = tmp_path / "clean"
    clean.mkdir()
    assert CliRunner().invoke(cli, ["import-dump", str(archive), "--db", str(clean / "mb.db")]).exit_code == 0
    real_step, steps = getattr(merge.Merge, step), []

    def failing_step(self, *args, **kwargs):
        steps.append(1)
        if len(steps) == 3:
            raise OSError("injected failure")
        return real_step(self, *args, **kwargs)

    monkeypatch.setattr(merge.Merge, step, failing_step)
    assert run(archive, "--batch-size", "300").exit_code == 1
    db = db_of(tmp_path)
    assert all(count(db, table) == 0 for table in ("artist", "recording", "release", "artist_credit_name"))
    assert db.execute("SELECT lines_staged, lines_committed, status FROM dump_import").fetchone() == (
        1000, 0, "failed")

    monkeypatch.setattr(merge.Merge, step, real_step)
    calls, builds = [], []
    real = dumps.normalize_entity
    monkeypatch.setattr(dumps, "normalize_entity", lambda *a, **k: calls.append(1) or real(*a, **k))
    real_build = merge.Merge.build
    monkeypatch.setattr(merge.Merge, "build", lambda self, stage, *a: builds.append(stage.name) or
                        real_build(self, stage, *a))
    assert run(archive, "--batch-size", "300", "--processes", "1").exit_code == 0  # lines normalized here
    assert calls == []  # every line was staged: the rerun only merges
    if step == "swap":  # every table was built before the failing swap: none is built again
        assert builds == []
    assert entity_content(db_of(tmp_path)) == entity_content(open_db(clean / "mb.db"))
    assert merge.new_tables(db_of(tmp_path)) == []


def command_env() -> dict:
    return {**{k: v for k, v in os.environ.items() if not k.startswith("MBHARVEST_")},
            "PYTHONPATH": str(Path(__file__).resolve().parents[1])}


def test_sigkill_while_staging_then_rerun_equals_a_clean_import(tmp_path):
    archive = tmp_path / "recording.tar.xz"
    write_recording_dump(archive, 20_000, seed=11)
    env = command_env()
    command = [sys.executable, "-m", "harvester", "import-dump", str(archive), "--batch-size", "500"]
    killed_db = tmp_path / "killed.db"
    process = subprocess.Popen(command + ["--db", str(killed_db)], cwd=tmp_path, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    staged = 0
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with sqlite3.connect(killed_db, timeout=5) as probe:
                staged = probe.execute("SELECT max(lines_staged) FROM dump_import").fetchone()[0] or 0
        except sqlite3.OperationalError:
            staged = 0
        if staged >= 4000:
            break
        time.sleep(0.02)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    assert 4000 <= staged < 20_000, "the kill should land while staging"

    rerun = subprocess.run(command + ["--db", str(killed_db), "-v"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed after line" in rerun.stdout
    clean_db = tmp_path / "clean.db"
    subprocess.run(command + ["--db", str(clean_db)], cwd=tmp_path, env=env, check=True, timeout=120)
    killed, clean = open_db(killed_db), open_db(clean_db)
    assert killed.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert count(killed, "recording") == 20_000
    assert entity_content(killed) == entity_content(clean)
    assert killed.execute("SELECT status, lines_committed FROM dump_import").fetchall() == [("complete", 20_000)]


def test_sigterm_while_staging_stops_at_a_line_the_ledger_says_interrupted_and_the_rerun_continues(tmp_path):
    """A stop signal waits for the end of the line being staged (never
    inside a thread's start or a SQLite call): one line on stderr, exit 1."""
    archive = tmp_path / "recording.tar.xz"
    write_recording_dump(archive, 20_000, seed=12)
    env = command_env()
    command = [sys.executable, "-m", "harvester", "import-dump", str(archive), "--batch-size", "500",
               "--db", str(tmp_path / "mb.db")]
    process = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True)
    staged, deadline = 0, time.monotonic() + 60
    while time.monotonic() < deadline and process.poll() is None and staged < 4000:
        try:
            with sqlite3.connect(tmp_path / "mb.db", timeout=5) as probe:
                staged = probe.execute("SELECT max(lines_staged) FROM dump_import").fetchone()[0] or 0
        except sqlite3.OperationalError:
            staged = 0
        time.sleep(0.02)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert 4000 <= staged < 20_000, "the signal should land while staging"
    assert process.returncode == 1
    assert stderr.splitlines() == ["Error: interrupted by SIGTERM: everything committed so far is kept; "
                                   "run the same command again to continue"]
    with sqlite3.connect(tmp_path / "mb.db") as conn:
        assert conn.execute("SELECT command, status, error FROM harvest_run").fetchall() == [
            ("import-dump", "interrupted", "interrupted by SIGTERM; every staged chunk is kept")]
        assert conn.execute("SELECT count(*) FROM recording").fetchone() == (0,)
    rerun = subprocess.run(command + ["-v"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
    assert rerun.returncode == 0, rerun.stderr
    assert "resumed after line" in rerun.stdout
    assert count(open_db(tmp_path / "mb.db"), "recording") == 20_000


def slow_merge(marker: Path, pause: float, phases: str, *args: str, db: Path, cwd: Path) -> subprocess.Popen:
    """import-dump with a pause after each step of the merge's `phases` (tests/slow_merge.py)."""
    return subprocess.Popen([sys.executable, "-m", "tests.slow_merge", str(marker), str(pause), phases,
                             "import-dump", *args, "--db", str(db)], cwd=cwd, env=command_env(),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


@pytest.mark.parametrize("phase", ["build", "final"])
def test_sigkill_during_the_merge_leaves_the_database_as_it_was_and_rerun_equals_a_clean_import(tmp_path, phase):
    """Killed while tables are built beside the old ones, or inside the
    final transaction that swaps them in."""
    archive = tmp_path / "recording.tar.xz"
    write_recording_dump(archive, 5_000, seed=13)
    killed_db = tmp_path / "killed.db"
    process = merge_paused_in(phase, 30, archive, killed_db)
    os.kill(process.pid, signal.SIGKILL)
    process.wait()
    killed = open_db(killed_db)
    assert killed.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert all(count(killed, table) == 0 for table in ("artist", "recording", "artist_credit_name", "release"))
    assert killed.execute("SELECT lines_staged, lines_committed FROM dump_import").fetchone() == (5_000, 0)
    if phase == "build":
        assert merge.new_tables(killed)  # tables built beside the old ones, not yet swapped in
    killed.conn.close()

    rerun_equals_a_clean_import(archive, killed_db)
    assert merge.new_tables(open_db(killed_db)) == []


def merge_paused_in(phase: str, pause: float, archive: Path, db: Path) -> subprocess.Popen:
    """import-dump of `archive` into `db`, once it pauses in the merge's `phase`."""
    marker = db.with_name(db.name + ".merging")
    process = slow_merge(marker, pause, phase, str(archive), db=db, cwd=Path(__file__).resolve().parents[1])
    deadline = time.monotonic() + 60
    while process.poll() is None and time.monotonic() < deadline and not (
            marker.exists() and marker.read_text() == phase):
        time.sleep(0.01)
    assert marker.read_text() == phase, "the merge should have reached the phase"
    return process


def rerun_equals_a_clean_import(archive: Path, db: Path) -> None:
    """The same import run again into `db` gives what one into a fresh database gives."""
    command = [sys.executable, "-m", "harvester", "import-dump", str(archive)]
    subprocess.run(command + ["--db", str(db)], cwd=db.parent, env=command_env(), check=True, timeout=120)
    clean_db = db.with_name("clean.db")
    subprocess.run(command + ["--db", str(clean_db)], cwd=db.parent, env=command_env(), check=True, timeout=120)
    assert entity_content(open_db(db)) == entity_content(open_db(clean_db))
    assert schema_objects(db) == schema_objects(clean_db)


@pytest.mark.parametrize("phase", ["build", "final"])
def test_sigterm_during_the_merge_stops_between_tables_and_rerun_equals_a_clean_import(tmp_path, phase):
    """SIGTERM while a table is built beside, or inside the final
    transaction: the merge stops before the next table (the final
    transaction rolled back), exit 1, and the rerun ends where a clean
    import does."""
    archive = tmp_path / "recording.tar.xz"
    write_recording_dump(archive, 5_000, seed=14)
    stopped_db = tmp_path / "stopped.db"
    process = merge_paused_in(phase, 2, archive, stopped_db)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=60) == 1
    stopped = open_db(stopped_db)
    assert stopped.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    assert all(count(stopped, table) == 0 for table in ("artist", "recording", "artist_credit_name"))
    assert stopped.execute("SELECT lines_staged, lines_committed FROM dump_import").fetchone() == (5_000, 0)
    assert stopped.execute("SELECT status, error FROM harvest_run").fetchall() == [
        ("interrupted", "interrupted by SIGTERM; every staged chunk is kept")]
    stopped.conn.close()

    rerun_equals_a_clean_import(archive, stopped_db)


def schema_objects(path: Path) -> set:
    """Every index and trigger, with its SQL, read with plain sqlite3."""
    with sqlite3.connect(path) as conn:
        return set(conn.execute("SELECT type, name, tbl_name, sql FROM sqlite_master "
                                "WHERE type IN ('index', 'trigger') AND sql IS NOT NULL").fetchall())


def test_a_reader_during_the_merge_sees_the_old_database_or_the_new_one_never_a_mix(tmp_path):
    from benchmarks.release_dump import ReleaseDump
    editions = []
    for edition in (1, 2):
        path = tmp_path / f"release{edition}.jsonl"
        path.write_bytes(b"".join(line_of(d) for d in ReleaseDump(200, seed=17, edition=edition).documents()))
        editions.append(path)
    db_path, root = tmp_path / "mb.db", Path(__file__).resolve().parents[1]
    seen = []
    for edition, (path, stamp) in enumerate(zip(editions, (TIMESTAMP, NEWER)), 1):
        stop, out, marker = tmp_path / f"stop{edition}", tmp_path / f"reader{edition}.json", tmp_path / f"m{edition}"
        open_db(db_path).conn.close()
        reader = subprocess.Popen([sys.executable, "-m", "tests.dump_reader", str(db_path), str(stop), str(out)],
                                  cwd=root, env=command_env())
        importer = slow_merge(marker, 0.15, "build,final", "--entity", "release", "--timestamp", stamp, str(path),
                              db=db_path, cwd=root)
        assert importer.wait(timeout=120) == 0
        stop.touch()
        assert reader.wait(timeout=60) == 0
        seen.append(json.loads(out.read_text()))
    first, second = seen
    assert not first["errors"] and not second["errors"]
    empty, after_first = first["snapshots"][0], first["snapshots"][-1]
    assert all(count == 0 for count, _ in empty.values()) and after_first["track"][0] > 0
    # ten tables merged with pauses between them, yet only two states were ever visible
    assert first["snapshots"] == [empty, after_first], first["snapshots"]
    after_second = second["snapshots"][-1]
    assert after_second != after_first
    assert second["snapshots"] == [after_first, after_second], second["snapshots"]
    assert first["rounds"] > 20 and second["rounds"] > 20


def test_a_fifo_and_standard_input_are_read_as_streams(tmp_path, run):
    docs = bodies(RECORDING_BODIES)
    fifo = tmp_path / "recording.fifo"
    os.mkfifo(fifo)

    def feed():
        with open(fifo, "wb") as out:
            out.write(b"".join(line_of(d) for d in docs))
    writer = threading.Thread(target=feed)
    writer.start()
    result = run("--entity", "recording", "--timestamp", TIMESTAMP, fifo)
    writer.join()
    assert result.exit_code == 0, result.output
    assert ids(db_of(tmp_path), "recording") == recording_ids(docs)

    archive = write_archive(tmp_path / "release.tar.xz", "release", [line_of(d) for d in bodies(RELEASE_BODIES)])
    piped = subprocess.run([sys.executable, "-m", "harvester", "import-dump", "-", "--db", str(tmp_path / "mb.db")],
                           input=archive.read_bytes(), cwd=tmp_path, env=command_env(), capture_output=True,
                           timeout=120)
    assert piped.returncode == 0, piped.stderr
    assert {d["id"] for d in bodies(RELEASE_BODIES)} <= ids(db_of(tmp_path), "release")
    assert db_of(tmp_path).execute("SELECT source FROM release LIMIT 1").fetchone() == (SOURCE,)

    lines_without_date = subprocess.run(
        [sys.executable, "-m", "harvester", "import-dump", "-", "--entity", "recording", "--db",
         str(tmp_path / "other.db")], input=line_of(docs[0]), cwd=tmp_path, env=command_env(),
        capture_output=True, timeout=120)
    assert lines_without_date.returncode == 2 and b"--timestamp" in lines_without_date.stderr


def test_a_stream_shorter_than_what_an_earlier_run_staged_is_refused_and_the_whole_one_continues(tmp_path):
    lines = synthetic_lines(600)
    base = [sys.executable, "-m", "harvester", "import-dump", "-", "--entity", "recording", "--timestamp", TIMESTAMP,
            "--db", str(tmp_path / "mb.db"), "--batch-size", "250"]

    def piped(given: list[bytes], *extra: str) -> subprocess.CompletedProcess:
        return subprocess.run(base + list(extra), input=b"".join(given), cwd=tmp_path, env=command_env(),
                              capture_output=True, timeout=120)

    def query(sql: str) -> list[tuple]:
        conn = sqlite3.connect(tmp_path / "mb.db")
        try:
            return conn.execute(sql).fetchall()
        finally:
            conn.close()
    first = piped(lines, "--max-runtime", "0")
    assert first.returncode == 0, first.stderr
    assert query("SELECT status, lines_staged FROM dump_import") == [("partial", 250)]
    short = piped(lines[:100])  # the same type and TIMESTAMP, and a stream has no size to tell them apart
    assert short.returncode == 1
    assert b"ends after 100 lines, but an earlier run staged 250 lines" in short.stderr
    assert query("SELECT lines_staged, lines_committed FROM dump_import") == [(250, 0)]
    assert query("SELECT count(*) FROM recording") == [(0,)]
    whole = piped(lines)
    assert whole.returncode == 0, whole.stderr
    assert query("SELECT status, lines_committed FROM dump_import") == [("complete", 600)]
    assert {row[0] for row in query("SELECT id FROM recording")} == {json.loads(line)["id"] for line in lines}


def test_staged_runs_go_to_the_temp_dir_and_are_removed_once_merged(tmp_path, run):
    lines = synthetic_lines(600)
    archive = write_archive(tmp_path / "recording.tar.xz", "recording", lines)
    temp = tmp_path / "staging-here"
    stopped = run(archive, "--temp-dir", temp, "--batch-size", "200", "--max-runtime", "0")
    assert stopped.exit_code == 0 and "run again" in stopped.stderr
    chunks = list(temp.glob("*/chunk-*.run"))
    assert len(chunks) == 1 and not (tmp_path / "mb.db.import").exists()
    assert count(db_of(tmp_path), "recording") == 0
    assert run(archive, "--temp-dir", temp).exit_code == 0
    assert ids(db_of(tmp_path), "recording") == {json.loads(line)["id"] for line in lines}
    assert not any(temp.iterdir())


def test_an_import_that_would_not_fit_on_the_disk_is_refused_before_it_starts(tmp_path, run, monkeypatch):
    archive = write_archive(tmp_path / "recording.tar", "recording", synthetic_lines(300))
    monkeypatch.setattr(dumps.shutil, "disk_usage", lambda path: shutil_usage(total=10 ** 9, used=10 ** 9, free=1000))
    result = run(archive)
    assert result.exit_code == 1
    assert "needs about" in result.stderr and "GB are free" in result.stderr and "--temp-dir" in result.stderr
    assert count(db_of(tmp_path), "recording") == 0


def shutil_usage(total: int, used: int, free: int):
    import shutil
    return shutil._ntuple_diskusage(total, used, free)


# -- a database made by mbharvest 0.1.0 --

FIXTURE_DB = Path(__file__).parent / "fixtures" / "db" / "mbharvest-0.1.0.db"


def all_rows(path: Path) -> dict[str, list]:
    with sqlite3.connect(path) as conn:
        tables = [row[0] for row in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' "
                                                 "AND name NOT LIKE '%_fts%' AND name != 'dump_import'")]
        return {table: sorted(conn.execute(f"SELECT * FROM [{table}]").fetchall(), key=repr) for table in tables}


# Values whose stored form a migration changes on purpose: 0007 declares label_code TEXT.
CONVERTED = {
    ("label", "label_code"): lambda value: None if value is None else str(value),  # 0007: TEXT
    # 0011: 'Compilation; Live' -> the JSON array ["Compilation","Live"]; a label-info without a label NULL, not ''
    ("release_group", "secondary_types"): lambda value: None if value is None else json.dumps(
        [part.strip() for part in value.split(";") if part.strip()], separators=(",", ":"), ensure_ascii=False),
    ("release_label", "label_id"): lambda value: None if value == "" else value,
}


def rows_as_upgraded(before: Path, after: Path) -> tuple[dict, dict]:
    """Every table of `before` as it must read after an upgrade (converted
    columns converted), beside the same columns read from `after`: columns a
    migration added are left out of the comparison, none may be lost."""
    old_rows, new_rows = {}, {}
    with sqlite3.connect(before) as old, sqlite3.connect(after) as new:
        tables = [row[0] for row in old.execute("SELECT name FROM sqlite_master WHERE type = 'table' AND name "
                                                "NOT LIKE '%_fts%' AND name NOT IN ('dump_import', 'bulk_load', "
                                                "'_sqlite_migrations')")]
        for table in tables:
            columns = [row[1] for row in old.execute(f"PRAGMA table_info([{table}])")]
            listed = ", ".join(f"[{c}]" for c in columns)
            convert = [CONVERTED.get((table, c), lambda value: value) for c in columns]
            old_rows[table] = sorted((tuple(f(v) for f, v in zip(convert, row))
                                      for row in old.execute(f"SELECT {listed} FROM [{table}]")), key=repr)
            new_rows[table] = sorted(new.execute(f"SELECT {listed} FROM [{table}]").fetchall(), key=repr)
    return old_rows, new_rows


def test_a_0_1_0_database_left_mid_bulk_load_opens_whole_and_a_newer_dump_merges_into_it(tmp_path, run):
    path = tmp_path / "mb.db"
    shutil.copy(FIXTURE_DB, path)
    fresh = tmp_path / "fresh.db"
    open_db(fresh).conn.close()
    before = all_rows(path)
    original = tmp_path / "original.db"
    shutil.copy(FIXTURE_DB, original)
    # as 0.1.0 left an import killed mid-load: indexes and full-text triggers dropped, recorded in bulk_load
    with sqlite3.connect(path) as conn:
        dropped = conn.execute("SELECT name, type, tbl_name, sql FROM sqlite_master WHERE tbl_name IN "
                               "('recording', 'artist') AND type IN ('index', 'trigger') AND sql IS NOT NULL").fetchall()
        for name, kind, table, sql in dropped:
            conn.execute("INSERT INTO bulk_load (name, type, table_name, sql, pid, started_at) "
                         "VALUES (?, ?, ?, ?, ?, '2026-11-30T20:00:00Z')", [name, kind, table, sql, 2 ** 22 + 7])
            conn.execute(f'DROP {kind.upper()} "{name}"')
    assert len(dropped) >= 6
    db = open_db(path)
    assert {o for o in schema_objects(path) if o[2] != "_sqlite_migrations"} == {
        o for o in schema_objects(fresh) if o[2] != "_sqlite_migrations"}
    after = all_rows(path)
    expected, upgraded = rows_as_upgraded(original, path)
    assert upgraded == expected and sum(map(len, expected.values())) > 1000
    assert after["bulk_load"] == []
    title = db.execute("SELECT title FROM recording LIMIT 1").fetchone()[0]
    assert fts_ids(db, title)
    assert db.execute("SELECT entity_type, lines_committed, lines_staged, status FROM dump_import "
                      "ORDER BY entity_type").fetchall() == [("artist", 2, 2, "complete"),
                                                             ("recording", 100, 100, "complete")]
    db.conn.close()
    # a dump import into the upgraded database: what it carries is new, the rest stays
    docs = bodies(RECORDING_BODIES)
    result = run(write_archive(tmp_path / "recording.tar.xz", "recording", [line_of(d) for d in docs]))
    assert result.exit_code == 0, result.output
    db = db_of(tmp_path)
    assert {d["id"] for d in docs} <= ids(db, "recording")
    assert ids(db, "recording") >= {row[0] for row in before["recording"]}
    assert db.execute("SELECT count(*) FROM tag").fetchone()[0] == len(before["tag"])


def test_open_db_leaves_a_live_0_1_0_bulk_load_alone(tmp_path):
    """A reader opening the database while a 0.1.0 import bulk-loads must not
    rebuild the indexes under it; once that process is gone, it does."""
    path = tmp_path / "mb.db"
    open_db(path).conn.close()
    expected = schema_objects(path)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with sqlite3.connect(path) as conn:
            conn.execute("INSERT INTO bulk_load (name, type, table_name, sql, pid, started_at) "
                         "SELECT name, type, tbl_name, sql, ?, '2026-01-01T00:00:00Z' FROM sqlite_master "
                         "WHERE name IN ('idx_track_recording_id', 'release_ai')", [holder.pid])
            conn.execute("DROP INDEX idx_track_recording_id")
            conn.execute("DROP TRIGGER release_ai")
        open_db(path).conn.close()
        assert {name for _, name, _, _ in expected - schema_objects(path)} == {"idx_track_recording_id", "release_ai"}
    finally:
        holder.kill()
        holder.wait()
    open_db(path).conn.close()
    assert schema_objects(path) == expected


def fts_ids(db, title: str) -> set:
    phrase = '"' + title.replace('"', '""') + '"'
    return {row[0] for row in db.execute(
        "SELECT r.id FROM recording_fts JOIN recording r ON r.rowid = recording_fts.rowid "
        "WHERE recording_fts MATCH ?", [phrase]).fetchall()}


# -- bad input --

def test_truncated_archive_names_the_file_and_keeps_committed_rows(tmp_path, run):
    lines = synthetic_lines(3000)
    archive = write_archive(tmp_path / "recording.tar.xz", "recording", lines)
    data = archive.read_bytes()
    archive.write_bytes(data[: len(data) * 2 // 3])
    result = run(archive, "--batch-size", "300")
    assert result.exit_code == 1
    assert str(archive) in result.stderr and "truncated or corrupt" in result.stderr
    assert "Traceback" not in result.output
    db = db_of(tmp_path)
    committed = db.execute("SELECT lines_committed FROM dump_import").fetchone()[0]
    assert 300 <= committed < 3000
    assert ids(db, "recording") == {json.loads(line)["id"] for line in lines[:committed]}
    assert db.execute("SELECT status FROM harvest_run").fetchone() == ("failed",)


def test_malformed_line_names_file_and_line_and_keeps_lines_before(tmp_path, run):
    docs = bodies(RECORDING_BODIES)
    lines = [line_of(d) for d in docs[:3]] + [b'{"id": "broken", "title": \n'] + [line_of(d) for d in docs[3:]]
    archive = write_archive(tmp_path / "recording.tar.xz", "recording", lines)
    result = run(archive)
    assert result.exit_code == 1
    assert f"{archive}: line 4:" in result.stderr and "not valid JSON" in result.stderr
    assert ids(db_of(tmp_path), "recording") == {d["id"] for d in docs[:3]}


def test_a_line_of_the_wrong_shape_is_reported_with_its_number(tmp_path, run):
    docs = bodies(RECORDING_BODIES[:2])
    path = tmp_path / "recording.jsonl"
    path.write_bytes(line_of(docs[0]) + line_of(dict(docs[1], isrcs=5)))
    result = run(path)
    assert result.exit_code == 1
    assert f"{path}: line 2: recording {docs[1]['id']}: isrcs should be a list" in result.stderr


def test_skip_bad_lines_reports_them_and_imports_the_rest(tmp_path, run):
    docs = bodies(RECORDING_BODIES)
    lines = [line_of(d) for d in docs]
    lines.insert(2, b"not json at all\n")
    lines.insert(5, b"[1, 2, 3]\n")
    path = tmp_path / "mbdump" / "recording"
    path.parent.mkdir()
    path.write_bytes(b"".join(lines))
    result = run(path, "--skip-bad-lines", "-v")
    assert result.exit_code == 0, result.output
    assert "2 bad lines skipped (first: line 3, 6)" in result.stderr
    assert ids(db_of(tmp_path), "recording") == recording_ids(docs)
    assert db_of(tmp_path).execute("SELECT lines_skipped, status FROM dump_import").fetchone() == (2, "complete")


@pytest.mark.parametrize("make, message", [
    (lambda tmp: tmp / "missing.tar.xz", "missing.tar.xz: no such file"),
    (lambda tmp: write_archive(tmp / "genre.tar.xz", "genre", [b"{}\n"]),
     "genre.tar.xz: holds no mbdump/<entity> member to import (it holds mbdump/genre"),
    (lambda tmp: (tmp / "things.jsonl", (tmp / "things.jsonl").write_text("{}\n"))[0], "give --entity"),
])
def test_bad_usage_exits_2_with_a_message(tmp_path, run, make, message):
    result = run(make(tmp_path))
    assert result.exit_code == 2
    assert message in result.stderr
    assert not (tmp_path / "mb.db").exists() or count(db_of(tmp_path), "recording") == 0


def test_unknown_entity_option_exits_2(tmp_path, run):
    path = tmp_path / "x.jsonl"
    path.write_text("{}\n")
    assert run("--entity", "genre", path).exit_code == 2


# -- pieces --

def test_dump_time_reads_the_published_timestamp_forms():
    assert dump_time(TIMESTAMP, what="t") == "2025-11-22T00:00:52Z"
    assert dump_time("2025-11-22T01:00:00+01:00", what="t") == "2025-11-22T00:00:00Z"
    assert dump_time("2025-11-22", what="t") == "2025-11-22T00:00:00Z"


def test_progress_line_shows_bytes_rate_and_eta():
    text = format_progress(Progress(Path("recording.tar.xz"), "recording", 25_000_000, 100_000_000,
                                    50_000, 40_000, 2.0))
    assert text == ("recording.tar.xz: 25.0/100.0 MB (25%), 50,000 recording lines, 20,000/s, ETA 0:00:06")


def test_library_call_records_a_ledger_row(tmp_path):
    db = open_db(tmp_path / "mb.db")
    path = write_archive(tmp_path / "recording.tar", "recording", [line_of(d) for d in bodies(RECORDING_BODIES)])
    results = import_dumps(db, [path], ImportOptions())
    assert [r.status for r in results] == ["complete"]
    assert results[0].lines_normalized == len(RECORDING_BODIES)
    row = db.execute("SELECT command, status, requests, entities_written FROM harvest_run").fetchone()
    assert row == ("import-dump", "complete", 0, results[0].entities_written)
    assert results[0].entities_written >= len(RECORDING_BODIES)


def test_upserts_keep_types_order_and_leave_unchanged_rows_alone(db):
    """The json_each upsert path: values keep their SQLite types, a key
    given twice ends as its later row, a column not given is never blanked,
    and a row that would not change is not rewritten (its FTS row stays)."""
    from harvester.store import upsert_rows
    upsert_rows(db, "recording", [
        {"id": "r1", "title": "Ünïcode “quotes” \\ 🎵", "length_ms": 215506, "video": 1, "disambiguation": None},
        {"id": "r2", "title": "first", "length_ms": None},
        {"id": "r2", "title": "second"},
    ], {"source": "s", "fetched_at": "t"})
    upsert_rows(db, "rating", [{"entity_type": "recording", "entity_id": "r1", "kind": "rating", "value": 4.5,
                                "votes_count": 2, "licence": "x"}])
    rows = db.execute("SELECT id, title, length_ms, typeof(length_ms), video, typeof(video), disambiguation, source "
                      "FROM recording ORDER BY id").fetchall()
    assert rows == [("r1", "Ünïcode “quotes” \\ 🎵", 215506, "integer", 1, "integer", None, "s"),
                    ("r2", "second", None, "null", None, "null", None, "s")]
    assert db.execute("SELECT value, typeof(value), votes_count FROM rating").fetchone() == (4.5, "real", 2)
    changes = db.conn.total_changes
    upsert_rows(db, "recording", [{"id": "r2", "title": "second"}], {"source": "s", "fetched_at": "t"})
    assert db.conn.total_changes == changes  # nothing rewritten, no trigger fired
    upsert_rows(db, "recording", [{"id": "r2", "title": "third"}])
    assert db.execute("SELECT title, source FROM recording WHERE id = 'r2'").fetchone() == ("third", "s")
    assert db.execute("SELECT rowid FROM recording_fts WHERE recording_fts MATCH 'third'").fetchall() == \
        db.execute("SELECT rowid FROM recording WHERE id = 'r2'").fetchall()
    db.execute("INSERT INTO recording_fts (recording_fts) VALUES ('integrity-check')")


def test_the_ledger_records_the_dumps_timestamp(tmp_path, run):
    docs = bodies(RECORDING_BODIES)
    archive = write_archive(tmp_path / "recording.tar.xz", "recording", [line_of(d) for d in docs])
    assert run(archive).exit_code == 0
    command, status, args = db_of(tmp_path).execute("SELECT command, status, args FROM harvest_run").fetchone()
    assert (command, status) == ("import-dump", "complete")
    assert json.loads(args)["dump_timestamp"] == "2025-11-22T00:00:52Z"


def test_an_import_while_another_run_holds_the_database_exits_75(tmp_path, run):
    from harvester.ledger import run_lock

    archive = write_archive(tmp_path / "recording.tar.xz", "recording", [line_of(d) for d in bodies(RECORDING_BODIES)])
    with run_lock(tmp_path / "mb.db", "a refresh", "2026-01-01T00:00:00Z"):
        result = run(archive)
    assert result.exit_code == 75 and "a refresh" in result.output
    assert not (tmp_path / "mb.db").exists()
