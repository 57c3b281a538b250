"""The fault matrix: every emulator fault at the first, a middle and the last
request of a harvest is retried once and the harvest ends equal to the truth;
a burst of faults beyond the retry limit fails cleanly and a rerun finishes.

Retries sleep through an injected fake clock (the real backoff is 1-60 s),
except `slow`, which needs a real read timeout (0.5 s against a 1 s stall)."""

from __future__ import annotations

import sqlite3

import pytest
from click.testing import CliRunner

from tests.conftest import FakeTime
from harvester.cli import cli
from harvester.client import WS2Client
from harvester.emulator import Emulator, generate_corpus
from harvester.harvest import harvest_with_settings, plan_for
from harvester.settings import resolve_settings
from tests.reliability.support import CONTACT, content, integrity
from tests.truth import artist_truth, credited, stored

FAULT_KINDS = ("503", "503:3", "busy", "500", "502", "reset", "slow", "truncated", "html", "html502", "badjson")
ATTEMPTS = 6  # the client's RetryPolicy default


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(seed=31, artists=5)


@pytest.fixture(scope="module")
def artist(corpus):
    return max(corpus.artists, key=lambda a: sum(
        len(m["tracks"]) for r in corpus.releases.values() if a in credited(r) for m in r["media"]))


def mismatches(db_path, truth) -> list[str]:
    got = stored(sqlite3.connect(db_path))
    names = ("releases", "release_groups", "recordings", "tracks", "isrc_pairs", "labels", "credit_names")
    wrong = [name for name in names if getattr(got, name) != getattr(truth, name)]
    return wrong + ([] if truth.artists <= got.artists else ["artists"])


@pytest.mark.parametrize("kind", FAULT_KINDS)
def test_a_fault_anywhere_costs_one_retry(corpus, artist, kind, tmp_path, tally):
    truth = artist_truth(corpus, artist)
    failures = []
    for position in (1, truth.floor // 2 + 1, truth.floor):
        clock = FakeTime()
        db_path = tmp_path / f"{position}.db"
        with Emulator(corpus, faults={position: kind}, slow_seconds=1.0) as emu:
            settings = resolve_settings({"db": str(db_path), "server": emu.url, "rate": 0.0, "contact": CONTACT,
                                         "read_timeout": 0.5})
            client = WS2Client.from_settings(settings, sleep=clock.sleep)
            outcome = harvest_with_settings(settings, [plan_for("artist", artist)], command="harvest artist",
                                            args={"keys": [artist]}, client=client)
            log = emu.requests
        checks = {
            "complete": outcome.status == "complete",
            "equals truth": not mismatches(db_path, truth),
            "requests = floor + 1": len(log) == truth.floor + 1,
            "faulty request retried": log[position - 1]["fault"] == kind.split(":")[0]
            and log[position]["path"] == log[position - 1]["path"],
            "Retry-After honoured": kind != "503:3" or max(clock.sleeps) >= 3,
            "integrity ok": integrity(db_path) == "ok",
        }
        failures += [f"{kind} at request {position}: {name}" for name, ok in checks.items() if not ok]
    tally.record("one fault at the first, a middle and the last request", runs=3, failures=len(failures),
                 **{f"kind {kind}": 3})
    assert not failures


def run_cli(emu, db_path, artist):
    return CliRunner().invoke(cli, ["harvest", "artist", artist, "--server", emu.url, "--rate", "0",
                                    "--db", str(db_path), "--contact", CONTACT])


@pytest.mark.parametrize("burst", [["503"] * ATTEMPTS, ["reset", "502", "html", "500", "truncated", "html502"]],
                         ids=["503s", "mixed"])
def test_faults_beyond_the_retry_limit_fail_cleanly_and_a_rerun_finishes(corpus, artist, burst, tmp_path,
                                                                          monkeypatch, tally):
    clock = FakeTime()
    make = WS2Client.from_settings.__func__
    monkeypatch.setattr(WS2Client, "from_settings",
                        classmethod(lambda cls, settings, **options: make(cls, settings, sleep=clock.sleep,
                                                                          **options)))
    truth = artist_truth(corpus, artist)
    start = truth.floor // 2 + 1
    db_path = tmp_path / "burst.db"
    with Emulator(corpus, faults={start + i: kind for i, kind in enumerate(burst)}) as emu:
        failed = run_cli(emu, db_path, artist)
        db = sqlite3.connect(db_path)
        ledger = db.execute("SELECT status, error FROM harvest_run").fetchall()
        bookmarks = db.execute("SELECT count(*) FROM harvest_bookmark").fetchone()[0]
        before_rerun = content(db_path)
        db.close()
        rerun = run_cli(emu, db_path, artist)
        requests = len(emu.requests)
    message = failed.output.strip().splitlines()
    checks = {
        "exit 1": failed.exit_code == 1,
        "one-line message, no traceback": len(message) == 1 and "Traceback" not in failed.output
        and f"failed after {ATTEMPTS} attempts" in message[0],
        "ledger failed": ledger[0][0] == "failed" and ledger[0][1],
        "bookmarks saved": bookmarks > 0,
        "pages before the burst kept": len(before_rerun["recording"]) + len(before_rerun["release"]) > 0,
        "rerun exit 0": rerun.exit_code == 0,
        "rerun equals truth": not mismatches(db_path, truth),
        "requests = floor + burst": requests == truth.floor + len(burst),
    }
    failures = [name for name, ok in checks.items() if not ok]
    tally.record("faults beyond the retry limit: clean failure, rerun completes", runs=1, failures=len(failures))
    assert not failures, (failures, failed.output)
