"""Benchmark `mbharvest stats --json` and `mbharvest report` on a large synthetic database.

Builds (once; reused when it exists) a database at the current shape with
1,000,000 recordings, ISRCs (0, 1 or 2 per recording, some shared), tracks,
releases with full, partial and missing dates, release groups, artists and
labels, and a few rows marked gone, by bulk executemany inserts (not through
the normalizer), then times both commands as a user runs them (subprocess,
interpreter start-up included).

    python benchmarks/bench_stats.py [--recordings 1000000] [--db benchmarks/out/bench.db]

Targets: stats < 10 s, report < 30 s.
"""

from __future__ import annotations

import argparse
import json
import random
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from harvester.store import open_db  # noqa: E402

STAMP = ("2026-01-01T00:00:00Z", "https://musicbrainz.org")
TYPES = ["Album"] * 5 + ["Single"] * 3 + ["EP", "Other", "Broadcast", None]
ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
COUNTRIES = ["US", "GB", "DE", "FR", "JP", "NL", "SE", "CA", "AU", "IT", "ES", "BR", "QM", "QZ", "FI", "NO"]


def _ids(rng: random.Random, n: int) -> list[str]:
    return [str(uuid.UUID(int=rng.getrandbits(128), version=4)) for _ in range(n)]


def _date(rng: random.Random) -> str | None:
    if rng.random() < 0.1:
        return None
    year = min(2025, int(1950 + 76 * rng.random() ** 0.35))  # more releases in recent years
    form = rng.random()
    if form < 0.15:
        return f"{year}"
    if form < 0.3:
        return f"{year}-{rng.randint(1, 12):02d}"
    return f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}"


def _length(rng: random.Random) -> int | None:
    pick = rng.random()
    if pick < 0.08:
        return None
    if pick < 0.30:  # the round-minute clusters
        return max(1000, int(rng.gauss(rng.choice((120_000, 180_000, 240_000)), 8_000)))
    if pick < 0.301:
        return rng.randint(1_800_000, 36_000_000)  # very long: mixes, whole concerts
    return max(1000, int(rng.lognormvariate(12.25, 0.45)))  # broad, around 3.5 minutes


def build(path: Path, recordings: int, seed: int = 1) -> None:
    rng = random.Random(seed)
    db = open_db(path)
    conn = db.conn
    n_artists, n_labels = recordings // 5, recordings // 50
    n_groups, n_releases = recordings // 10, recordings // 7
    artists, labels = _ids(rng, n_artists), _ids(rng, n_labels)
    groups, releases, recording_ids = _ids(rng, n_groups), _ids(rng, n_releases), _ids(rng, recordings)
    with db.atomic():
        conn.executemany("INSERT INTO artist (id, name, fetched_at, source) VALUES (?, ?, ?, ?)",
                         ((a, f"Artist {i}", *STAMP) for i, a in enumerate(artists)))
        conn.executemany("INSERT INTO label (id, name, fetched_at, source) VALUES (?, ?, ?, ?)",
                         ((x, f"Label {i}", *STAMP) for i, x in enumerate(labels)))
        conn.executemany("INSERT INTO release_group (id, title, primary_type, first_release_date, fetched_at, source) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         ((g, f"Group {i}", rng.choice(TYPES), _date(rng), *STAMP) for i, g in enumerate(groups)))
        conn.executemany("INSERT INTO release (id, title, date, release_group_id, fetched_at, source) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         ((r, f"Release {i}", _date(rng), rng.choice(groups), *STAMP) for i, r in enumerate(releases)))
        conn.executemany("INSERT INTO recording (id, title, length_ms, artist_credit, fetched_at, source) "
                         "VALUES (?, ?, ?, ?, ?, ?)",
                         ((r, f"Song {i}", _length(rng), f"Artist {i % n_artists}", *STAMP)
                          for i, r in enumerate(recording_ids)))

        def pairs():
            shared = None
            for i, r in enumerate(recording_ids):
                pick = rng.random()
                count = 0 if pick < 0.35 else 1 if pick < 0.9 else 2
                for k in range(count):
                    registrant = "".join(rng.choice(ALNUM) for _ in range(3))
                    year = 1990 + int(36 * rng.random() ** 0.5)
                    code = f"{rng.choice(COUNTRIES)}{registrant}{year % 100:02d}{rng.randrange(100_000):05d}"
                    yield r, code, *STAMP
                if shared and rng.random() < 0.01:  # an ISRC also on the next recording
                    yield r, shared, *STAMP
                shared = code if count else None

        conn.executemany("INSERT OR IGNORE INTO recording_isrc (recording_id, isrc, fetched_at, source) "
                         "VALUES (?, ?, ?, ?)", pairs())
        conn.executemany("INSERT INTO track (id, release_id, position, recording_id, length_ms, fetched_at, source) "
                         "VALUES (?, ?, ?, ?, ?, ?, ?)",
                         ((str(uuid.UUID(int=rng.getrandbits(128), version=4)), rng.choice(releases), i % 12 + 1,
                           recording_ids[i % recordings], None, *STAMP) for i in range(int(recordings * 1.5))))
        for table, ids in (("recording", recording_ids), ("release", releases), ("artist", artists)):
            gone = rng.sample(ids, len(ids) // 200)
            conn.executemany(f"UPDATE [{table}] SET gone_at = ? WHERE id = ?", ((STAMP[0], g) for g in gone))
        conn.execute("INSERT INTO harvest_run (command, args, started_at, finished_at, status) "
                     "VALUES ('import-dump', ?, ?, ?, 'complete')",
                     (json.dumps({"paths": ["synthetic"]}), STAMP[0], STAMP[0]))
    conn.execute("ANALYZE")
    db.close()


def timed(command: list[str]) -> tuple[float, str]:
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True)
    elapsed = time.perf_counter() - start
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed: {result.stderr}")
    return elapsed, result.stdout


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--recordings", type=int, default=1_000_000)
    parser.add_argument("--db", type=Path, default=Path("benchmarks/out/bench.db"))
    parser.add_argument("--runs", type=int, default=2)
    args = parser.parse_args()
    if not args.db.exists():
        start = time.perf_counter()
        build(args.db, args.recordings)
        print(f"built {args.db} ({args.db.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - start:.1f} s")
    mbharvest = [sys.executable, "-m", "harvester"]
    for run in range(args.runs):
        seconds, output = timed([*mbharvest, "stats", "--json", "--db", str(args.db)])
        figures = json.loads(output)
        print(f"run {run + 1}: stats --json {seconds:.2f} s (target < 10 s): {figures['recordings']:,} recordings, "
              f"{figures['recording_isrc_pairs']:,} ISRC pairs, {figures['tracks']:,} tracks, "
              f"peaks {[p['centre'] for p in figures['length_peaks']]}")
        seconds, _ = timed([*mbharvest, "report", "--db", str(args.db), "--out", str(args.db.parent / "report")])
        print(f"run {run + 1}: report {seconds:.2f} s (target < 30 s)")


if __name__ == "__main__":
    main()
