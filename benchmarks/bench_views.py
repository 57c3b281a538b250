"""Benchmark the researcher views (migration 0007) and the summary triggers behind them.

Two questions, at several sizes:

1. What do the summary triggers cost on the write path that keeps them (a
   harvest, a refresh, a re-import into filled tables)? Synthetic recording
   dump lines (synthetic_dump.py: ISRCs, credits, lengths) are normalized once,
   then saved with store.save in batches of 1,000 into two fresh databases, one
   with the summary triggers and one with them dropped, batch by batch in
   turn, so both see the same machine load; the ratio is the cost.
2. How long does each view take against the GROUP BY scan of the base table
   that migration 0003's view ran on every read (best of 3), and a page of 100
   of the row-level views?

    python benchmarks/bench_views.py [--sizes 50000 200000 800000] [--workdir /tmp/bench-views]

A first dump import into empty tables does not pay the triggers (a bulk load
drops them and recounts once at the end: `rebuild_summaries`, timed here too).
"""

from __future__ import annotations

import argparse
import sqlite3
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synthetic_dump import recording_lines  # noqa: E402
from harvester import store  # noqa: E402
from harvester.normalize import Normalized, normalize_entity  # noqa: E402
from harvester.views import rebuild_summaries, summary_triggers  # noqa: E402

BATCH = 1_000
STAMP = {"source": "dump:2025-11-22T00:00:52Z", "fetched_at": "2025-11-22T00:00:52Z"}
SCANS = {  # what the 0003 views computed on every read
    "recording_length_histogram": "SELECT length_ms / 5000, count(*) FROM recording WHERE gone_at IS NULL "
                                  "AND length_ms > 0 GROUP BY 1",
    "isrc_countries": "SELECT substr(isrc, 1, 2), count(*) FROM (SELECT isrc FROM recording_isrc WHERE "
                      "recording_id NOT IN (SELECT id FROM recording WHERE gone_at IS NOT NULL) GROUP BY isrc) "
                      "GROUP BY 1",
}
PAGES = {
    "recording_with_isrcs": "SELECT * FROM recording_with_isrcs LIMIT 100 OFFSET 10000",
    "isrc_summary": "SELECT * FROM isrc_summary LIMIT 100 OFFSET 10000",
}


def best_of(conn: sqlite3.Connection, sql: str, runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        conn.execute(sql).fetchall()
        best = min(best, time.perf_counter() - start)
    return best


def fresh(path: Path, triggers: bool) -> store.sqlite_utils.Database:
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    db = store.open_db(path)
    if not triggers:
        for name in summary_triggers():
            db.execute(f"DROP TRIGGER IF EXISTS [{name}]")
    return db


def batches(size: int) -> list[Normalized]:
    out, batch = [], Normalized()
    for line in recording_lines(size):
        batch.extend(normalize_entity("recording", line))
        if len(batch.rows["recording"]) == BATCH:
            out.append(batch)
            batch = Normalized()
    if batch.rows:
        out.append(batch)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[50_000, 200_000, 800_000])
    parser.add_argument("--workdir", type=Path, default=Path("benchmarks/out/views"))
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    for size in args.sizes:
        work = batches(size)
        dbs = {triggers: fresh(args.workdir / f"{'with' if triggers else 'without'}-{size}.db", triggers)
               for triggers in (True, False)}
        spent = {True: 0.0, False: 0.0}
        for batch in work:
            for triggers in (True, False):
                start = time.perf_counter()
                with dbs[triggers].atomic():
                    store.save(dbs[triggers], batch, **STAMP)
                spent[triggers] += time.perf_counter() - start
        gone = [line for line, in dbs[True].execute("SELECT id FROM recording ORDER BY id LIMIT ?", [size // 100])]
        for triggers in (True, False):  # sync-dumps marks what a new dump no longer carries
            start = time.perf_counter()
            with dbs[triggers].atomic():
                dbs[triggers].conn.executemany("UPDATE recording SET gone_at = ? WHERE id = ?",
                                               [(STAMP["fetched_at"], g) for g in gone])
            spent[triggers] += time.perf_counter() - start
        pairs = dbs[True].execute("SELECT count(*) FROM recording_isrc").fetchone()[0]
        print(f"{size:>9,} recordings, {pairs:,} ISRC pairs: save + mark 1% gone with summary triggers "
              f"{spent[True]:6.1f} s, without {spent[False]:6.1f} s (x{spent[True] / spent[False]:.2f})")
        start = time.perf_counter()
        with dbs[True].atomic():
            rebuild_summaries(dbs[True])
        print(f"    rebuild_summaries (what a bulk load pays once): {time.perf_counter() - start:.2f} s")
        conn = dbs[True].conn
        for view, scan in SCANS.items():
            print(f"    {view:28} view {best_of(conn, f'SELECT * FROM {view}') * 1000:8.2f} ms   "
                  f"0003 scan {best_of(conn, scan) * 1000:8.1f} ms")
        for view, sql in PAGES.items():
            print(f"    {view:28} page of 100 {best_of(conn, sql) * 1000:8.2f} ms")
        for db in dbs.values():
            db.close()
        (args.workdir / f"without-{size}.db").unlink()


if __name__ == "__main__":
    main()
