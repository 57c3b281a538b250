"""Benchmark `mbharvest import-dump` on a large generated release dump, fed through a FIFO.

    nice -n -5 python benchmarks/bench_release_import.py --lines 1000000
    python benchmarks/bench_release_import.py --lines 100000 --editions 1 2 --interval 5

For each edition (1: into a fresh database; 2: the next dump of the same
catalogue into the database edition 1 left, see release_dump.py), a child
process writes the lines into a FIFO (`python -m benchmarks.release_dump`)
and another imports it (`python -m harvester import-dump --entity release
FIFO`), so the lines never sit on disk. Every `--interval` seconds the
benchmark records the lines staged (`dump_import.lines_staged`, read-only),
the importer's bytes written (`/proc/<pid>/io` write_bytes) and the resident
memory of the importer and its staging processes (`--processes`) together,
sampled every second; when the last line is staged, the merge's length. At the end: the
curve, the staging rate over the first and the last fifth of the lines, the
merge, the end-to-end rate, the importer's disk writes against the final
database's size, its peak RSS (wait4's ru_maxrss: the largest of the importer
and its reaped staging processes), the summed peak, CPU time (staging
processes included), the
generator's CPU time (it shares the machine's cores with the importer), and
the load average before and after. Results go to benchmarks/out/ as JSON
too. Run by hand; not part of the test suite.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.bench_dump_import import cpu_model  # noqa: E402

OUT = Path(__file__).resolve().parent / "out"
TIMESTAMPS = {1: "2025-11-22T00:00:52Z", 2: "2025-11-26T00:00:48Z"}


def proc_io(pid: int | str) -> dict[str, int]:
    try:
        text = Path(f"/proc/{pid}/io").read_text()
    except OSError:
        return {}
    return {name: int(value) for name, value in (line.split(": ") for line in text.splitlines())}


def rss_mb(pid: int) -> float:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def descendants(pid: int) -> list[int]:
    """pid's children, their children and so on (the staging processes of
    `--processes N`), from /proc/<pid>/task/*/children."""
    found, todo = [], [pid]
    while todo:
        parent = todo.pop()
        for task in Path(f"/proc/{parent}/task").glob("*"):
            try:
                children = [int(child) for child in (task / "children").read_text().split()]
            except (OSError, ValueError):
                continue
            found += children
            todo += children
    return found


def total_rss_mb(pid: int) -> float:
    """Resident memory of the importer and its staging processes together."""
    return rss_mb(pid) + sum(rss_mb(child) for child in descendants(pid))


def lines_staged(db: Path) -> tuple[int, str | None]:
    if not db.exists():
        return 0, None
    try:
        with sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=1) as conn:
            row = conn.execute("SELECT max(lines_staged), max(status) FROM dump_import "
                               "WHERE dump_timestamp = (SELECT max(dump_timestamp) FROM dump_import)").fetchone()
            return row[0] or 0, row[1]
    except sqlite3.Error:
        return 0, None


def folder_bytes(folder: Path) -> int:
    total = 0
    for root, _, files in os.walk(folder):
        for name in files:
            try:
                total += os.path.getsize(os.path.join(root, name))
            except OSError:
                pass
    return total


def database_bytes(db: Path) -> int:
    return sum(Path(f"{db}{suffix}").stat().st_size for suffix in ("", "-wal") if Path(f"{db}{suffix}").exists())


def run_edition(edition: int, lines: int, seed: int, db: Path, interval: float, memory: int | None,
                processes: int) -> dict:
    fifo = OUT / f"release-edition{edition}.fifo"
    fifo.unlink(missing_ok=True)
    os.mkfifo(fifo)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MBHARVEST_")}
    progress = OUT / f"release-edition{edition}.written"
    progress.unlink(missing_ok=True)
    # the generator runs at the lowest priority: the importer's CPU comes first
    generator = subprocess.Popen([sys.executable, "-m", "benchmarks.release_dump", "--lines", str(lines),
                                  "--seed", str(seed), "--edition", str(edition), "--out", str(fifo),
                                  "--progress", str(progress)],
                                 cwd=Path(__file__).resolve().parent.parent, env=env, preexec_fn=lambda: os.nice(19))
    log = OUT / f"release-edition{edition}.log"
    log.unlink(missing_ok=True)
    command = [sys.executable, "-m", "harvester", "import-dump", "--entity", "release", "--timestamp",
               TIMESTAMPS[edition], str(fifo), "--db", str(db), "-v", "--log-file", str(log)]
    if memory:
        command += ["--memory", str(memory)]
    command += ["--processes", str(processes)]
    io_before = proc_io("self")
    started = time.monotonic()
    importer = subprocess.Popen(command, cwd=OUT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    curve, peak_stage, peak_total_rss = [], 0, 0.0
    generator_usage = None
    next_point = interval
    # wait4 (not Popen.poll) reaps each child, so that its rusage and, in this
    # process's /proc/self/io, its disk writes are kept
    while True:
        pid, status, usage = os.wait4(importer.pid, os.WNOHANG)
        if pid:
            break
        if generator_usage is None:
            pid, generator_status, usage = os.wait4(generator.pid, os.WNOHANG)
            if pid:
                generator_usage = usage
                if os.waitstatus_to_exitcode(generator_status) != 0:
                    print(f"the generator failed ({os.waitstatus_to_exitcode(generator_status)})", file=sys.stderr)
        # the memory of all the importer's processes is summed every second
        # (a staging process's peak is short); the curve moves every interval
        time.sleep(1.0)
        peak_total_rss = max(peak_total_rss, total_rss_mb(importer.pid))
        now = time.monotonic() - started
        if now < next_point:
            continue
        next_point += interval
        staged, db_status = lines_staged(db)
        try:  # the generator rewrites the file: read mid-write it is empty
            read = int(progress.read_text())
        except (OSError, ValueError):
            read = curve[-1]["read"] if curve else 0
        io = proc_io(importer.pid)
        stage = folder_bytes(db.with_name(db.name + ".import"))
        peak_stage = max(peak_stage, stage)
        curve.append({"seconds": round(now, 1), "read": read, "lines": staged, "write_mb": round(io.get("write_bytes", 0) / 1e6),
                      "rss_mb": round(total_rss_mb(importer.pid)), "stage_mb": round(stage / 1e6), "status": db_status})
        print(f"{now:8.1f} s {read:>10,} read {staged:>10,} staged  written {io.get('write_bytes', 0) / 1e9:6.2f} GB  "
              f"rss {curve[-1]['rss_mb']:,} MB  staged {stage / 1e6:,.0f} MB", file=sys.stderr, flush=True)
    seconds = time.monotonic() - started
    io_after = proc_io("self")
    stdout = importer.stdout.read().decode()
    stderr = importer.stderr.read().decode()
    generator_status = 0
    if generator_usage is None:
        _, generator_status, generator_usage = os.wait4(generator.pid, 0)
    fifo.unlink(missing_ok=True)
    if os.waitstatus_to_exitcode(generator_status) != 0:
        raise SystemExit(f"the generator failed ({os.waitstatus_to_exitcode(generator_status)}): the import saw "
                         f"its lines cut short: {stderr}")
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"import failed: {stderr}")
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        total_lines, changes = conn.execute(
            "SELECT lines_committed, changes FROM dump_import ORDER BY dump_timestamp DESC LIMIT 1").fetchone()
    written = io_after.get("write_bytes", 0) - io_before.get("write_bytes", 0)
    cancelled = io_after.get("cancelled_write_bytes", 0) - io_before.get("cancelled_write_bytes", 0)
    return {"edition": edition, "lines": total_lines, "seconds": round(seconds, 1), "curve": curve,
            "merge_seconds": _merge_seconds(stdout), "summary": stdout.strip(),
            "write_bytes": written, "cancelled_write_bytes": cancelled, "database_bytes": database_bytes(db),
            "peak_rss_mb": usage.ru_maxrss // 1024, "peak_total_rss_mb": round(peak_total_rss),
            "processes": processes, "cpu_seconds": round(usage.ru_utime + usage.ru_stime, 1),
            "generator_cpu_seconds": round(generator_usage.ru_utime + generator_usage.ru_stime, 1),
            "peak_stage_bytes": peak_stage, "changes": json.loads(changes or "{}"),
            "merge_steps": merge_steps(log.read_text())}


def merge_steps(log: str) -> list[dict]:
    """The importer's merge steps from its log file: what each took and wrote."""
    return [{"step": step, "seconds": float(seconds), "write_mb": int(written.replace(",", "")) if written else None}
            for step, seconds, written in re.findall(r" merge, (.+?): ([\d.]+) s(?:, ([\d,]+) MB written)?$", log,
                                                     re.MULTILINE)]


def _merge_seconds(summary: str) -> float | None:
    marker = "merge "
    if marker in summary:
        return float(summary.split(marker, 1)[1].split(" s", 1)[0])
    return None


def monotonic(curve: list[dict]) -> list[dict]:
    """The curve with each point's lines read at least the point before's
    (results recorded before the fix above hold a few zeros read mid-write)."""
    fixed, most = [], 0
    for point in curve:
        most = max(most, point["read"])
        fixed.append({**point, "read": most})
    return fixed


def fifth_rates(curve: list[dict], total: int, field: str = "read") -> tuple[float, float]:
    """Lines per second over the first and the last fifth of the lines, read
    (the generator's count of lines written into the FIFO, which holds only a
    few) or staged (committed chunks); times interpolated on the curve."""
    def time_at(lines: float) -> float:
        previous = {"seconds": 0.0, field: 0}
        for point in curve:
            if point[field] >= lines:
                span = point[field] - previous[field]
                share = (lines - previous[field]) / span if span else 0
                return previous["seconds"] + share * (point["seconds"] - previous["seconds"])
            previous = point
        return curve[-1]["seconds"]
    fifth = total / 5
    return fifth / time_at(fifth), fifth / (time_at(total) - time_at(total - fifth))


def report(result: dict) -> str:
    result = {**result, "curve": monotonic(result["curve"])}
    total = result["lines"]
    first, last = fifth_rates(result["curve"], total)
    first_staged, last_staged = fifth_rates(result["curve"], total, "lines")
    staged_seconds = result["seconds"] - (result["merge_seconds"] or 0)
    lines = [
        f"### Edition {result['edition']}: {total:,} release lines",
        "",
        "| what | measured |",
        "|---|---:|",
        f"| rate, first fifth of the lines (lines read) | {first:,.0f} lines/s |",
        f"| rate, last fifth of the lines (lines read) | {last:,.0f} lines/s ({last / first:.2f} x the first) |",
        f"| the same from committed chunks (30 s steps) | {first_staged:,.0f} / {last_staged:,.0f} lines/s "
        f"({last_staged / first_staged:.2f} x) |",
        f"| staging (reading, parsing, normalizing, sorted runs) | {staged_seconds:,.0f} s |",
        f"| merge (one transaction, indexes and full-text index included) | {result['merge_seconds']:,.0f} s |",
        f"| end to end (process start to exit) | {result['seconds']:,.0f} s = {total / result['seconds']:,.0f} "
        f"lines/s |",
        f"| database after (file + WAL) | {result['database_bytes'] / 1e9:,.2f} GB |",
        f"| bytes written by the import (write_bytes) | {result['write_bytes'] / 1e9:,.2f} GB = "
        f"{result['write_bytes'] / result['database_bytes']:.2f} x the database |",
        f"| of which cancelled before reaching the disk (cancelled_write_bytes) | "
        f"{result['cancelled_write_bytes'] / 1e9:,.2f} GB |",
        f"| staged runs at their largest | {result['peak_stage_bytes'] / 1e9:,.2f} GB |",
        f"| staging processes (--processes) | {result.get('processes', 1)} |",
        f"| peak RSS of the largest process (ru_maxrss) | {result['peak_rss_mb']:,} MB |",
        f"| peak RSS of all the import's processes together (sampled every second) | "
        f"{result.get('peak_total_rss_mb', '-'):,} MB |",
        f"| CPU time: importer / generator | {result['cpu_seconds']:,.0f} s / "
        f"{result['generator_cpu_seconds']:,.0f} s |",
    ]
    if result["changes"] and result["edition"] > 1:
        lines += ["", "| table | new | updated | unchanged | deleted |", "|---|---:|---:|---:|---:|"]
        for table, counts in result["changes"].items():
            lines.append(f"| {table} | {counts['new']:,} | {counts['updated']:,} | {counts['unchanged']:,} | "
                         f"{counts['deleted']:,} |")
    if result.get("merge_steps"):
        lines += ["", "Merge steps (from the importer's log):", "", "| step | s | written MB |", "|---|---:|---:|"]
        lines += [f"| {step['step']} | {step['seconds']:,.1f} | "
                  f"{'-' if step['write_mb'] is None else format(step['write_mb'], ',')} |" for step in result["merge_steps"]]
    lines += ["", "Curve (every point: lines read, lines committed in staged chunks, MB written, RSS MB of all the "
              "import's processes):", "",
              "| s | lines read | lines/s since previous | lines committed | written MB | RSS MB |",
              "|---:|---:|---:|---:|---:|---:|"]
    previous = {"seconds": 0.0, "read": 0}
    for point in result["curve"]:
        span = point["seconds"] - previous["seconds"]
        rate = (point["read"] - previous["read"]) / span if span else 0
        lines.append(f"| {point['seconds']:,.0f} | {point['read']:,} | {rate:,.0f} | {point['lines']:,} | "
                     f"{point['write_mb']:,} | {point['rss_mb']:,} |")
        previous = point
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, default=1_000_000)
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--editions", type=int, nargs="+", default=[1, 2], choices=(1, 2))
    parser.add_argument("--interval", type=float, default=10.0)
    parser.add_argument("--memory", type=int, default=None, help="--memory for the importer (MB)")
    parser.add_argument("--db", type=Path, default=OUT / "bench-release.db")
    parser.add_argument("--processes", type=int, default=1, help="--processes for the importer (staging processes)")
    args = parser.parse_args()
    args.db = args.db.resolve()  # the importer runs in OUT: a relative --db would land there
    OUT.mkdir(exist_ok=True)
    if args.editions[0] == 1:
        for suffix in ("", "-wal", "-shm", ".lock"):
            Path(f"{args.db}{suffix}").unlink(missing_ok=True)
    print(f"# {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, nproc {os.cpu_count()}, {cpu_model()}, "
          f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}, niceness {os.nice(0)}")
    for edition in args.editions:
        load_before = os.getloadavg()
        result = run_edition(edition, args.lines, args.seed, args.db, args.interval, args.memory, args.processes)
        result["load_before"], result["load_after"] = load_before, os.getloadavg()
        (OUT / f"bench-release-{args.lines}-edition{edition}.json").write_text(json.dumps(result, indent=1))
        print(report(result))
        print(f"\nload average before {', '.join(f'{x:.2f}' for x in load_before)}; after "
              f"{', '.join(f'{x:.2f}' for x in result['load_after'])}\n<!-- {result['summary']} -->\n", flush=True)


if __name__ == "__main__":
    main()
