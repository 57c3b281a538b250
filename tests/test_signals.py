"""Stopping a run: Ctrl-C, SIGTERM (cron, systemd, `timeout`) and SIGHUP stop
a harvest the same way (one line, the documented exit code, the ledger
closed as interrupted with the requests sent and the entities committed),
and a run killed outright leaves the counts of its last committed page."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from harvester.cli import cli
from harvester.emulator import Emulator, generate_corpus
from tests.conftest import CONTACT

pytestmark = pytest.mark.usefixtures("isolated")

ROOT = Path(__file__).resolve().parents[1]
KEYS = 16


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(seed=23, artists=6)


def recordings(corpus) -> list[str]:
    keys = sorted(corpus.recordings)[:KEYS]
    assert len(keys) == KEYS
    return keys


def harvest_process(emu: Emulator, db: Path, cache: Path, keys: list[str], rate: str = "8") -> subprocess.Popen:
    env = {name: value for name, value in os.environ.items() if not name.startswith("MBHARVEST_")}
    env.update(PYTHONPATH=str(ROOT), MBHARVEST_CACHE_DIR=str(cache))
    return subprocess.Popen([sys.executable, "-m", "harvester", "harvest", "recording", *keys, "--server", emu.url,
                             "--rate", rate, "--db", str(db), "--contact", CONTACT],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def done_plans(db: Path) -> list[str]:
    """Plans whose bookmark says done, read while the harvest may still write."""
    try:
        conn = sqlite3.connect(f"{db.resolve().as_uri()}?mode=ro", uri=True)
        try:
            return [row[0] for row in conn.execute("SELECT plan FROM harvest_bookmark WHERE done = 1")]
        finally:
            conn.close()
    except sqlite3.OperationalError:  # not created yet
        return []


def wait_for_pages(process: subprocess.Popen, db: Path, pages: int) -> None:
    deadline = time.monotonic() + 30
    while len(done_plans(db)) < pages:
        assert process.poll() is None, process.stderr.read()
        assert time.monotonic() < deadline
        time.sleep(0.01)


def ledger(db: Path) -> list[dict]:
    conn = sqlite3.connect(db)
    conn.row_factory = sqlite3.Row
    try:
        return [dict(row) for row in conn.execute("SELECT * FROM harvest_run ORDER BY id")]
    finally:
        conn.close()


def entities_of_an_uninterrupted_run(emu: Emulator, db: Path, keys: list[str]) -> int:
    result = CliRunner().invoke(cli, ["harvest", "recording", *keys, "--server", emu.url, "--rate", "0",
                                      "--db", str(db), "--contact", CONTACT])
    assert result.exit_code == 0, result.output
    return ledger(db)[-1]["entities_written"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT, signal.SIGHUP], ids=lambda s: s.name)
def test_a_stop_signal_stops_as_ctrl_c_does_and_the_ledger_holds_what_was_done(corpus, tmp_path, signum):
    keys = recordings(corpus)
    db = tmp_path / "stopped.db"
    with Emulator(corpus) as emu:
        process = harvest_process(emu, db, tmp_path / "cache", keys)
        wait_for_pages(process, db, 3)
        process.send_signal(signum)
        _, stderr = process.communicate(timeout=30)
        sent = len(emu.requests)
        committed = [plan.split(":", 1)[1] for plan in done_plans(db)]

        assert process.returncode == 1  # the contract's codes only
        assert stderr.splitlines() == [f"Error: interrupted by {signum.name}: everything committed so far is kept; "
                                       "run the same command again to continue"]
        (run,) = ledger(db)
        assert run["status"] == "interrupted" and signum.name in run["error"] and run["finished_at"]
        assert run["requests"] == sent  # also the request in flight when the signal came
        assert run["entities_written"] == entities_of_an_uninterrupted_run(emu, tmp_path / "ref.db", committed)

        before = len(emu.requests)
        rerun = harvest_process(emu, db, tmp_path / "cache", keys, rate="0")
        assert rerun.wait(timeout=60) == 0, rerun.stderr.read()
        assert len(emu.requests) - before == KEYS - len(committed)  # it continued: no committed key fetched again


def test_a_killed_run_keeps_the_counts_of_its_last_committed_page(corpus, tmp_path):
    keys = recordings(corpus)
    db = tmp_path / "killed.db"
    with Emulator(corpus) as emu:
        process = harvest_process(emu, db, tmp_path / "cache", keys)
        wait_for_pages(process, db, 4)
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=30)
        committed = [plan.split(":", 1)[1] for plan in done_plans(db)]
        (run,) = ledger(db)
        assert run["status"] == "running"  # nobody could close it...
        assert run["requests"] == len(committed)  # ...but every committed page counted itself
        assert run["entities_written"] == entities_of_an_uninterrupted_run(emu, tmp_path / "ref.db", committed)

        shown = CliRunner().invoke(cli, ["runs", "--json", "--db", str(db)])
        assert json.loads(shown.output)[0]["status"] == "interrupted"  # its process is gone

        rerun = harvest_process(emu, db, tmp_path / "cache", keys, rate="0")
        assert rerun.wait(timeout=60) == 0, rerun.stderr.read()
        first, second = ledger(db)
        assert (first["status"], first["requests"], first["entities_written"]) == (
            "interrupted", run["requests"], run["entities_written"])
        assert second["status"] == "complete" and second["requests"] == KEYS - len(committed)


def test_deferred_stops_wait_for_check_and_an_unchecked_one_goes_back_to_its_handler():
    from harvester.errors import Interrupted
    from harvester.signals import stop_on_signals, stops_deferred

    before = signal.getsignal(signal.SIGTERM)
    with stop_on_signals():
        with stops_deferred() as stops:
            os.kill(os.getpid(), signal.SIGTERM)
            time.sleep(0.01)  # the handler has run: the signal is recorded, nothing raised
            assert stops.received == signal.SIGTERM
            with pytest.raises(Interrupted) as raised:
                stops.check()
            assert raised.value.signal_name == "SIGTERM"
            stops.check()  # raised once: nothing left
        with pytest.raises(Interrupted) as raised:
            with stops_deferred():
                os.kill(os.getpid(), signal.SIGHUP)
                time.sleep(0.01)
                reached_the_end_of_the_block = True
        assert reached_the_end_of_the_block
        assert raised.value.signal_name == "SIGHUP"  # given back to stop_on_signals' handler at the end
    assert signal.getsignal(signal.SIGTERM) == before  # every handler put back


def test_a_child_that_hangs_fails_its_test_showing_where_it_hangs():
    """exit_code_of, which the stop-signal tests wait with: a hang is shown, not just timed out."""
    import subprocess
    import sys

    from tests.conftest import exit_code_of
    quick = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"], stderr=subprocess.PIPE)
    assert exit_code_of(quick, timeout=30) == 3
    hanging = subprocess.Popen([sys.executable, "-c", "import time\ndef waiting_here():\n    time.sleep(120)\n"
                                "waiting_here()"], stderr=subprocess.PIPE, text=True)
    with pytest.raises(pytest.fail.Exception) as failed:
        exit_code_of(hanging, timeout=1)
    assert "still running 1 s on" in str(failed.value) and "in waiting_here" in str(failed.value)
    assert hanging.returncode == -signal.SIGABRT
