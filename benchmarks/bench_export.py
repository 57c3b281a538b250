"""Exports keep memory flat: peak RSS does not grow with the table's size.

Builds synthetic databases of N recordings (bulk executemany), then runs each
export in a fresh child process and reads that child's peak RSS
(resource.getrusage) and its throughput. Run by hand, not part of pytest:

    python benchmarks/bench_export.py                      # 250k and 1M rows
    python benchmarks/bench_export.py --sizes 50000 200000 --workdir /tmp/bench
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

from harvester import store

FORMATS = ("csv", "parquet", "bagit-sqlite")


def build(path: Path, rows: int) -> None:
    """N recordings with realistic column shapes; the full-text triggers are
    dropped first (they cost build time and play no part in an export)."""
    db = store.open_db(path)
    for trigger in [r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'trigger'")]:
        db.execute(f"DROP TRIGGER [{trigger}]")
    insert = ("INSERT INTO recording (id, title, length_ms, first_release_date, video, disambiguation, "
              "artist_credit, fetched_at, source) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)")
    batch = 50_000
    with db.conn:
        for start in range(0, rows, batch):
            db.conn.executemany(insert, (
                (f"{i:08x}-0000-4000-8000-{i * 7919 % 10**12:012d}", f"Recording № {i} — «Ünïcødé»",
                 120_000 + i % 240_000, f"{1960 + i % 65}-{1 + i % 12:02d}-{1 + i % 28:02d}", i % 50 == 0,
                 "live" if i % 10 == 0 else None, f"Artist {i % 9973} feat. Guest {i % 31}",
                 "2026-01-01T00:00:00Z", "https://musicbrainz.org")
                for i in range(start, min(start + batch, rows))))
    db.execute("VACUUM")
    db.close()


def child(fmt: str, db_path: str, out: str) -> None:
    """One export in this process; prints peak RSS before and after, and timing."""
    from harvester.export import export_bagit, export_csv, export_parquet

    import pyarrow.parquet  # noqa: F401  (loaded before the baseline so the delta is the export's own)

    baseline_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    started = time.perf_counter()
    if fmt == "csv":
        rows = export_csv(db_path, out).rows
    elif fmt == "parquet":
        rows = export_parquet(db_path, out).rows
    else:
        rows = sum(export_bagit(db_path, out).row_counts.values())
    seconds = time.perf_counter() - started
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps({"rows": rows, "seconds": seconds, "baseline_kb": baseline_kb, "peak_kb": peak_kb}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[250_000, 1_000_000])
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/mbharvest-bench-export"))
    parser.add_argument("--child", nargs=3, metavar=("FORMAT", "DB", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    args.workdir.mkdir(parents=True, exist_ok=True)
    print("| rows | format | seconds | rows/s | peak RSS MiB | of which before export MiB | output MiB |")
    print("|---:|---|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        db_path = args.workdir / f"recordings-{size}.db"
        if not db_path.exists():
            build(db_path, size)
        for fmt in FORMATS:
            out = args.workdir / f"out-{size}-{fmt}"
            shutil.rmtree(out, ignore_errors=True)
            done = subprocess.run([sys.executable, __file__, "--child", fmt, str(db_path), str(out)],
                                  capture_output=True, text=True, check=True)
            figures = json.loads(done.stdout.strip().splitlines()[-1])
            size_mib = sum(p.stat().st_size for p in out.rglob("*") if p.is_file()) / 2**20
            print(f"| {size:,} | {fmt} | {figures['seconds']:.1f} | {figures['rows'] / figures['seconds']:,.0f} | "
                  f"{figures['peak_kb'] / 1024:.0f} | {figures['baseline_kb'] / 1024:.0f} | {size_mib:.0f} |",
                  flush=True)
            shutil.rmtree(out, ignore_errors=True)


if __name__ == "__main__":
    main()
