"""`mbharvest sync-dumps` against the emulator's dump server.

What the database must hold is computed from the archives' own lines (the
bytes the server sent), never from what the importer wrote."""

from __future__ import annotations

import hashlib
import io
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tarfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import requests
from click.testing import CliRunner

from harvester import dumpsync
from harvester.cli import cli
from harvester.client import RetryPolicy
from harvester.dumps import ImportOptions
from harvester.dumpsync import DownloadProgress, DumpFetcher, format_download, parse_sums, run_sync, sync_with_settings
from harvester.emulator import Emulator
from harvester.emulator.corpus import ENTITIES as CORPUS_ENTITIES
from harvester.emulator.dumptree import ROOT, DumpServer, DumpTree, build_folder, evolve, standalone_recordings
from harvester.errors import ConfigError, RequestFailed, UsageError
from harvester.ledger import run_lock
from harvester.normalize import DUMP_ENTITY_TYPES
from harvester.refresh import stale_plans
from harvester.settings import resolve_settings
from harvester.store import open_db
from tests.conftest import CONTACT, FakeTime

FIRST = "2025-11-22 00:00:52.535446+00"
SECOND = "2025-11-26 00:00:48.12+00"
THIRD = "2025-11-29 00:00:51.9+00"
# real folders are named for when the dump started, not for its TIMESTAMP
FIRST_NAME, SECOND_NAME, THIRD_NAME = "20251122-001001", "20251126-001002", "20251129-001003"
SECOND_TIME = "2025-11-26T00:00:48Z"
ARCHIVES = tuple(f"{entity}.tar.xz" for entity in DUMP_ENTITY_TYPES)  # all eleven (issue 18)
MEMBERS = ["TIMESTAMP", "COPYING", "README", "REPLICATION_SEQUENCE", "SCHEMA_SEQUENCE", "mbdump/{entity}",
           "JSON_DUMPS_SCHEMA_NUMBER"]
TABLES = ("artist", "label", "release_group", "release", "recording")


@pytest.fixture(scope="session")
def builds(corpus):
    """The first dump, and a later one with deletions, merges, changes and additions (built once)."""
    later, changes = evolve(corpus, seed=1)
    return {"first": build_folder(corpus, FIRST), "second": build_folder(later, SECOND),
            "third": build_folder(corpus, THIRD), "changes": changes, "later": later}


@pytest.fixture
def server(builds, isolated, monkeypatch):
    for name in ("MBHARVEST_DUMP_SERVER", "MBHARVEST_DUMP_DIR", "MBHARVEST_DUMP_KEEP",
                 "MBHARVEST_INCLUDE_SUPPLEMENTARY"):
        monkeypatch.delenv(name, raising=False)
    tree = DumpTree()
    tree.install(FIRST_NAME, builds["first"])
    with DumpServer(tree) as dump_server:
        yield dump_server


def sync(tmp_path: Path, server: DumpServer, *args: str):
    return CliRunner().invoke(cli, ["sync-dumps", "--dump-server", server.url, "--contact", CONTACT,
                                    "--db", str(tmp_path / "mb.db"), "--dump-dir", str(tmp_path / "dumps"),
                                    *args])


def paths_requested(server: DumpServer) -> list[str]:
    return [entry["path"] for entry in server.requests]


# -- truth from the lines --

def archive_lines(data: bytes) -> tuple[list[str], bytes]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:xz") as tar:
        names = tar.getnames()
        member = next(name for name in names if name.startswith("mbdump/"))
        return names, tar.extractfile(member).read()


@dataclass
class Truth:
    ids: dict[str, set] = field(default_factory=lambda: {table: set() for table in TABLES})
    values: dict[str, dict] = field(default_factory=lambda: {table: {} for table in TABLES})
    isrcs: set = field(default_factory=set)
    tracks: set = field(default_factory=set)


