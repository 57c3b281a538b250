"""kill -9 at random moments during harvests and refreshes (issue 10).

Each cycle starts from the same database, kills the command after a random
number of requests (plus a random few milliseconds, so kills land in
requests, in normalizing and in commits), reruns it until it completes, and
compares the result with an uninterrupted run's. The kill points come from
a seeded RNG, so a failure can be replayed."""

from __future__ import annotations

import random
import shutil
import sqlite3
import time
from pathlib import Path
from typing import Callable

import pytest

from harvester.emulator import Emulator, generate_corpus
from tests.reliability.support import (
    completed_runs, content, duplicates, integrity, mbharvest, wait_for_requests,
)
from tests.truth import artist_truth

RATE = 40  # req/s: a full run takes ~1 s, so kill points land mid-run
KILLS_WANTED = 12
SEED = 20261124


@pytest.fixture(scope="module")
def corpus():
    return generate_corpus(seed=21, artists=6)


def kill_campaign(emulator: Emulator, fresh_db: Callable[[int], Path], command: list[str], reference: dict,
                  floor: int, rng: random.Random) -> dict[str, int]:
    """Kill/rerun cycles until KILLS_WANTED kills; count every check that fails."""
    tally = {"kills": 0, "cycles": 0, "integrity_failures": 0, "mismatches": 0, "over_budget": 0,
             "lost_or_extra_rows": 0, "duplicates": 0, "bad_exits": 0}
    while tally["kills"] < KILLS_WANTED:
        path = fresh_db(tally["cycles"])
        tally["cycles"] += 1
        first_request = len(emulator.log.entries)
        completed_before = completed_runs(path)
        kills = 0
        for _ in range(60):
            seen = len(emulator.log.entries)
            process = mbharvest(*command, server=emulator.url, db=path, rate=RATE)
            wait_for_requests(emulator, seen + rng.randint(1, 6), process)
            time.sleep(rng.uniform(0, 0.03))
            if process.poll() is None:
                process.kill()
                kills += 1
            _, stderr = process.communicate(timeout=60)
            if integrity(path) != "ok":
                tally["integrity_failures"] += 1
            if process.returncode == 0 or completed_runs(path) > completed_before:
                break  # done (a kill after the final commit finds nothing left to do)
            if process.returncode != -9:
                tally["bad_exits"] += 1
                print(stderr)
        tally["kills"] += kills
        got = content(path)
        if completed_runs(path) != completed_before + 1 or got != reference:
            tally["mismatches"] += 1
            tally["lost_or_extra_rows"] += sum(len(set(reference[t]) ^ set(got.get(t, ()))) for t in reference)
        tally["duplicates"] += duplicates(path)
        if len(emulator.log.entries) - first_request > floor + kills + 2:
            tally["over_budget"] += 1

    return tally


def assert_clean(tally: dict[str, int]) -> None:
    assert tally["kills"] >= KILLS_WANTED
    failures = {name: count for name, count in tally.items() if name not in ("kills", "cycles") and count}
    assert not failures, failures


def test_killed_harvests_rerun_to_an_uninterrupted_runs_database(corpus, tmp_path, tally):
    artists = list(corpus.artists)
    floor = sum(artist_truth(corpus, artist).floor for artist in artists)
    command = ["harvest", "artist", *artists]
    with Emulator(corpus) as emu:
        reference_path = tmp_path / "reference.db"
        assert mbharvest(*command, server=emu.url, db=reference_path).wait() == 0
        assert len(emu.requests) == floor
        reference = content(reference_path)
        assert reference["recording"] and reference["track"]
        result = kill_campaign(emu, lambda cycle: tmp_path / f"killed{cycle}.db", command, reference, floor,
                               random.Random(SEED))
    tally.record("kill -9 during `harvest artist` (6 artists), rerun to completion", runs=result["kills"],
                 failures=sum(v for k, v in result.items() if k not in ("kills", "cycles")), **result)
    assert_clean(result)


def test_killed_refreshes_rerun_to_an_uninterrupted_refresh(corpus, tmp_path, tally):
    """A refresh finishing a watchlist (two artists) and re-fetching stale entities."""
    artists = list(corpus.artists)
    recordings = list(corpus.recordings)[:3]
    config = tmp_path / "mbharvest.toml"
    config.write_text(f"[watch]\nartists = {artists[1:3]!r}\n[refresh]\nolder_than = 1\n".replace("'", '"'),
                      encoding="utf-8")
    base = tmp_path / "base.db"
    with Emulator(corpus) as emu:
        assert mbharvest("harvest", "recording", *recordings, server=emu.url, db=base).wait() == 0
        db = sqlite3.connect(base)
        with db:
            for table in ("artist", "label", "release_group", "release", "recording"):
                db.execute(f"UPDATE [{table}] SET fetched_at = '2000-01-01T00:00:00Z'")
        db.close()

        def fresh_db(cycle: int) -> Path:
            path = tmp_path / f"refresh{cycle}.db"
            shutil.copy(base, path)
            return path

        command = ["refresh", "--config", str(config)]
        before = len(emu.requests)
        reference_path = fresh_db(999)
        process = mbharvest(*command, server=emu.url, db=reference_path)
        assert process.wait() == 0, process.stderr.read()
        floor = len(emu.requests) - before
        stale = {entry["path"].split("?")[0] for entry in emu.requests[before:]
                 if entry["path"].startswith("/ws/2/recording/")}
        assert {f"/ws/2/recording/{r}" for r in recordings} <= stale  # the stale ones were re-fetched
        reference = content(reference_path)
        result = kill_campaign(emu, fresh_db, command, reference, floor, random.Random(SEED + 1))
    tally.record("kill -9 during `refresh` (watchlist + stale entities), rerun to completion",
                 runs=result["kills"], failures=sum(v for k, v in result.items() if k not in ("kills", "cycles")),
                 **result)
    assert_clean(result)
