"""Two processes sharing one limiter directory stay within the server's per-IP rate together."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

from harvester.emulator import Emulator

from tests.conftest import ARRIVAL_JITTER, CONTACT

RATE = 2.0
REQUESTS_EACH = 10

WORKER = textwrap.dedent("""
    import sys
    from harvester.client import WS2Client
    url, contact, rate, count, mbid = sys.argv[1:6]
    client = WS2Client(url, contact, float(rate))
    for _ in range(int(count)):
        client.lookup("artist", mbid)
    print(client.requests_made)
""")


def test_two_processes_share_the_budget(corpus, tmp_path: Path):
    artist = next(iter(corpus.artists))
    env = {**os.environ, "MBHARVEST_CACHE_DIR": str(tmp_path / "cache")}
    with Emulator(corpus, rate=RATE, tolerance=ARRIVAL_JITTER) as emu:
        workers = [
            subprocess.Popen([sys.executable, "-c", WORKER, emu.url, CONTACT, str(RATE), str(REQUESTS_EACH), artist],
                             env=env, stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        outputs = [worker.communicate(timeout=60)[0] for worker in workers]
        log = emu.requests
    assert [worker.returncode for worker in workers] == [0, 0]
    assert [int(out) for out in outputs] == [REQUESTS_EACH, REQUESTS_EACH]
    assert len(log) == 2 * REQUESTS_EACH
    assert [entry["status"] for entry in log].count(503) == 0
    arrivals = sorted(entry["monotonic"] for entry in log)
    gaps = [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]
    assert min(gaps) >= 1 / RATE - ARRIVAL_JITTER
    assert arrivals[-1] - arrivals[0] >= (len(arrivals) - 1) / RATE - ARRIVAL_JITTER  # the average rate over the whole run
