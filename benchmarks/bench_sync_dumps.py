"""Benchmark the parts of `mbharvest sync-dumps` that are its own (the import is import-dump's).

    python benchmarks/bench_sync_dumps.py                          # both parts, default sizes
    python benchmarks/bench_sync_dumps.py --download-mb 512 --scales 0.01 0.04 0.16

1. Download: one file served by the emulator's dump server on 127.0.0.1,
   fetched (a) by a bare `requests` loop that throws the bytes away, (b) by
   DumpFetcher.download (write to a .part file, SHA-256, fsync, rename) with
   64 KiB and 1 MiB reads, and (c) the SHA-256 of a part left by an earlier
   run (what a resumed download reads first). Loopback with a Python server,
   so only the ratios (b)/(a) say something about the real dump server.
2. Deletion pass: a database at the current shape holding the five entity
   tables in MusicBrainz's proportions (notes, Nov 2025: 2.73 M artists,
   3.97 M release groups, 5.09 M releases, 36.9 M recordings; labels, which
   the notes do not count, at 10% of artists) times a scale factor, with
   realistic row widths; 0.5% of each table still stamped with the older
   dump. Times `apply_deletions` (one scan per table) and the row count a
   sync takes before and after its import, in a fresh process each.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import platform
import random
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import requests  # noqa: E402

from benchmarks.bench_dump_import import cpu_model  # noqa: E402
from harvester import dumpsync  # noqa: E402
from harvester.dumpsync import DumpFetcher, apply_deletions  # noqa: E402
from harvester.emulator.dumptree import DumpServer, DumpTree  # noqa: E402
from harvester.store import finish_bulk_load, open_db, start_bulk_load  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
MUSICBRAINZ = {"artist": 2_730_000, "label": 273_000, "release_group": 3_970_000, "release": 5_090_000,
               "recording": 36_900_000}
OLD, NEW = "dump:2025-11-22T00:00:52Z", "dump:2025-11-26T00:00:48Z"
NOT_CARRIED = 0.005


def download(download_mb: int) -> None:
    data = random.Random(1).randbytes(1 << 20) * download_mb
    tree = DumpTree()
    tree.files.update({"LATEST": b"20251126-001002\n", "20251126-001002/blob.tar.xz": data})
    work = OUT / "download"
    work.mkdir(parents=True, exist_ok=True)
    print(f"## download: {download_mb} MiB from 127.0.0.1")
    with DumpServer(tree) as server:
        url = f"{server.url}/20251126-001002/blob.tar.xz"
        started = time.perf_counter()
        with requests.get(url, stream=True, timeout=30) as response:
            received = sum(len(chunk) for chunk in response.iter_content(64 << 10))
        bare = time.perf_counter() - started
        assert received == len(data)
        print(f"bare requests loop, 64 KiB reads, bytes discarded: {download_mb / bare:7.0f} MiB/s")
        digest = hashlib.sha256(data).hexdigest()
        for chunk in (64 << 10, 1 << 20):
            dumpsync.DOWNLOAD_CHUNK = chunk
            target = work / "blob.tar.xz"
            target.unlink(missing_ok=True)
            started = time.perf_counter()
            assert DumpFetcher(server.url, "bench@example.org").download(url, target, digest)
            seconds = time.perf_counter() - started
            print(f"DumpFetcher.download, {chunk >> 10:5d} KiB reads (write, SHA-256, fsync): "
                  f"{download_mb / seconds:7.0f} MiB/s ({bare / seconds:.2f} of the bare loop)")
        part = work / "blob.tar.xz.part"
        os.replace(target, part)
        started = time.perf_counter()
        dumpsync._PartDigest(part)
        seconds = time.perf_counter() - started
        print(f"SHA-256 of a part left by an earlier run: {download_mb / seconds:7.0f} MiB/s")
        part.unlink()


def build(path: Path, scale: float) -> dict[str, int]:
    """A database with the five entity tables at `scale` times MusicBrainz's size (built once, then reused)."""
    sizes = {table: max(1, int(n * scale)) for table, n in MUSICBRAINZ.items()}
    if path.exists():
        return sizes
    db = open_db(path)
    rng = random.Random(7)
    title = lambda: " ".join(rng.choice(("Love", "Night", "Rain", "City", "Été", "Сердце")) for _ in range(3))  # noqa: E731
    with db.atomic():
        start_bulk_load(db, list(sizes), "2026-01-01T00:00:00Z")
    columns = {"artist": "name, sort_name", "label": "name, sort_name", "release_group": "title, artist_credit",
               "release": "title, artist_credit", "recording": "title, artist_credit"}
    for table, count in sizes.items():
        done = 0
        while done < count:
            batch = min(100_000, count - done)
            rows = [(str(uuid.UUID(int=rng.getrandbits(128), version=4)), title(), title() + " feat. " + title(),
                     OLD if rng.random() < NOT_CARRIED else NEW, "2025-11-26T00:00:48Z") for _ in range(batch)]
            with db.atomic():
                db.conn.executemany(f"INSERT INTO [{table}] (id, {columns[table]}, source, fetched_at) "
                                    "VALUES (?, ?, ?, ?, ?)", rows)
            done += batch
    with db.atomic():
        finish_bulk_load(db)
        db.execute("INSERT INTO dump_sync (dump_name, rows_before, started_at) VALUES ('20251126-001002', 0, '')")
        for entity in ("artist", "label", "release-group", "recording", "release"):
            db.execute("INSERT INTO dump_sync_file (dump_name, entity_type, dump_timestamp, imported_at) "
                       "VALUES ('20251126-001002', ?, '2025-11-26T00:00:48Z', '2026-01-01T00:00:00Z')", [entity])
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.close()
    return sizes


