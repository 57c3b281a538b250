"""`mbharvest refresh`, the cron entry point, against the project's emulator."""

from __future__ import annotations

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
from click.testing import CliRunner

from harvester.cli import cli
from harvester.emulator import Emulator, generate_corpus
from tests.test_harvest import _content, assert_equal_truth, prolific_artist
from tests.conftest import CONTACT, exit_code_of
from tests.truth import artist_truth

LONG_AGO = "2000-01-01T00:00:00Z"


pytestmark = pytest.mark.usefixtures("isolated")


def write_config(tmp_path, emu, *, artists=(), recordings=(), older_than=30, rate=0, extra=""):
    path = tmp_path / "mbharvest.toml"
    quoted = lambda keys: "[" + ", ".join(f'"{k}"' for k in keys) + "]"  # noqa: E731
    path.write_text(f"""
[client]
contact = "{CONTACT}"
server = "{emu.url}"
rate = {rate}
[database]
path = "{tmp_path / 'r.db'}"
[watch]
artists = {quoted(artists)}
recordings = {quoted(recordings)}
[refresh]
older_than = {older_than}
{extra}""", encoding="utf-8")
    return path


def refresh(config, *args):
    return CliRunner().invoke(cli, ["refresh", "--config", str(config), *args])


def db_at(tmp_path):
    return sqlite3.connect(tmp_path / "r.db")


def last_run(db):
    return db.execute("SELECT status, requests, new, updated, unchanged, gone FROM harvest_run "
                      "ORDER BY id DESC").fetchone()


def test_refresh_harvests_the_watchlist_quietly(tmp_path):
    corpus = generate_corpus(seed=3, artists=5)
    artist = prolific_artist(corpus)
    with Emulator(corpus) as emu:
        config = write_config(tmp_path, emu, artists=[artist])
        result = refresh(config)
        assert result.exit_code == 0, result.output
        assert result.output == ""  # not a terminal, no -v: nothing on stdout
        assert_equal_truth(db_at(tmp_path), artist_truth(corpus, artist))
        status, requests, new, updated, unchanged, gone = last_run(db_at(tmp_path))
        assert (status, requests, updated, gone) == ("complete", len(emu.requests), 0, 0) and new > 0
        verbose = refresh(config, "-v")
        assert verbose.exit_code == 0 and verbose.output.startswith("refresh: complete")
        assert last_run(db_at(tmp_path))[3:5] == (0, new)  # second run: everything unchanged


def test_a_budget_stopped_refresh_continues_to_the_truth(tmp_path):
    corpus = generate_corpus(seed=3, artists=5)
    artist = prolific_artist(corpus)
    truth = artist_truth(corpus, artist)
    with Emulator(corpus) as emu:
        config = write_config(tmp_path, emu, artists=[artist], extra="max_requests = 2\n")
        statuses = []
        for _ in range(20):
            result = refresh(config)
            assert result.exit_code == 0, result.output
            statuses.append(last_run(db_at(tmp_path))[0])
            if statuses[-1] == "complete":
                break
        assert statuses[0] == "partial" and statuses[-1] == "complete"
        assert len(emu.requests) <= truth.floor + 2
    assert_equal_truth(db_at(tmp_path), truth)


def test_unfinished_harvests_are_finished_first(tmp_path):
    corpus = generate_corpus(seed=3, artists=5)
    artist = prolific_artist(corpus)
    with Emulator(corpus) as emu:
        config = write_config(tmp_path, emu)
        partial = CliRunner().invoke(cli, ["harvest", "artist", artist, "--config", str(config),
                                           "--max-requests", "3"])
        assert partial.exit_code == 0
        assert last_run(db_at(tmp_path))[0] == "partial"
        assert refresh(config).exit_code == 0
        assert last_run(db_at(tmp_path))[0] == "complete"
        assert len(emu.requests) <= artist_truth(corpus, artist).floor + 2
    assert_equal_truth(db_at(tmp_path), artist_truth(corpus, artist))


def harvest_artists(emu, db, keys, *options):
    return CliRunner().invoke(cli, ["harvest", "artist", *keys, "--server", emu.url, "--rate", "0",
                                    "--contact", CONTACT, "--db", str(db), *options])


