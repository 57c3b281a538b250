"""Client politeness benchmark, run by hand (not a test): see benchmarks/README.md.

(a) one client, 60 requests at 1 req/s against an emulator enforcing 1 req/s:
    achieved rate (must be >= 0.97 req/s) and refusals (must be 0).
(b) two processes at 1 req/s each, sharing the machine's limiter, against the
    same emulator: combined rate (must be <= 1 req/s) and refusals (must be 0).
(c) generator speed: a corpus of about 100k recordings.

    .venv/bin/python benchmarks/bench_client.py [--part a|b|c|all] [--requests 60] [--each 15]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from harvester.client import WS2Client
from harvester.emulator import Emulator, generate_corpus

CONTACT = "mbharvest-benchmark@example.org"


def run_requests(url: str, rate: float, count: int, mbid: str, cache_dir: str) -> int:
    client = WS2Client(url, CONTACT, rate, cache_dir=cache_dir)
    for _ in range(count):
        client.lookup("artist", mbid)
    return client.requests_made


def summarise(log: list[dict], elapsed: float | None = None) -> dict:
    arrivals = sorted(entry["monotonic"] for entry in log)
    span = arrivals[-1] - arrivals[0]
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:])]
    summary = {
        "requests": len(log),
        "refusals_503": sum(1 for entry in log if entry["status"] == 503),
        "span_s": round(span, 3),
        "rate_between_first_and_last_req_per_s": round((len(arrivals) - 1) / span, 4),
        "min_gap_s": round(min(gaps), 4),
        "max_gap_s": round(max(gaps), 4),
    }
    if elapsed is not None:
        summary["elapsed_s"] = round(elapsed, 3)
        summary["achieved_rate_req_per_s"] = round(len(log) / elapsed, 4)
    return summary


def part_a(count: int) -> dict:
    corpus = generate_corpus(1, artists=10)
    mbid = next(iter(corpus.artists))
    with tempfile.TemporaryDirectory() as cache_dir, Emulator(corpus, rate=1.0) as emu:
        started = time.monotonic()
        run_requests(emu.url, 1.0, count, mbid, cache_dir)
        elapsed = time.monotonic() - started
        return summarise(emu.requests, elapsed=elapsed)


def part_b(each: int) -> dict:
    corpus = generate_corpus(1, artists=10)
    mbid = next(iter(corpus.artists))
    with tempfile.TemporaryDirectory() as cache_dir, Emulator(corpus, rate=1.0) as emu:
        workers = [
            subprocess.Popen([sys.executable, __file__, "--worker", emu.url, str(each), mbid, cache_dir],
                             stdout=subprocess.PIPE, text=True)
            for _ in range(2)
        ]
        made = [int(worker.communicate()[0]) for worker in workers]
        return {**summarise(emu.requests), "requests_per_process": made}


def part_c() -> dict:
    started = time.perf_counter()
    corpus = generate_corpus(7, artists=1300)
    generated = time.perf_counter() - started
    corpus.index
    return {"artists": len(corpus.artists), "releases": len(corpus.releases),
            "recordings": len(corpus.recordings), "generate_s": round(generated, 2),
            "index_s": round(time.perf_counter() - started - generated, 2)}


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        url, count, mbid, cache_dir = sys.argv[2:6]
        print(run_requests(url, 1.0, int(count), mbid, cache_dir))
        return 0
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--part", choices=["a", "b", "c", "all"], default="all")
    parser.add_argument("--requests", type=int, default=60)
    parser.add_argument("--each", type=int, default=15)
    args = parser.parse_args()
    results = {}
    if args.part in ("c", "all"):
        results["c_generator"] = part_c()
        print(json.dumps({"c_generator": results["c_generator"]}), flush=True)
    if args.part in ("a", "all"):
        results["a_one_client"] = part_a(args.requests)
        print(json.dumps({"a_one_client": results["a_one_client"]}), flush=True)
    if args.part in ("b", "all"):
        results["b_two_processes"] = part_b(args.each)
        print(json.dumps({"b_two_processes": results["b_two_processes"]}), flush=True)
    out = Path(__file__).parent / "out"
    out.mkdir(exist_ok=True)
    (out / "bench_client.json").write_text(json.dumps(results, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
