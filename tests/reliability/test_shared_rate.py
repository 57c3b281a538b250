"""Two harvests from two processes (two databases) through one shared limiter
directory stay within the server's per-IP rate together."""

from __future__ import annotations

import sqlite3

from harvester.emulator import Emulator
from tests.conftest import ARRIVAL_JITTER
from tests.reliability.support import mbharvest

RATE = 2.0


def test_two_harvest_processes_share_one_rate(corpus, tmp_path, tally):
    recordings = list(corpus.recordings)
    keys = [recordings[0:3], recordings[3:6]]
    with Emulator(corpus, rate=RATE, tolerance=ARRIVAL_JITTER) as emu:
        processes = [mbharvest("harvest", "recording", *chunk, server=emu.url, db=tmp_path / f"{n}.db", rate=RATE)
                     for n, chunk in enumerate(keys)]
        errors = [process.communicate(timeout=60)[1] for process in processes]
        log = emu.requests
    arrivals = sorted(entry["monotonic"] for entry in log)
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
    refusals = sum(1 for entry in log if entry["fault"] == "rate-limit")
    stored = [{row[0] for row in sqlite3.connect(tmp_path / f"{n}.db").execute("SELECT id FROM recording")}
              for n in range(2)]
    checks = {
        "both exit 0": [process.returncode for process in processes] == [0, 0],
        "no refusals": refusals == 0,
        "no two requests closer than 1/rate": min(gaps) >= 1 / RATE - ARRIVAL_JITTER,
        "each database holds its keys": all(set(chunk) <= got for chunk, got in zip(keys, stored)),
        "the average rate over the run": arrivals[-1] - arrivals[0] >= (len(arrivals) - 1) / RATE - ARRIVAL_JITTER,
        "every request sent once": len(log) == 6,
    }
    failures = [name for name, ok in checks.items() if not ok]
    tally.record("two harvest processes, one limiter directory, emulator at 2 req/s", runs=len(log),
                 failures=refusals + sum(1 for gap in gaps if gap < 1 / RATE - ARRIVAL_JITTER),
                 smallest_gap_ms=round(min(gaps) * 1000))
    assert not failures, (failures, errors, gaps)
