"""Harvests against the project's WS/2 emulator: the database must equal the
corpus's truth exactly, with no more requests than a perfect client's + 2."""

from __future__ import annotations

import math
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid

import pytest
from click.testing import CliRunner

from harvester import __version__
from harvester.cli import cli
from harvester.client import WS2Client
from harvester.emulator import Emulator, generate_corpus
from tests.conftest import CONTACT
from tests.truth import artist_truth, credited, isrc_truth, label_truth, release_group_truth, stored



pytestmark = pytest.mark.usefixtures("isolated")


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(seed=11, artists=8)


@pytest.fixture
def emulator(corpus):
    with Emulator(corpus) as emu:
        yield emu


def run(emu, db_path, *args, contact=CONTACT, rate="0"):
    options = ["--server", emu.url, "--rate", rate, "--db", str(db_path)]
    if contact is not None:
        options += ["--contact", contact]
    return CliRunner().invoke(cli, [*args[:2], *options, *args[2:]] if args[0] in ("harvest", "plan")
                              else [*args, *options])


def open_sqlite(path):
    return sqlite3.connect(path)


def assert_equal_truth(db, truth):
    got = stored(db)
    assert got.releases == truth.releases
    assert got.release_groups == truth.release_groups
    assert got.recordings == truth.recordings
    assert got.tracks == truth.tracks
    assert got.isrc_pairs == truth.isrc_pairs
    assert got.labels == truth.labels
    assert got.credit_names == truth.credit_names
    assert truth.artists <= got.artists


def prolific_artist(corpus):
    return max(corpus.artists, key=lambda a: sum(
        sum(len(m["tracks"]) for m in r["media"]) for r in corpus.releases.values() if a in credited(r)))


def test_prolific_artist_equals_truth_at_the_floor(corpus, emulator, tmp_path):
    artist = prolific_artist(corpus)
    truth = artist_truth(corpus, artist)
    assert len(truth.tracks) > 500  # so release pages are cut
    result = run(emulator, tmp_path / "a.db", "harvest", "artist", artist)
    assert result.exit_code == 0, result.output
    db = open_sqlite(tmp_path / "a.db")
    assert_equal_truth(db, truth)
    assert len(emulator.requests) <= truth.floor + 2
    assert len(emulator.requests) == truth.floor  # no faults: exactly the floor
    assert {r["user_agent"] for r in emulator.requests} == {f"mbharvest/{__version__} ( {CONTACT} )"}
    cut_pages = [r for r in emulator.requests if "/ws/2/release?" in r["path"] and "recordings" in r["path"]]
    assert len(cut_pages) >= 2
    ledger = db.execute("SELECT status, requests FROM harvest_run").fetchall()
    assert ledger == [("complete", truth.floor)]


def test_corpus_edge_cases_are_all_harvested(corpus, emulator, tmp_path):
    """Two ISRCs on a recording, one ISRC on two recordings, unicode names and a
    recording on no release, across every artist of the corpus."""
    artists = list(corpus.artists)
    result = run(emulator, tmp_path / "all.db", "harvest", "artist", *artists)
    assert result.exit_code == 0, result.output
    db = open_sqlite(tmp_path / "all.db")
    truth = artist_truth(corpus, artists[0])
    for artist in artists[1:]:
        other = artist_truth(corpus, artist)
        for name in ("artists", "labels", "release_groups", "releases", "recordings", "tracks", "isrc_pairs",
                     "credit_names"):
            getattr(truth, name).update(getattr(other, name))
    assert_equal_truth(db, truth)
    pairs = truth.isrc_pairs
    by_recording, by_code = {}, {}
    for recording_id, code in pairs:
        by_recording.setdefault(recording_id, set()).add(code)
        by_code.setdefault(code, set()).add(recording_id)
    assert any(len(codes) >= 2 for codes in by_recording.values())
    assert any(len(ids) >= 2 for ids in by_code.values())
    on_no_release = truth.recordings - {row[0] for row in db.execute("SELECT recording_id FROM track")}
    assert on_no_release
    names = [row[0] for row in db.execute("SELECT name FROM artist UNION ALL SELECT title FROM recording")]
    assert any(any(ord(ch) > 127 for ch in name or "") for name in names)
    stored_names = {row[0]: row[1] for row in db.execute("SELECT id, name FROM artist")}
    assert all(stored_names[a] == corpus.artists[a]["name"] for a in artists)