def truth_of(folder: dict[str, bytes]) -> Truth:
    """Every entity a dump carries (top-level or nested) and the values its lines give."""
    truth = Truth()

    def credit(doc):
        for part in doc.get("artist-credit") or ():
            truth.ids["artist"].add(part["artist"]["id"])

    def recording(doc):
        truth.ids["recording"].add(doc["id"])
        truth.values["recording"][doc["id"]] = (doc["title"], doc["length"])
        truth.isrcs |= {(doc["id"], code) for code in doc["isrcs"]}
        credit(doc)

    def release_group(doc):
        truth.ids["release_group"].add(doc["id"])
        truth.values["release_group"][doc["id"]] = (doc["title"], doc["primary-type"])
        credit(doc)

    for file, data in folder.items():
        if not file.endswith(".tar.xz"):
            continue
        entity = file.removesuffix(".tar.xz")
        raw = archive_lines(data)[1]
        for line in raw.split(b"\n") if raw else ():  # a corpus's areas, works...: empty archives
            doc = json.loads(line)
            if entity in ("artist", "label"):
                truth.ids[entity].add(doc["id"])
                truth.values[entity][doc["id"]] = doc["name"]
            elif entity == "recording":
                recording(doc)
            elif entity == "release-group":
                release_group(doc)
            else:
                truth.ids["release"].add(doc["id"])
                truth.values["release"][doc["id"]] = (doc["title"], doc["date"] or None,
                                                      doc["release-group"]["id"])
                credit(doc)
                release_group(doc["release-group"])
                truth.ids["label"] |= {info["label"]["id"] for info in doc["label-info"] if info["label"]}
                for medium in doc["media"]:
                    for track in medium["tracks"]:
                        recording(track["recording"])
                        truth.tracks.add((track["id"], doc["id"], track["recording"]["id"]))
    return truth


def live(db, table: str) -> set:
    return {row[0] for row in db.execute(f"SELECT id FROM [{table}] WHERE gone_at IS NULL")}


def gone(db, table: str) -> dict:
    return dict(db.execute(f"SELECT id, gone_at FROM [{table}] WHERE gone_at IS NOT NULL").fetchall())


def stored_values(db) -> dict[str, dict]:
    queries = {
        "artist": "SELECT id, name FROM artist",
        "label": "SELECT id, name FROM label",
        "release_group": "SELECT id, title, primary_type FROM release_group",
        "release": "SELECT id, title, date, release_group_id FROM release",
        "recording": "SELECT id, title, length_ms FROM recording",
    }
    values = {}
    for table, sql in queries.items():
        rows = db.execute(sql + " WHERE gone_at IS NULL").fetchall()
        values[table] = {row[0]: row[1] if len(row) == 2 else tuple(row[1:]) for row in rows}
    return values


# -- the emulator's dump tree --

def test_the_emulator_publishes_the_tree_the_notes_describe(server, builds, corpus):
    get = lambda path, **kw: requests.get(f"{server.url}/{path}", timeout=10, **kw)  # noqa: E731
    assert get("LATEST").content == f"{FIRST_NAME}\n".encode()
    assert get(f"latest-is-{FIRST_NAME}").content == b""
    assert FIRST_NAME in get("").text
    sums = parse_sums(get(f"{FIRST_NAME}/SHA256SUMS").text, "SHA256SUMS")
    md5s = parse_sums_md5(get(f"{FIRST_NAME}/MD5SUMS").text)
    assert sorted(sums) == sorted(md5s) == sorted(ARCHIVES)
    for name in ARCHIVES:
        data = get(f"{FIRST_NAME}/{name}").content
        assert hashlib.sha256(data).hexdigest() == sums[name] and hashlib.md5(data).hexdigest() == md5s[name]
        entity = name.removesuffix(".tar.xz")
        members, raw = archive_lines(data)
        assert members == [m.format(entity=entity) for m in MEMBERS]
        assert not raw.endswith(b"\n") and b"\n\n" not in raw
        with tarfile.open(fileobj=io.BytesIO(data), mode="r:xz") as tar:
            assert tar.extractfile("TIMESTAMP").read().decode().strip() == FIRST
        ids = [json.loads(line)["id"] for line in raw.split(b"\n")] if raw else []
        if entity == "recording":  # only recordings on no release
            assert sorted(ids) == sorted(standalone_recordings(corpus))
        elif entity in CORPUS_ENTITIES:
            assert sorted(ids) == sorted(corpus.table(entity))
        else:  # a corpus holds no areas, works...: their archives are served empty
            assert ids == []
        if len(ids) > 5:
            assert ids != sorted(ids), "lines are not in MBID order"
    release = get(f"{FIRST_NAME}/release.tar.xz").content
    part = get(f"{FIRST_NAME}/release.tar.xz", headers={"Range": "bytes=1000-"})
    assert part.status_code == 206 and part.content == release[1000:]
    assert part.headers["Content-Range"] == f"bytes 1000-{len(release) - 1}/{len(release)}"
    beyond = get(f"{FIRST_NAME}/release.tar.xz", headers={"Range": f"bytes={len(release)}-"})
    assert beyond.status_code == 416 and beyond.headers["Content-Range"] == f"bytes */{len(release)}"
    assert [e["range"] for e in server.requests[-2:]] == ["bytes=1000-", f"bytes={len(release)}-"]
    # a second and a third dump: LATEST moves, the oldest folder is taken down (two kept)
    server.tree.install(SECOND_NAME, builds["second"])
    server.tree.install(THIRD_NAME, builds["third"])
    assert get("LATEST").text == f"{THIRD_NAME}\n"
    assert get(f"{FIRST_NAME}/SHA256SUMS").status_code == 404
    assert get(f"{SECOND_NAME}/SHA256SUMS").status_code == 200
    assert get(f"latest-is-{SECOND_NAME}").status_code == 404


