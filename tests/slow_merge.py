"""`mbharvest` with a pause after each step of a dump import's merge, for
tests that must act while it runs:

    python -m tests.slow_merge MARKER SECONDS PHASES import-dump ...

After each table built beside its old self, MARKER (a file) says `build`;
after each table swapped in or merged in place, inside the final
transaction, it says `final`; then, if PHASES (comma-separated) names that
phase, the pause."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from harvester.cli import cli
from harvester.dumps import merge


def main() -> None:
    marker, pause, phases = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3].split(",")

    def paused(step, phase: str):
        def run(self, *args, **kwargs):
            result = step(self, *args, **kwargs)
            marker.write_text(phase)
            if phase in phases:
                time.sleep(pause)
            return result
        return run

    merge.Merge.build = paused(merge.Merge.build, "build")
    merge.Merge.swap = paused(merge.Merge.swap, "final")
    merge.Merge.table = paused(merge.Merge.table, "final")
    cli.main(args=sys.argv[4:], prog_name="mbharvest")


if __name__ == "__main__":
    main()