def test_artist_with_no_releases(corpus, emulator, tmp_path):
    silent = next(a for a, doc in corpus.artists.items() if doc.get("disambiguation") == "no releases")
    truth = artist_truth(corpus, silent)
    assert not truth.releases
    result = run(emulator, tmp_path / "s.db", "harvest", "artist", silent)
    assert result.exit_code == 0, result.output
    db = open_sqlite(tmp_path / "s.db")
    assert_equal_truth(db, truth)
    assert db.execute("SELECT count(*) FROM artist WHERE id = ?", [silent]).fetchone()[0] == 1
    assert len(emulator.requests) == truth.floor == 4


def test_artist_only_featured_on_others_recordings(tmp_path):
    corpus = generate_corpus(seed=5, artists=4)
    guest = str(uuid.UUID(int=12345))
    corpus.artists[guest] = {"id": guest, "name": "Gästé Ñame", "sort-name": "Ñame, Gästé"}
    hosts = list(corpus.recordings)[:3]
    for recording_id in hosts:
        credit = corpus.recordings[recording_id]["artist-credit"]
        credit[-1] = {**credit[-1], "joinphrase": " feat. "}
        credit.append({"name": "Gästé Ñame", "joinphrase": "", "artist": guest})
    truth = artist_truth(corpus, guest)
    assert truth.recordings == set(hosts) and not truth.releases
    with Emulator(corpus) as emu:
        result = run(emu, tmp_path / "f.db", "harvest", "artist", guest)
        assert result.exit_code == 0, result.output
        assert len(emu.requests) == truth.floor
    assert_equal_truth(open_sqlite(tmp_path / "f.db"), truth)


def test_label_release_group_release_recording_and_isrc(corpus, emulator, tmp_path):
    label = next(iter(corpus.labels))
    group = next(iter(corpus.release_groups))
    for args, truth in ((("label", label), label_truth(corpus, label)),
                        (("release-group", group), release_group_truth(corpus, group))):
        before = len(emulator.requests)
        path = tmp_path / f"{args[0]}.db"
        result = run(emulator, path, "harvest", *args)
        assert result.exit_code == 0, result.output
        assert_equal_truth(open_sqlite(path), truth)
        assert len(emulator.requests) - before == truth.floor
    release_id = next(iter(corpus.releases))
    result = run(emulator, tmp_path / "r.db", "harvest", "release", release_id)
    assert result.exit_code == 0
    db = open_sqlite(tmp_path / "r.db")
    expected_tracks = {t["id"] for m in corpus.releases[release_id]["media"] for t in m["tracks"]}
    assert {row[0] for row in db.execute("SELECT id FROM track")} == expected_tracks
    codes = sorted({code for r in corpus.recordings.values() for code in r.get("isrcs") or ()})[:5]
    before = len(emulator.requests)
    result = run(emulator, tmp_path / "i.db", "harvest", "isrc", *codes)
    assert result.exit_code == 0, result.output
    truth = isrc_truth(corpus, codes)
    got = stored(open_sqlite(tmp_path / "i.db"))
    assert got.recordings == truth.recordings and got.isrc_pairs == truth.isrc_pairs
    assert len(emulator.requests) - before == len(codes)


def test_search_pages_until_max_results(corpus, emulator, tmp_path):
    artist = prolific_artist(corpus)
    expected = {r for r, doc in corpus.recordings.items() if artist in credited(doc)}
    assert len(expected) > 100
    result = run(emulator, tmp_path / "q.db", "harvest", "search", "recording", f"arid:{artist}",
                 "--max-results", "150")
    assert result.exit_code == 0, result.output
    got = stored(open_sqlite(tmp_path / "q.db")).recordings
    assert len(got) == 150 and got <= expected
    assert len(emulator.requests) == 2


def test_malformed_keys_are_reported_never_sent_and_the_rest_harvested(corpus, emulator, tmp_path):
    good = next(iter(corpus.recordings))
    result = run(emulator, tmp_path / "m.db", "harvest", "recording", "not-an-mbid", good,
                 "'; DROP TABLE recording; --", "x" * 5000)
    assert result.exit_code == 2
    assert result.output.count("skipped: invalid MBID") == 3
    assert [r["path"].split("?")[0] for r in emulator.requests] == [f"/ws/2/recording/{good}"]
    assert stored(open_sqlite(tmp_path / "m.db")).recordings == {good}