def test_the_tree_mounts_on_the_ws2_emulator_beside_ws2(server, corpus):
    with Emulator(corpus, apps={ROOT + "/": server.tree.app}) as emu:
        latest = requests.get(f"{emu.url}{ROOT}/LATEST", timeout=10)
        archive = server.tree.get(f"{FIRST_NAME}/label.tar.xz")
        part = requests.get(f"{emu.url}{ROOT}/{FIRST_NAME}/label.tar.xz", headers={"Range": "bytes=100-"}, timeout=10)
        lookup = requests.get(f"{emu.url}/ws/2/artist/{next(iter(corpus.artists))}?fmt=json", timeout=10)
    assert latest.text == f"{FIRST_NAME}\n"
    assert part.status_code == 206 and part.content == archive[100:]
    assert lookup.status_code == 200


def parse_sums_md5(text: str) -> dict[str, str]:
    return {line.split(" *")[1]: line.split(" *")[0] for line in text.splitlines()}


# -- the command --

def test_two_dumps_in_sequence_leave_the_truth_of_the_second(tmp_path, server, builds, corpus):
    first = sync(tmp_path, server)
    assert first.exit_code == 0, first.output
    assert first.output == ""  # quiet under cron: not a terminal, no -v, nothing wrong
    truth1, truth2 = truth_of(builds["first"]), truth_of(builds["second"])
    db = open_db(tmp_path / "mb.db")
    for table in TABLES:
        assert live(db, table) == truth1.ids[table], table
    assert db.execute("SELECT new, updated, unchanged FROM harvest_run").fetchone() == (
        sum(len(truth1.ids[t]) for t in TABLES), 0, 0)
    # an artist fetched through the API after the second dump's TIMESTAMP, which that dump no longer carries
    api_artist = next(iter(builds["changes"].deleted["artist"]))
    with Emulator(corpus) as emu:
        harvested = CliRunner().invoke(cli, ["harvest", "artist", api_artist, "--server", emu.url, "--rate", "0",
                                             "--contact", CONTACT, "--db", str(tmp_path / "mb.db")])
    assert harvested.exit_code == 0, harvested.output
    api_row = db.execute("SELECT * FROM artist WHERE id = ?", [api_artist]).fetchone()
    assert db.execute("SELECT source FROM artist WHERE id = ?", [api_artist]).fetchone()[0].startswith("ws2:")

    server.tree.install(SECOND_NAME, builds["second"])
    second = sync(tmp_path, server, "-v")
    assert second.exit_code == 0, second.output
    db = open_db(tmp_path / "mb.db")
    changes = builds["changes"]
    for table, entity in zip(TABLES, ("artist", "label", "release-group", "release", "recording")):
        expected_gone = truth1.ids[table] - truth2.ids[table] - ({api_artist} if table == "artist" else set())
        assert set(changes.deleted.get(entity, ())) | set(changes.merged.get(entity, {})) <= \
            expected_gone | {api_artist}, "the scenario deletes and merges"
        assert gone(db, table) == {entity_id: SECOND_TIME for entity_id in expected_gone}, table
        assert live(db, table) == truth2.ids[table] | ({api_artist} if table == "artist" else set()), table
    expected_values = {table: dict(values) for table, values in truth2.values.items()}
    stored = stored_values(db)
    stored["artist"].pop(api_artist)
    assert stored == expected_values
    assert db.execute("SELECT * FROM artist WHERE id = ?", [api_artist]).fetchone() == api_row
    live_recordings = live(db, "recording")
    pairs = {tuple(row) for row in db.execute("SELECT recording_id, isrc FROM recording_isrc")}
    assert {p for p in pairs if p[0] in live_recordings} == truth2.isrcs
    live_releases = live(db, "release")
    tracks = {tuple(row) for row in db.execute("SELECT id, release_id, recording_id FROM track")}
    assert {t for t in tracks if t[1] in live_releases} == truth2.tracks
    figures = json.loads(CliRunner().invoke(cli, ["stats", "--json", "--db", str(tmp_path / "mb.db")]).stdout)
    assert figures["recordings"] == len(truth2.ids["recording"])
    assert figures["releases"] == len(truth2.ids["release"])
    assert figures["tracks"] == len(truth2.tracks)
    assert figures["isrcs_unique"] == len({isrc for _, isrc in truth2.isrcs})
    # the ledger: counts, the dump, each archive's URL and SHA-256
    run = db.execute("SELECT status, gone, new, args FROM harvest_run WHERE command = 'sync-dumps' "
                     "ORDER BY id DESC").fetchone()
    # one ledger row per sync (its imports are part of it), each carried entity counted once
    assert [c for (c,) in db.execute("SELECT command FROM harvest_run ORDER BY id")] == [
        "sync-dumps", "harvest artist", "sync-dumps"]
    new, updated, unchanged = db.execute("SELECT new, updated, unchanged FROM harvest_run "
                                         "ORDER BY id DESC").fetchone()
    assert new + updated + unchanged == sum(len(truth2.ids[t]) for t in TABLES)
    changed = {entity_id for ids in changes.changed.values() for entity_id in ids}
    assert len(changed) > 0 and updated >= len(changed)
    args = json.loads(run[3])
    sums = parse_sums(builds["second"]["SHA256SUMS"].decode(), "SHA256SUMS")
    assert run[:2] == ("complete", sum(len(truth1.ids[t] - truth2.ids[t]) for t in TABLES) - 1)
    assert run[2] == sum(len(truth2.ids[t] - truth1.ids[t]) for t in TABLES)
    assert args["dump"] == SECOND_NAME and args["dump_timestamp"] == SECOND_TIME
    assert {a["dump_url"]: a["sha256"] for a in args["archives"]} == {
        f"{server.url}/{SECOND_NAME}/{name}": sums[name] for name in ARCHIVES}
    assert f"{sum(len(truth1.ids[t] - truth2.ids[t]) for t in TABLES) - 1} gone" in second.stdout
    # --keep 1 (the default): only the newest dump stays on disk
    assert sorted(p.name for p in (tmp_path / "dumps").iterdir()) == [SECOND_NAME]
    assert sorted(p.name for p in (tmp_path / "dumps" / SECOND_NAME).iterdir()) == sorted(ARCHIVES + ("SHA256SUMS",))


