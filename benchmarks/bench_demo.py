"""Time `mbharvest demo` as a newcomer runs it: a subprocess (interpreter
start-up and imports included), into a fresh folder, several times.

    python benchmarks/bench_demo.py [--runs 5]

Target: under one minute; aimed at under 15 s.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

MBHARVEST = [sys.executable, "-m", "harvester"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    repo = Path(__file__).resolve().parent.parent
    out = Path(tempfile.mkdtemp(prefix="bench-demo-"))
    try:
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            result = subprocess.run([*MBHARVEST, "demo", "--out", str(out)], cwd=repo, capture_output=True,
                                    text=True, check=True)
            wall = time.monotonic() - started
            inside = re.search(r"Done in ([0-9.]+) s, (\d+) requests", result.stdout)
            print(f"run {run}: {wall:.2f} s wall (demo's own figure {inside.group(1)} s, "
                  f"{inside.group(2)} requests)")
    finally:
        shutil.rmtree(out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