def entity_content(path):
    """Every entity and child table (not the ledger or resumption state), without fetch stamps."""
    return {table: rows for table, rows in _content(path).items() if table != "harvest_plan"}


def leftover_state(path):
    db = sqlite3.connect(path)
    return [db.execute(f"SELECT count(*) FROM {table}").fetchone()[0] for table in ("harvest_bookmark", "harvest_plan")]


def reference_harvest(tmp_path):
    """Eight artists harvested without interruption into reference.db: the corpus, the keys, the requests."""
    corpus = generate_corpus(seed=5, artists=8)
    keys = sorted(corpus.artists)
    with Emulator(corpus) as emu:
        assert harvest_artists(emu, tmp_path / "reference.db", keys).exit_code == 0
        return corpus, keys, len(emu.requests)


def test_refresh_finishes_every_key_of_an_interrupted_harvest_also_those_never_reached(tmp_path):
    """Issue 16, 1: `harvest artist <several>`, Ctrl-C, then refresh: the
    database must equal an uninterrupted run's, keys never reached included."""
    corpus, keys, floor = reference_harvest(tmp_path)
    with Emulator(corpus) as emu:
        env = {**os.environ, "MBHARVEST_CACHE_DIR": str(tmp_path / "cache"), "MBHARVEST_CONTACT": CONTACT}
        process = subprocess.Popen([sys.executable, "-m", "harvester", "harvest", "artist", *keys, "--server",
                                    emu.url, "--rate", "20", "--db", str(tmp_path / "r.db")],
                                   env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        while len(emu.requests) < 6:
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.005)
        process.send_signal(signal.SIGINT)
        assert exit_code_of(process, timeout=30) == 1
        interrupted = len(emu.requests)
        config = write_config(tmp_path, emu, older_than=36500)  # empty watchlist, nothing stale
        result = refresh(config, "-v")
        assert result.exit_code == 0 and result.output.startswith("refresh: complete"), result.output
        assert len(emu.requests) <= floor + 1  # the page in flight at Ctrl-C is fetched again, nothing else
    assert interrupted < floor
    assert entity_content(tmp_path / "r.db") == entity_content(tmp_path / "reference.db")
    assert leftover_state(tmp_path / "r.db") == [0, 0]


def test_after_a_budget_stopped_refresh_the_original_command_continues(tmp_path):
    corpus, keys, floor = reference_harvest(tmp_path)
    with Emulator(corpus) as emu:
        first = harvest_artists(emu, tmp_path / "r.db", keys, "--max-requests", "5")
        assert first.exit_code == 0 and last_run(db_at(tmp_path))[0] == "partial"
        config = write_config(tmp_path, emu, older_than=36500, extra="max_requests = 7\n")
        assert refresh(config).exit_code == 0 and last_run(db_at(tmp_path))[0] == "partial"
        assert leftover_state(tmp_path / "r.db")[1] == len(keys)  # every key still on record
        again = harvest_artists(emu, tmp_path / "r.db", keys)
        assert again.exit_code == 0 and last_run(db_at(tmp_path))[0] == "complete"
        assert last_run(db_at(tmp_path))[1] == floor - 5 - 7  # it continued: nothing fetched twice
        assert len(emu.requests) == floor
    assert entity_content(tmp_path / "r.db") == entity_content(tmp_path / "reference.db")
    assert leftover_state(tmp_path / "r.db") == [0, 0]
    # finished: the same command again harvests afresh
    with Emulator(corpus) as emu:
        assert harvest_artists(emu, tmp_path / "r.db", keys).exit_code == 0
        assert len(emu.requests) == floor