def test_a_bag_of_the_synced_database_cites_each_archive_url_and_sha256(tmp_path, server, builds):
    assert sync(tmp_path, server).exit_code == 0
    bag = CliRunner().invoke(cli, ["export", "bagit", "--out", str(tmp_path / "bag"), "--db", str(tmp_path / "mb.db")])
    assert bag.exit_code == 0, bag.output
    info = (tmp_path / "bag" / "bag-info.txt").read_text(encoding="utf-8")
    sums = parse_sums(builds["first"]["SHA256SUMS"].decode(), "SHA256SUMS")
    for name in ARCHIVES:
        assert f"Dump-URL: {server.url}/{FIRST_NAME}/{name} sha256:{sums[name]}" in info, name
    assert "Dump-Timestamp: 2025-11-22T00:00:52Z" in info


def test_an_entity_back_in_a_later_dump_is_live_again(tmp_path, server, builds):
    assert sync(tmp_path, server).exit_code == 0
    server.tree.install(SECOND_NAME, builds["second"])
    assert sync(tmp_path, server).exit_code == 0
    server.tree.install(THIRD_NAME, builds["third"])  # the first corpus again: what was gone is back
    result = sync(tmp_path, server, "--keep", "2")
    assert result.exit_code == 0, result.output
    db = open_db(tmp_path / "mb.db")
    truth3 = truth_of(builds["third"])
    for table in TABLES:
        assert live(db, table) == truth3.ids[table], table
    assert sorted(p.name for p in (tmp_path / "dumps").iterdir()) == [SECOND_NAME, THIRD_NAME]