def test_invalid_isrcs_never_sent(emulator, tmp_path):
    result = run(emulator, tmp_path / "x.db", "harvest", "isrc", "NOT-AN-ISRC", "GB-AHS-11-0009")
    assert result.exit_code == 2 and "every key was malformed" in result.output
    assert emulator.requests == []


def test_gone_keys_are_reported_and_the_rest_continue(corpus, emulator, tmp_path):
    good = next(iter(corpus.recordings))
    missing = str(uuid.UUID(int=99))
    result = run(emulator, tmp_path / "g.db", "harvest", "recording", missing, good)
    assert result.exit_code == 0, result.output
    assert f"gone: {missing}" in result.output
    only_missing = run(emulator, tmp_path / "g2.db", "harvest", "recording", missing)
    assert only_missing.exit_code == 1 and "every key is gone" in only_missing.output


def test_merged_entity_is_redirected(corpus, emulator, tmp_path):
    old, new = next(iter(corpus.redirects["artist"].items()))
    result = run(emulator, tmp_path / "d.db", "harvest", "artist", old)
    assert result.exit_code == 0, result.output
    db = open_sqlite(tmp_path / "d.db")
    assert db.execute("SELECT new_id, entity_type FROM mbid_redirect WHERE old_id = ?", [old]).fetchall() == [
        (new, "artist")]
    assert_equal_truth(db, artist_truth(corpus, new))


def test_missing_contact_exits_2_before_any_request(emulator, tmp_path):
    result = run(emulator, tmp_path / "c.db", "harvest", "artist", str(uuid.UUID(int=1)), contact=None)
    assert result.exit_code == 2 and "contact" in result.output.lower()
    result = run(emulator, tmp_path / "c.db", "harvest", "artist", str(uuid.UUID(int=1)), contact="nobody")
    assert result.exit_code == 2
    assert emulator.requests == [] and not (tmp_path / "c.db").exists()


def test_budget_stops_cleanly_and_a_rerun_continues_to_the_truth(corpus, emulator, tmp_path):
    artist = prolific_artist(corpus)
    truth = artist_truth(corpus, artist)
    path = tmp_path / "b.db"
    runs = 0
    while True:
        runs += 1
        result = run(emulator, path, "harvest", "artist", artist, "--max-requests", "2")
        assert result.exit_code == 0, result.output
        status = open_sqlite(path).execute("SELECT status FROM harvest_run ORDER BY id DESC").fetchone()[0]
        if status == "complete":
            break
        assert status == "partial" and runs < 20
    assert runs > 2
    assert_equal_truth(open_sqlite(path), truth)
    assert len(emulator.requests) <= truth.floor + 2
    assert open_sqlite(path).execute("SELECT count(*) FROM harvest_bookmark").fetchone()[0] == 0


def test_rerunning_a_finished_harvest_harvests_afresh(corpus, emulator, tmp_path):
    recording = next(iter(corpus.recordings))
    for _ in range(2):
        assert run(emulator, tmp_path / "t.db", "harvest", "recording", recording).exit_code == 0
    assert len(emulator.requests) == 2


def test_second_run_on_the_same_database_exits_75(corpus, emulator, tmp_path):
    from harvester.ledger import run_lock

    with run_lock(tmp_path / "l.db", "test holder", "2026-01-01T00:00:00Z"):
        started = time.monotonic()
        result = run(emulator, tmp_path / "l.db", "harvest", "recording", next(iter(corpus.recordings)))
        assert time.monotonic() - started < 1.0
    assert result.exit_code == 75
    assert f"pid {os.getpid()}" in result.output and "test holder" in result.output
    assert emulator.requests == []


def test_plan_estimates_the_floor(corpus, emulator, tmp_path):
    artist = prolific_artist(corpus)
    truth = artist_truth(corpus, artist)
    result = run(emulator, tmp_path / "p.db", "plan", "artist", artist)
    assert result.exit_code == 0, result.output
    total = int(result.output.split("total: ")[1].split(" requests")[0].replace(",", ""))
    assert abs(total - truth.floor) <= 1
    assert len(emulator.requests) == 3  # one probe per browse
    assert not (tmp_path / "p.db").exists()


