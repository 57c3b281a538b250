"""Harvest benchmark (issue 4): requests against the floor, and mirror throughput.

    python benchmarks/bench_harvest.py                       # both parts
    python benchmarks/bench_harvest.py --artists 400 --mirror-only

Part 1 runs every `mbharvest harvest` command once against the emulator on a
generated corpus and compares the requests the emulator logged with the
floor (the fewest requests a perfect client needs), computed from the corpus
by tests/truth.py, not by the harvester. Acceptance: requests <= floor + 2.

Part 2 (mirror mode): rate 0, local emulator, every artist of a bigger
corpus harvested by one `python -m harvester harvest artist ...` process
(pages of 100 recordings with ISRCs and credits, release pages with tracks).
Wall time runs from the command's start to its exit; recordings are counted
in the database afterwards.
"""

from __future__ import annotations

import argparse
import os
import platform
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from harvester.emulator import Emulator, generate_corpus  # noqa: E402
from tests.truth import (  # noqa: E402
    artist_truth, credited, isrc_truth, label_truth, pages, release_group_truth,
)

CONTACT = "bench@example.org"


def harvest(emu: Emulator, db_path: Path, cache: Path, *args: str, rate: str = "0") -> float:
    """Run one harvest command as a subprocess; return its wall time in seconds."""
    env = {**os.environ, "MBHARVEST_CACHE_DIR": str(cache), "MBHARVEST_CONTACT": CONTACT}
    command = [sys.executable, "-m", "harvester", "harvest", *args[:1], "--server", emu.url, "--rate", rate,
               "--db", str(db_path), *args[1:]]
    started = time.perf_counter()
    result = subprocess.run(command, env=env, cwd=str(ROOT), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(args[:2])} failed ({result.returncode}): {result.stderr.strip()}")
    return elapsed


def floors(corpus) -> list[tuple[str, list[str], int]]:
    """(command, arguments, floor) for each harvest command."""
    prolific = max(corpus.artists, key=lambda a: sum(
        len(m["tracks"]) for r in corpus.releases.values() if a in credited(r) for m in r["media"]))
    assert len(artist_truth(corpus, prolific).tracks) > 500
    label = max(corpus.labels, key=lambda lb: len(label_truth(corpus, lb).releases))
    group = max(corpus.release_groups, key=lambda g: len(release_group_truth(corpus, g).releases))
    releases = list(corpus.releases)[:3]
    recordings = list(corpus.recordings)[:3]
    codes = sorted({code for r in corpus.recordings.values() for code in r.get("isrcs") or ()})[:8]
    assert isrc_truth(corpus, codes).recordings
    searched = sum(1 for r in corpus.recordings.values() if prolific in credited(r))
    return [
        ("artist", [prolific], artist_truth(corpus, prolific).floor),
        ("label", [label], label_truth(corpus, label).floor),
        ("release-group", [group], release_group_truth(corpus, group).floor),
        ("release", releases, len(releases)),
        ("recording", recordings, len(recordings)),
        ("isrc", codes, len(codes)),
        ("search", ["recording", f"arid:{prolific}"], pages(searched)),
    ]


def bench_floor(seed: int, artists: int, work: Path) -> list[str]:
    corpus = generate_corpus(seed, artists=artists)
    lines = ["| command | keys | floor | requests | requests - floor | seconds |", "|---|---:|---:|---:|---:|---:|"]
    print("\n".join(lines))
    with Emulator(corpus) as emu:
        for number, (command, keys, floor) in enumerate(floors(corpus)):
            before = len(emu.requests)
            seconds = harvest(emu, work / f"floor{number}.db", work / "cache", command, *keys)
            used = len(emu.requests) - before
            verdict = "" if used <= floor + 2 else " FAIL"
            key_count = 1 if command == "search" else len(keys)
            lines.append(f"| `harvest {command}` | {key_count} | {floor} | {used} | {used - floor:+d}{verdict} "
                         f"| {seconds:.2f} |")
            print(lines[-1], flush=True)
    return lines


def bench_mirror(seed: int, artists: int, work: Path, runs: int) -> list[str]:
    corpus = generate_corpus(seed, artists=artists)
    artist_ids = list(corpus.artists)
    lines = ["| run | artists | requests | recordings stored | tracks | seconds | recordings/s |",
             "|---:|---:|---:|---:|---:|---:|---:|"]
    print("\n".join(lines))
    with Emulator(corpus) as emu:
        for run in range(1, runs + 1):
            db_path = work / f"mirror{run}.db"
            before = len(emu.requests)
            seconds = harvest(emu, db_path, work / "cache", "artist", *artist_ids)
            db = sqlite3.connect(db_path)
            recordings = db.execute("SELECT count(*) FROM recording").fetchone()[0]
            tracks = db.execute("SELECT count(*) FROM track").fetchone()[0]
            db.close()
            lines.append(f"| {run} | {len(artist_ids)} | {len(emu.requests) - before:,} | {recordings:,} "
                         f"| {tracks:,} | {seconds:.2f} | {recordings / seconds:,.0f} |")
            print(lines[-1], flush=True)
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--floor-artists", type=int, default=40)
    parser.add_argument("--artists", type=int, default=200, help="artists in the mirror-mode corpus")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--mirror-only", action="store_true")
    options = parser.parse_args()
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")),
               platform.processor())
    print(f"{os.cpu_count()} cores, {cpu}, Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}")
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        if not options.mirror_only:
            bench_floor(options.seed, options.floor_artists, work)
        bench_mirror(options.seed, options.artists, work, options.runs)


if __name__ == "__main__":
    main()