def test_stale_entities_changed_gone_or_merged_upstream(tmp_path):
    corpus = generate_corpus(seed=3, artists=5)
    changed, deleted, merged, survivor = list(corpus.recordings)[:4]
    with Emulator(corpus) as emu:
        config = write_config(tmp_path, emu, recordings=[changed, deleted, merged])
        assert refresh(config).exit_code == 0
    db = db_at(tmp_path)
    db.execute("UPDATE recording SET fetched_at = ?", [LONG_AGO])
    db.commit()
    # upstream, between runs: a title corrected, a recording deleted, one merged into another
    upstream = generate_corpus(seed=3, artists=5)
    upstream.recordings[changed]["title"] = "Corrected Títle"
    del upstream.recordings[deleted]
    del upstream.recordings[merged]
    upstream.redirects["recording"][merged] = survivor
    with Emulator(upstream) as emu:
        config = write_config(tmp_path, emu)  # empty watchlist: only stale entities
        result = refresh(config)
        assert result.exit_code == 0, result.output
        assert result.output == ""  # a deletion upstream is not an error: ledger and log only
    db = db_at(tmp_path)
    assert db.execute("SELECT title FROM recording WHERE id = ?", [changed]).fetchone()[0] == "Corrected Títle"
    gone_at = db.execute("SELECT gone_at FROM recording WHERE id = ?", [deleted]).fetchone()
    assert gone_at is not None and gone_at[0] is not None  # marked, not deleted
    assert db.execute("SELECT new_id FROM mbid_redirect WHERE old_id = ?", [merged]).fetchone() == (survivor,)
    assert db.execute("SELECT gone_at IS NOT NULL FROM recording WHERE id = ?", [merged]).fetchone() == (1,)
    assert db.execute("SELECT count(*) FROM recording WHERE id = ?", [survivor]).fetchone() == (1,)
    status, _, _, updated, _, gone = last_run(db)
    assert status == "complete" and gone == 1 and updated >= 1


def test_entities_fetched_recently_are_left_alone(tmp_path):
    corpus = generate_corpus(seed=3, artists=5)
    recording = next(iter(corpus.recordings))
    with Emulator(corpus) as emu:
        config = write_config(tmp_path, emu, recordings=[recording])
        assert refresh(config).exit_code == 0
        first = len(emu.requests)
        assert refresh(write_config(tmp_path, emu)).exit_code == 0
        assert len(emu.requests) == first  # nothing stale, nothing watched: zero requests