def _harvest_process(emu, db_path, cache_dir, artist):
    env = {**os.environ, "MBHARVEST_CACHE_DIR": str(cache_dir), "MBHARVEST_CONTACT": CONTACT}
    return subprocess.Popen(
        [sys.executable, "-m", "harvester", "harvest", "artist", artist, "--server", emu.url, "--rate", "40",
         "--db", str(db_path)], env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _content(path):
    db = sqlite3.connect(path)
    tables = [row[0] for row in db.execute(
        "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE '%fts%' "
        "AND name NOT IN ('harvest_run', 'harvest_bookmark', '_sqlite_migrations')")]
    content = {}
    for table in tables:
        columns = [row[1] for row in db.execute(f"PRAGMA table_info([{table}])") if row[1] not in ("fetched_at", "source")]
        content[table] = sorted(db.execute(f"SELECT {', '.join(f'[{c}]' for c in columns)} FROM [{table}]").fetchall(),
                                key=repr)
    return content


def test_sigkill_at_several_points_then_rerun_equals_an_uninterrupted_run(corpus, tmp_path):
    artist = prolific_artist(corpus)
    truth = artist_truth(corpus, artist)
    with Emulator(corpus) as emu:
        reference = tmp_path / "reference.db"
        assert run(emu, reference, "harvest", "artist", artist).exit_code == 0
        reference_requests = len(emu.requests)
    kills = 0
    with Emulator(corpus) as emu:
        path = tmp_path / "killed.db"
        for kill_after in (1, 2, 3, 2, 2):
            seen = len(emu.requests)
            process = _harvest_process(emu, path, tmp_path / "cache", artist)
            deadline = time.monotonic() + 20
            while len(emu.requests) < seen + kill_after and process.poll() is None and time.monotonic() < deadline:
                time.sleep(0.002)
            if process.poll() is None:
                process.send_signal(signal.SIGKILL)
                kills += 1
            process.wait()
            assert sqlite3.connect(path).execute("PRAGMA integrity_check").fetchone()[0] == "ok"
            if process.returncode == 0:
                break  # it finished before the kill point: nothing left to interrupt
        last = sqlite3.connect(path).execute("SELECT status FROM harvest_run ORDER BY id DESC").fetchone()[0]
        if last != "complete":
            final = _harvest_process(emu, path, tmp_path / "cache", artist)
            assert final.wait() == 0, final.stderr.read()
        total_requests = len(emu.requests)
    assert kills >= 3
    assert _content(path) == _content(reference)
    statuses = [row[0] for row in sqlite3.connect(path).execute("SELECT status FROM harvest_run ORDER BY id")]
    assert statuses == ["interrupted"] * kills + ["complete"]  # killed runs are closed, never left "running"
    assert_equal_truth(sqlite3.connect(path), truth)
    assert reference_requests == truth.floor
    assert total_requests <= truth.floor + kills + 2


# ---- the real service's ways: 301s for merged MBIDs, browses that shift while paging ----


def test_a_merged_mbid_at_1_req_per_s_keeps_every_gap_including_the_redirect(corpus, emulator, tmp_path):
    old, new = next(iter(corpus.redirects["recording"].items()))
    result = run(emulator, tmp_path / "m.db", "harvest", "recording", old, rate="1")
    assert result.exit_code == 0, result.output
    log = emulator.requests
    assert [(entry["status"], entry["path"].split("?")[0]) for entry in log] == [
        (301, f"/ws/2/recording/{old}"), (200, f"/ws/2/recording/{new}")]
    arrivals = [entry["monotonic"] for entry in log]
    assert all(later - earlier >= 1.0 - 0.02 for earlier, later in zip(arrivals, arrivals[1:]))
    db = open_sqlite(tmp_path / "m.db")
    assert db.execute("SELECT requests, status FROM harvest_run").fetchall() == [(2, "complete")]
    assert db.execute("SELECT old_id, new_id, entity_type FROM mbid_redirect").fetchall() == [(old, new, "recording")]
    assert stored(db).recordings == {new}


def test_merged_artist_harvest_costs_the_floor_plus_the_hop(corpus, emulator, tmp_path):
    old, new = next(iter(corpus.redirects["artist"].items()))
    assert run(emulator, tmp_path / "a.db", "harvest", "artist", old).exit_code == 0
    truth = artist_truth(corpus, new)
    assert len(emulator.requests) == truth.floor + 1
    requests_in_ledger = open_sqlite(tmp_path / "a.db").execute("SELECT requests FROM harvest_run").fetchone()[0]
    assert requests_in_ledger == truth.floor + 1
    # the old row, harvested before the merge, is marked gone
    db = open_sqlite(tmp_path / "a.db")
    db.execute("INSERT INTO artist (id, name) VALUES (?, 'Before the merge')", [old])
    db.commit()
    assert run(emulator, tmp_path / "a.db", "harvest", "artist", old).exit_code == 0
    assert db.execute("SELECT gone_at IS NOT NULL FROM artist WHERE id = ?", [old]).fetchone() == (1,)


@pytest.mark.parametrize("shift", [1, 3])
def test_a_browse_whose_items_shift_mid_harvest_ends_complete(corpus, tmp_path, shift):
    from harvester.harvest import MAX_REREADS

    artist = prolific_artist(corpus)
    truth = artist_truth(corpus, artist)
    assert len(truth.recordings) > 100 and len(truth.releases) > 1  # several pages: something to shift
    with Emulator(corpus, shift=shift) as emu:
        result = run(emu, tmp_path / "s.db", "harvest", "artist", artist)
        assert result.exit_code == 0, result.output
        extra = len(emu.requests) - truth.floor
    db = open_sqlite(tmp_path / "s.db")
    assert_equal_truth(db, truth)  # nothing lost although pages repeated items and skipped others
    browses_shifted = 2  # the recording and release browses have more than one page
    assert 1 <= extra <= browses_shifted * MAX_REREADS
    assert db.execute("SELECT status, requests, rereads, notes FROM harvest_run").fetchall() == [
        ("complete", truth.floor + extra, extra, None)]


def test_a_browse_still_short_after_its_rereads_says_so_in_the_ledger(corpus, emulator, db):
    from harvester.harvest import MAX_REREADS, plan_for, run_harvest

    class OverCounting(WS2Client):
        """A server whose recording count is one more than the items it will ever show."""

        def browse(self, entity, *args, **kwargs):
            page = super().browse(entity, *args, **kwargs)
            if entity == "recording":
                page["recording-count"] += 1
            return page

    artist = prolific_artist(corpus)
    truth = artist_truth(corpus, artist)
    client = OverCounting(emulator.url, CONTACT, 0)
    outcome = run_harvest(db, client, [plan_for("artist", artist)], command="harvest artist", args={},
                          source="ws2:test")
    assert outcome.status == "complete" and outcome.rereads == MAX_REREADS
    # one empty page at the end (the count promised more), then the re-reads
    assert len(emulator.requests) == truth.floor + 1 + MAX_REREADS
    rereads, notes = db.execute("SELECT rereads, notes FROM harvest_run").fetchone()
    assert rereads == MAX_REREADS
    total = len(truth.recordings) + 1
    assert notes == (f"browse recording by artist {artist}: {total - 1} of {total} items after {MAX_REREADS} "
                     "re-read(s) (the catalogue changed while paging)")
    assert stored(db.conn).recordings == truth.recordings


def test_attempts_that_reached_no_server_are_not_requests_in_the_ledger(db, fake_time):
    import socket

    import requests

    from harvester.client import RetryPolicy
    from harvester.errors import RequestFailed
    from harvester.harvest import plan_for, run_harvest

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    session = requests.Session()
    session.trust_env = False
    client = WS2Client(f"http://127.0.0.1:{port}", CONTACT, 0, clock=fake_time.clock, sleep=fake_time.sleep,
                       retry=RetryPolicy(attempts=3, jitter=0), session=session)
    with pytest.raises(RequestFailed, match="connection refused"):
        run_harvest(db, client, [plan_for("recording", str(uuid.UUID(int=7)))], command="harvest recording",
                    args={}, source="ws2:test")
    assert db.execute("SELECT status, requests FROM harvest_run").fetchall() == [("failed", 0)]
    assert client.attempts_made == 3


def test_a_browse_paged_to_its_end_before_a_restart_is_not_read_again(corpus, emulator, db):
    from harvester.harvest import plan_for, run_harvest

    artist = prolific_artist(corpus)
    truth = artist_truth(corpus, artist)
    plan = plan_for("artist", artist)
    recordings = plan.steps[-1]
    assert recordings.entity == "recording"
    # what a run killed during its re-reads leaves: paged to the end, not marked done
    db["harvest_bookmark"].insert({"plan": plan.key, "step": recordings.name, "run_id": 0, "next_offset": 250,
                                   "total": 250, "done": 0, "status": "ok"})
    client = WS2Client(emulator.url, CONTACT, 0)
    outcome = run_harvest(db, client, [plan], command="harvest artist", args={}, source="ws2:test")
    assert outcome.status == "complete"
    assert not [e for e in emulator.requests if e["path"].startswith("/ws/2/recording?")]
    assert len(emulator.requests) == truth.floor - math.ceil(len(truth.recordings) / 100)