def test_recording_deletions_wait_for_the_release_archive(tmp_path, server, builds):
    assert sync(tmp_path, server).exit_code == 0
    server.tree.install(SECOND_NAME, builds["second"])
    only = sync(tmp_path, server, "recording", "-v")
    assert only.exit_code == 0, only.output
    assert "not checked for deletions: recording (needs recording.tar.xz and release.tar.xz)" in only.stdout
    db = open_db(tmp_path / "mb.db")
    assert gone(db, "recording") == {}
    before = len(server.requests)
    rest = sync(tmp_path, server, "-v")
    assert rest.exit_code == 0, rest.output
    fetched = paths_requested(server)[before:]
    assert f"{SECOND_NAME}/recording.tar.xz" not in fetched  # imported already: not downloaded again
    truth1, truth2 = truth_of(builds["first"]), truth_of(builds["second"])
    assert gone(db, "recording") == {i: SECOND_TIME for i in truth1.ids["recording"] - truth2.ids["recording"]}
    assert gone(db, "recording")


def test_an_unchanged_latest_costs_one_request_and_exits_0(tmp_path, server):
    assert sync(tmp_path, server, "--keep", "0").exit_code == 0
    assert not (tmp_path / "dumps" / FIRST_NAME).exists()  # --keep 0: nothing kept after the import
    db_file = tmp_path / "mb.db"
    content = sqlite3.connect(db_file).execute("SELECT count(*), group_concat(id) FROM release").fetchone()
    before = len(server.requests)
    quiet = sync(tmp_path, server)
    assert quiet.exit_code == 0 and quiet.output == ""
    told = sync(tmp_path, server, "-v")
    assert told.exit_code == 0 and f"{FIRST_NAME} is already imported" in told.stdout
    assert paths_requested(server)[before:] == ["LATEST", "LATEST"]
    assert sqlite3.connect(db_file).execute("SELECT count(*), group_concat(id) FROM release").fetchone() == content


def wait_for_part(folder: Path, at_least: int, process: subprocess.Popen, seconds: float = 60) -> Path:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and process.poll() is None:
        for part in folder.glob("*.part") if folder.exists() else ():
            try:
                if part.stat().st_size >= at_least:
                    return part
            except FileNotFoundError:  # finished and renamed since the listing
                continue
        time.sleep(0.01)
    raise AssertionError(f"no .part of {at_least} bytes appeared (exit {process.poll()})")