def test_overlapping_refreshes_second_exits_75_at_once(tmp_path):
    corpus = generate_corpus(seed=3, artists=5)
    artist = prolific_artist(corpus)
    with Emulator(corpus) as emu:
        env = {**os.environ, "MBHARVEST_CACHE_DIR": str(tmp_path / "cache")}
        started = time.monotonic()
        subprocess.run([sys.executable, "-m", "harvester", "--version"], env=env, capture_output=True, check=True)
        start_up = time.monotonic() - started  # the same imports, on this machine, now
        # the first run's ~10 requests outlast the second's start-up however busy the machine
        # (~2 s at 5 req/s on a quiet one; a starved one started the second after the first ended)
        rate = min(5.0, 10 / (2.0 + 3 * start_up))
        config = write_config(tmp_path, emu, artists=[artist], rate=rate)
        first = subprocess.Popen([sys.executable, "-m", "harvester", "refresh", "--config", str(config)],
                                 env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        while not emu.requests and first.poll() is None:
            time.sleep(0.01)
        started = time.monotonic()
        second = subprocess.run([sys.executable, "-m", "harvester", "refresh", "--config", str(config)],
                                env=env, capture_output=True, text=True)
        elapsed = time.monotonic() - started
        requests_seen_by_second = len(emu.requests)
        assert first.wait(timeout=60) == 0, first.stderr.read()
    assert second.returncode == 75
    assert len(second.stderr.strip().splitlines()) == 1 and f"pid {first.pid}" in second.stderr
    assert elapsed < start_up + 1.0  # beyond interpreter start-up, the lock refuses at once
    assert requests_seen_by_second < len(emu.requests)  # the first carried on
    assert last_run(db_at(tmp_path))[0] == "complete"
    assert_equal_truth(db_at(tmp_path), artist_truth(corpus, artist))


def test_a_lock_left_by_a_killed_run_does_not_block(tmp_path):
    corpus = generate_corpus(seed=3, artists=5)
    artist = prolific_artist(corpus)
    with Emulator(corpus) as emu:
        config = write_config(tmp_path, emu, artists=[artist], rate=5)
        env = {**os.environ, "MBHARVEST_CACHE_DIR": str(tmp_path / "cache")}
        first = subprocess.Popen([sys.executable, "-m", "harvester", "refresh", "--config", str(config)],
                                 env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        while len(emu.requests) < 2:
            time.sleep(0.01)
        first.kill()
        first.wait()
        assert (tmp_path / "r.db.lock").exists()
        result = refresh(write_config(tmp_path, emu, artists=[artist]))
        assert result.exit_code == 0, result.output
    assert_equal_truth(db_at(tmp_path), artist_truth(corpus, artist))


@pytest.mark.parametrize("bad,message", [
    ('[refresh]\nolder_than = "a week"\n', "refresh.older_than must be a number"),
    ('[watch]\nartists = "5b11f4ce-a62d-471e-81fc-a69a8278c7da"\n', "watch.artists must be a list of strings"),
    ('[watch]\nartists = ["not-an-mbid"]\n', "invalid MBID 'not-an-mbid'"),
    ('[refresh]\nolder_then = 3\n', "unknown key refresh.older_then"),
])
def test_malformed_config_exit_2_no_request_nothing_written(tmp_path, bad, message):
    corpus = generate_corpus(seed=3, artists=3)
    with Emulator(corpus) as emu:
        config = tmp_path / "bad.toml"
        config.write_text(f'[client]\ncontact = "{CONTACT}"\nserver = "{emu.url}"\nrate = 0\n'
                          f'[database]\npath = "{tmp_path / "r.db"}"\n' + bad, encoding="utf-8")
        result = refresh(config)
        assert result.exit_code == 2
        assert message in result.output and len(result.output.strip().splitlines()) == 1
        assert emu.requests == []
    assert not (tmp_path / "r.db").exists() and not (tmp_path / "r.db.lock").exists()


def test_runs_shows_the_ledger(tmp_path):
    corpus = generate_corpus(seed=3, artists=3)
    with Emulator(corpus) as emu:
        config = write_config(tmp_path, emu, recordings=[next(iter(corpus.recordings))])
        assert refresh(config).exit_code == 0
    result = CliRunner().invoke(cli, ["runs", "--json", "--config", str(config)])
    assert result.exit_code == 0
    import json
    rows = json.loads(result.output)
    assert rows[0]["command"] == "refresh" and rows[0]["status"] == "complete" and rows[0]["requests"] == 1
    table = CliRunner().invoke(cli, ["runs", "--config", str(config)])
    assert "refresh" in table.output and "complete" in table.output


def test_log_file_keeps_a_persistent_log(tmp_path):
    corpus = generate_corpus(seed=3, artists=3)
    recording = next(iter(corpus.recordings))
    with Emulator(corpus) as emu:
        config = write_config(tmp_path, emu, recordings=[recording])
        log = tmp_path / "logs" / "refresh.log"
        for _ in range(2):
            result = refresh(config, "--log-file", str(log))
            assert result.exit_code == 0 and result.output == ""
    lines = log.read_text(encoding="utf-8").splitlines()
    requests = [line for line in lines if f"/ws/2/recording/{recording}" in line]
    assert len(requests) == 2 and all(" INFO " in line for line in requests)  # appended, run after run


def test_runs_on_a_missing_database_exits_2_and_creates_nothing(tmp_path):
    result = CliRunner().invoke(cli, ["runs", "--db", str(tmp_path / "typo.db")])
    assert result.exit_code == 2 and "no database at" in result.output
    assert not (tmp_path / "typo.db").exists()


def test_stale_entities_come_oldest_first_once_each_across_batches(db, monkeypatch):
    import harvester.refresh as refresh_module
    from datetime import datetime, timezone

    monkeypatch.setattr(refresh_module, "STALE_BATCH", 2)
    rows = {"recording": [("r1", "2001-01-01T00:00:00Z"), ("r2", "2003-01-01T00:00:00Z"),
                          ("r3", "2026-11-01T00:00:00Z")],
            "artist": [("a1", "2002-01-01T00:00:00Z"), ("a2", "2003-01-01T00:00:00Z")],
            "release": [("x1", "2000-06-01T00:00:00Z")]}
    for table, items in rows.items():
        db[table].insert_all([{"id": i, "fetched_at": f} for i, f in items])
    db["artist"].update("a2", {"gone_at": "2004-01-01T00:00:00Z"})
    plans = list(refresh_module.stale_plans(db, 30, now=datetime(2026, 11, 24, tzinfo=timezone.utc)))
    # nothing is refreshed in between (as if every lookup failed): each once, oldest first, then the end
    assert [(p.steps[0].entity, p.seed) for p in plans] == [
        ("release", "x1"), ("recording", "r1"), ("artist", "a1"), ("recording", "r2")]
