"""Benchmark `mbharvest import-dump` on seeded synthetic recording dumps.

    python benchmarks/bench_dump_import.py                 # 100k and 200k lines
    python benchmarks/bench_dump_import.py --sizes 100000 400000

For each size: builds `recording.tar.xz` (mbdump/recording + TIMESTAMP, lines
shaped like real recording dump lines; see synthetic_dump.py), imports it
into a fresh database in a child process (`python -m harvester import-dump`,
one process, end to end: decompression, JSON, normalizer, SQLite with its
full-text triggers), and reports recordings per second and the child's peak
RSS (from wait4's rusage, so only that child counts). Run by hand; not part
of the test suite.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.synthetic_dump import copies_with_fresh_ids, write_lines_dump, write_recording_dump  # noqa: E402
from tests.conftest import WS2  # noqa: E402
from tests.test_dumps import RELEASE_BODIES  # noqa: E402  (real release lookups, CC0: media, tracks, ISRCs, labels)

OUT = Path(__file__).resolve().parent / "out"


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def import_once(archive: Path, db: Path) -> tuple[float, int, str]:
    """Seconds (wall, whole child process), peak RSS in MB, the -v summary."""
    for suffix in ("", "-wal", "-shm"):
        Path(f"{db}{suffix}").unlink(missing_ok=True)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MBHARVEST_")}
    started = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "harvester", "import-dump", str(archive), "--db", str(db), "-v"],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=OUT)
    stdout = child.stdout.read().decode()
    stderr = child.stderr.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"import failed ({child.returncode}): {stderr}")
    return seconds, usage.ru_maxrss // 1024, stdout.strip()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 200_000])
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--release-lines", type=int, default=0,
                        help="Also time a release dump of this many lines (copies of real release lookups).")
    args = parser.parse_args()
    OUT.mkdir(exist_ok=True)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, nproc {os.cpu_count()}, {cpu_model()}, "
          f"Python {platform.python_version()}")
    print("| lines | archive MB | import s (end to end) | recordings/s | peak RSS MB | db MB |")
    print("|---:|---:|---:|---:|---:|---:|")
    for size in args.sizes:
        archive = OUT / f"recording-{size}.tar.xz"
        if not archive.exists():
            write_recording_dump(archive, size, seed=args.seed)
        db = OUT / f"bench-{size}.db"
        seconds, rss_mb, summary = import_once(archive, db)
        print(f"| {size:,} | {archive.stat().st_size / 1e6:,.1f} | {seconds:,.1f} | {size / seconds:,.0f} "
              f"| {rss_mb:,} | {db.stat().st_size / 1e6:,.0f} |")
        print(f"<!-- {summary} -->")
    if args.release_lines:
        import json
        texts = [json.dumps(json.loads((WS2 / p).read_text()), ensure_ascii=False, separators=(",", ":"))
                 for p in RELEASE_BODIES]
        archive = OUT / f"release-{args.release_lines}.tar.xz"
        if not archive.exists():
            write_lines_dump(archive, "release", copies_with_fresh_ids(texts, args.release_lines, args.seed))
        db = OUT / f"bench-release-{args.release_lines}.db"
        seconds, rss_mb, summary = import_once(archive, db)
        tracks = sum(t.count('"recording":{') for t in texts) / len(texts)
        print(f"\nrelease dump: {args.release_lines:,} lines (mean {sum(map(len, texts)) / len(texts) / 1e3:,.1f} kB, "
              f"~{tracks:.0f} tracks each): {seconds:,.1f} s, {args.release_lines / seconds:,.0f} releases/s, "
              f"peak RSS {rss_mb:,} MB")
        print(f"<!-- {summary} -->")


if __name__ == "__main__":
    main()