@pytest.mark.parametrize("stop", [signal.SIGKILL, signal.SIGTERM], ids=["kill -9", "SIGTERM"])
def test_a_download_stopped_mid_file_resumes_with_range(tmp_path, server, builds, stop):
    server.rate_bytes = 40_000  # the release archive (~130 kB) takes seconds: time to stop it mid-file
    env = {k: v for k, v in os.environ.items() if not k.startswith("MBHARVEST_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "harvester", "sync-dumps", "--dump-server", server.url, "--contact", CONTACT,
         "--db", str(tmp_path / "mb.db"), "--dump-dir", str(tmp_path / "dumps")],
        cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    part = wait_for_part(tmp_path / "dumps" / FIRST_NAME, 32 << 10, process)
    os.kill(process.pid, stop)
    stderr = process.communicate(timeout=30)[1].decode()
    if stop == signal.SIGTERM:  # stopped cleanly: exit 1, one line, the ledger says so at once
        assert process.returncode == 1 and "interrupted by SIGTERM" in stderr
        status = sqlite3.connect(tmp_path / "mb.db").execute("SELECT status FROM harvest_run").fetchall()
        assert status == [("interrupted",)]
    kept = part.stat().st_size
    served = builds["first"][part.name.removesuffix(".part")]
    assert 0 < kept < len(served), "the kill should land mid-file"
    assert part.read_bytes() == served[:kept]

    server.rate_bytes = None
    before = len(server.requests)
    result = sync(tmp_path, server)
    assert result.exit_code == 0, result.output
    resumed = [e for e in server.requests[before:] if e["path"].endswith(part.name.removesuffix(".part"))]
    assert [(e["range"], e["status"], e["bytes"]) for e in resumed] == [(f"bytes={kept}-", 206, len(served) - kept)]
    final = part.with_name(part.name.removesuffix(".part"))
    assert not part.exists()
    sums = parse_sums(builds["first"]["SHA256SUMS"].decode(), "SHA256SUMS")
    assert hashlib.sha256(final.read_bytes()).hexdigest() == sums[final.name]
    # every other archive was requested once: none complete and verified was fetched again
    for name in ARCHIVES:
        asked = [(e["range"], e["status"]) for e in server.requests if e["path"] == f"{FIRST_NAME}/{name}"]
        assert asked == ([(None, 200), (f"bytes={kept}-", 206)] if name == final.name else [(None, 200)]), name
    db = open_db(tmp_path / "mb.db")
    assert live(db, "release") == truth_of(builds["first"]).ids["release"]
    runs = db.execute("SELECT status FROM harvest_run WHERE command = 'sync-dumps' ORDER BY id").fetchall()
    assert runs == [("interrupted",), ("complete",)]


def test_a_corrupted_archive_is_refused_and_nothing_is_imported(tmp_path, server, builds):
    server.tree.corrupt(FIRST_NAME, "release.tar.xz")
    result = sync(tmp_path, server)
    assert result.exit_code == 1
    assert "SHA-256" in result.stderr and "release.tar.xz" in result.stderr
    folder = tmp_path / "dumps" / FIRST_NAME
    assert not (folder / "release.tar.xz").exists() and not (folder / "release.tar.xz.part").exists()
    db = open_db(tmp_path / "mb.db")
    for table in TABLES:
        assert db.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0] == 0, table
    assert db.execute("SELECT status, error FROM harvest_run").fetchall()[-1][0] == "failed"
    # the server is fixed: only the refused archive is fetched again
    server.tree.install(FIRST_NAME, builds["first"])
    before = len(server.requests)
    assert sync(tmp_path, server).exit_code == 0
    assert paths_requested(server)[before:] == ["LATEST", f"{FIRST_NAME}/release.tar.xz"]
    assert live(db, "release") == truth_of(builds["first"]).ids["release"]


def test_drops_and_503s_are_retried_politely_one_connection_at_a_time(tmp_path, server, builds):
    # requests: 1 LATEST, 2 SHA256SUMS, then the eleven archives in import order, release the last:
    # it drops halfway
    at = 2 + len(dumpsync.IMPORT_ORDER)  # the release archive's request (1-based), its index in the log + 1
    server.faults = {at: "drop", at + 1: "503:7"}
    fake = FakeTime()
    fetcher = DumpFetcher(server.url, CONTACT, clock=fake.clock, sleep=fake.sleep,
                          retry=RetryPolicy(attempts=4, backoff_base=0.5, jitter=0.0))
    db = open_db(tmp_path / "mb.db")
    outcome = run_sync(db, fetcher, DUMP_ENTITY_TYPES, dump_dir=tmp_path / "dumps", options=ImportOptions())
    assert outcome.status == "complete"
    log = server.requests
    release = builds["first"]["release.tar.xz"]
    assert [e["path"] for e in log[at - 1:]] == [f"{FIRST_NAME}/release.tar.xz"] * 3
    sent = log[at - 1]["bytes"]
    assert 0 < sent < len(release)
    # a read cut short loses its unfinished chunk: the resume starts where the part file ends
    kept = int(log[at]["range"].removeprefix("bytes=").removesuffix("-"))
    assert 0 < kept <= sent
    assert [(e["range"], e["status"]) for e in log[at - 1:]] == [(None, 200), (f"bytes={kept}-", 503),
                                                                 (f"bytes={kept}-", 206)]
    assert log[at + 1]["bytes"] == len(release) - kept
    assert fake.sleeps[-1] >= 7  # Retry-After honoured
    assert server.most_active == 1
    assert all(CONTACT in e["user_agent"] and e["user_agent"].startswith("mbharvest/") for e in log)
    assert hashlib.sha256((tmp_path / "dumps" / FIRST_NAME / "release.tar.xz").read_bytes()).hexdigest() == \
        hashlib.sha256(release).hexdigest()
    assert outcome.requests == len(log)