def measure_deletions(path: Path) -> None:
    """Run in a child: time apply_deletions on a copy-free database (rows marked, then unmarked again)."""
    Path("/proc/self/clear_refs").write_text("5")  # peak RSS from here (a child inherits its parent's peak)
    db = open_db(path)
    started = time.perf_counter()
    rows = dumpsync._entity_rows(db)
    counted = time.perf_counter() - started
    started = time.perf_counter()
    applied = apply_deletions(db, "20251126-001002", "2026-01-01T00:00:00Z")
    seconds = time.perf_counter() - started
    peak = next(int(line.split()[1]) for line in Path("/proc/self/status").read_text().splitlines()
                if line.startswith("VmHWM:")) // 1024
    with db.atomic():  # leave it as built, for the next run
        for table in applied.gone:
            db.execute(f"UPDATE [{table}] SET gone_at = NULL WHERE gone_at IS NOT NULL")
    print(f"{rows:>12,} {sum(applied.gone.values()):>9,} {seconds:9.1f} {rows / seconds:>12,.0f} {counted:8.1f} "
          f"{peak:>6}")


def deletions(scales: list[float]) -> None:
    print("## deletion pass")
    print(f"{'entity rows':>12} {'gone':>9} {'seconds':>9} {'rows/s':>12} {'count s':>8} {'MiB':>6}")
    for scale in scales:
        path = OUT / f"sync-{scale:g}.db"
        build(path, scale)
        subprocess.run([sys.executable, __file__, "--measure", str(path)], check=True)
        print(f"{'':>12} (database {path.stat().st_size / 2**30:.2f} GiB at scale {scale:g})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--download-mb", type=int, default=256)
    parser.add_argument("--scales", type=float, nargs="+", default=[0.01, 0.04, 0.16])
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        return measure_deletions(args.measure)
    print(f"{platform.node()}: {cpu_model()}, {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"SQLite {sqlite3.sqlite_version}, {time.strftime('%Y-%m-%d')}")
    download(args.download_mb)
    deletions(args.scales)


if __name__ == "__main__":
    main()
