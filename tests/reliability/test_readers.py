"""A second process reading the database in a loop while a harvest writes it:
never `database is locked`, never a half-written page."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from harvester.emulator import Emulator, generate_corpus
from tests.reliability.support import ROOT, content, mbharvest


def reader(db_path, stop_file, out_path) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "tests.reliability.reader", str(db_path), str(stop_file),
                             str(out_path)], cwd=str(ROOT), env={**os.environ, "PYTHONPATH": str(ROOT)})


def test_a_reader_never_waits_nor_sees_a_half_written_page(tmp_path, tally):
    corpus = generate_corpus(seed=41, artists=24)
    db_path, stop, out = tmp_path / "read.db", tmp_path / "stop", tmp_path / "reader.json"
    watcher = reader(db_path, stop, out)
    with Emulator(corpus) as emu:
        harvest = mbharvest("harvest", "artist", *corpus.artists, server=emu.url, db=db_path, rate=150)
        _, stderr = harvest.communicate(timeout=120)
    stop.touch()
    assert watcher.wait(timeout=60) == 0
    seen = json.loads(out.read_text(encoding="utf-8"))
    final = content(db_path)
    checks = {
        "harvest exit 0": harvest.returncode == 0,
        "no reader errors (database is locked)": not seen["errors"],
        "no half-written page seen": not seen["violations"],
        "read while the harvest wrote": seen["distinct_snapshots"] >= 10 and seen["rounds"] >= 20,
        "reader's last snapshot is the final database": seen["last"]["recording"] == len(final["recording"]),
    }
    failures = [name for name, ok in checks.items() if not ok]
    tally.record("a reader process during `harvest artist` (24 artists)", runs=seen["rounds"],
                 failures=len(seen["errors"]) + sum(seen["violations"].values()),
                 snapshots_with_new_rows=seen["distinct_snapshots"])
    assert not failures, (failures, seen, stderr)