def test_an_unreachable_dump_server_fails_after_backing_off_and_counts_no_request(tmp_path):
    closed = DumpServer(DumpTree())
    url = closed.url
    closed.server.server_close()  # the port is free again: connections are refused
    fake = FakeTime()
    fetcher = DumpFetcher(url, CONTACT, clock=fake.clock, sleep=fake.sleep,
                          retry=RetryPolicy(attempts=4, backoff_base=1.0, jitter=0.0))
    with pytest.raises(RequestFailed, match="connection refused"):
        fetcher.latest()
    assert fake.sleeps == [1.0, 2.0, 4.0] and fetcher.requests_made == 0


def test_a_server_ignoring_range_is_downloaded_again_from_the_start(tmp_path, server, builds):
    folder = tmp_path / "dumps" / FIRST_NAME
    folder.mkdir(parents=True)
    (folder / "label.tar.xz.part").write_bytes(b"left by something else" * 10)
    server.ignore_range = True
    assert sync(tmp_path, server).exit_code == 0
    label = [e for e in server.requests if e["path"].endswith("label.tar.xz")]
    assert [(e["range"], e["status"]) for e in label] == [("bytes=220-", 200)]
    assert (folder / "label.tar.xz").read_bytes() == builds["first"]["label.tar.xz"]


def test_max_runtime_stops_cleanly_and_the_next_run_continues(tmp_path, server, builds):
    stopped = sync(tmp_path, server, "--max-runtime", "0", "-v")
    assert stopped.exit_code == 0, stopped.output
    assert "partial" in stopped.stdout and "run it again to continue" in stopped.stdout
    db = open_db(tmp_path / "mb.db")
    assert db.execute("SELECT status FROM harvest_run WHERE command = 'sync-dumps'").fetchall() == [("partial",)]
    assert db.execute("SELECT count(*) FROM artist").fetchone()[0] == 0
    first = dumpsync.archive_name(dumpsync.IMPORT_ORDER[0])  # the first archive downloaded
    part = tmp_path / "dumps" / FIRST_NAME / f"{first}.part"
    kept = part.stat().st_size
    before = len(server.requests)
    assert sync(tmp_path, server).exit_code == 0
    again = [e for e in server.requests[before:] if e["path"].endswith(first)]
    # a part that already held the whole file: the server says so (416) and nothing is sent again
    expected = 416 if kept == len(builds["first"][first]) else 206
    assert [(e["range"], e["status"]) for e in again] == [(f"bytes={kept}-", expected)]
    assert live(db, "release") == truth_of(builds["first"]).ids["release"]


def test_without_a_contact_exit_2_and_no_request(tmp_path, server):
    result = CliRunner().invoke(cli, ["sync-dumps", "--dump-server", server.url, "--db", str(tmp_path / "mb.db")])
    assert result.exit_code == 2 and "contact" in result.stderr
    assert server.requests == [] and not (tmp_path / "mb.db").exists()


def test_while_another_run_holds_the_database_exit_75_and_no_request(tmp_path, server):
    with run_lock(tmp_path / "mb.db", "refresh", "2026-01-01T00:00:00Z"):
        result = sync(tmp_path, server)
    assert result.exit_code == 75 and "in use by another run" in result.stderr
    assert server.requests == []


def test_a_latest_that_names_no_dump_folder_exits_1(tmp_path, server):
    server.tree.files["LATEST"] = b"<html>maintenance</html>\n"
    result = sync(tmp_path, server)
    assert result.exit_code == 1 and "not a dump folder name" in result.stderr


# -- refresh leaves dump rows to the dumps --

def test_refresh_stale_sweep_leaves_rows_from_dumps_alone(db):
    old = "2001-01-01T00:00:00Z"
    db["recording"].insert_all([
        {"id": "r-dump", "fetched_at": old, "source": "dump:2001-01-01T00:00:00Z"},
        {"id": "r-api", "fetched_at": old, "source": "ws2:https://musicbrainz.org"},
        {"id": "r-unknown", "fetched_at": old, "source": None},
    ])
    assert [plan.seed for plan in stale_plans(db, 30)] == ["r-api", "r-unknown"]


# -- settings, progress, pieces --

def test_dump_settings_from_option_env_and_config(tmp_path):
    config = tmp_path / "mb.toml"
    config.write_text('[dumps]\nserver = "http://mirror.example/json-dumps/"\ndir = "/srv/dumps"\nkeep = 2\n')
    from_config = resolve_settings({"config": str(config)}, environ={}, cwd=tmp_path)
    assert (from_config.dump_server, from_config.dump_dir, from_config.dump_keep) == \
        ("http://mirror.example/json-dumps", Path("/srv/dumps"), 2)
    from_env = resolve_settings({"config": str(config)}, environ={"MBHARVEST_DUMP_SERVER": "http://other/x",
                                                                   "MBHARVEST_DUMP_KEEP": "0"}, cwd=tmp_path)
    assert (from_env.dump_server, from_env.dump_keep) == ("http://other/x", 0)
    default = resolve_settings({}, environ={}, cwd=tmp_path)
    assert (default.dump_server, default.dump_dir, default.dump_keep) == (
        "https://data.metabrainz.org/pub/musicbrainz/data/json-dumps", Path("data/dumps"), 1)
    config.write_text("[dumps]\nkeep = -1\n")
    with pytest.raises(UsageError, match=r"\[dumps\] keep must be 0 or more"):
        resolve_settings({"config": str(config)}, environ={}, cwd=tmp_path)
    config.write_text('[dumps]\nmirror = "x"\n')
    with pytest.raises(ConfigError, match="dumps.mirror"):
        resolve_settings({"config": str(config)}, environ={}, cwd=tmp_path)


def test_download_progress_shows_bytes_of_total_rate_and_eta():
    line = format_download(DownloadProgress("release.tar.xz", 5_000_000_000, 20_000_000_000, 4_000_000_000, 100.0))
    assert line == "release.tar.xz: 5,000.0/20,000.0 MB (25%), 40.0 MB/s, ETA 6:15"


def test_sums_lines_in_binary_and_text_mode():
    digest = "a" * 64
    assert parse_sums(f"{digest} *release.tar.xz\n{digest.upper()}  artist.tar.xz\n", "x") == {
        "release.tar.xz": digest, "artist.tar.xz": digest}


def test_the_import_order_covers_every_entity_type_the_database_keeps():
    assert sorted(dumpsync.IMPORT_ORDER) == sorted(DUMP_ENTITY_TYPES)
    assert dumpsync.IMPORT_ORDER.index("release") > dumpsync.IMPORT_ORDER.index("recording")


def test_the_import_settings_apply_to_the_dumps_a_sync_imports(tmp_path, server, monkeypatch):
    """[import] memory_mb, temp_dir and processes (or their environment variables) bound sync-dumps' imports too."""
    monkeypatch.setenv("MBHARVEST_IMPORT_MEMORY_MB", "512")
    monkeypatch.setenv("MBHARVEST_IMPORT_PROCESSES", "1")
    monkeypatch.setenv("MBHARVEST_IMPORT_TEMP_DIR", str(tmp_path / "staging"))
    result = sync(tmp_path, server)
    assert result.exit_code == 0, result.output
    assert (tmp_path / "staging").is_dir() and not (tmp_path / "mb.db.import").exists()
    seen = []
    monkeypatch.setattr("harvester.dumpsync.run_sync", lambda db, fetcher, types, **kw: seen.append(kw["options"]))
    settings = resolve_settings({"db": str(tmp_path / "mb.db"), "contact": CONTACT, "dump_server": server.url},
                                environ=dict(os.environ), cwd=tmp_path)
    sync_with_settings(settings, ["release"])
    assert [(options.memory_mb, options.temp_dir, options.processes) for options in seen] == [
        (512, tmp_path / "staging", 1)]
