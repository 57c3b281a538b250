"""`mbharvest` with a pause after each step of a dump import's merge, for
tests that must act while it runs:

    python -m tests.slow_merge MARKER SECONDS PHASES import-dump ...

After each table built beside its old self, MARKER (a file) says `build`;
after each table swapped in or merged in place, inside the final
transaction, it says `final`; then, if PHASES (comma-separated) names that
phase, the pause. PHASES naming `second`: a second build process takes the
tables it can (build_process.py) however small the dump, and pauses after
each table it builds, after writing `second` to MARKER + ".second"."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from harvester.cli import cli
from harvester.dumps import build_process, merge


def paused(step, marker: Path, phase: str, pause: float, phases: list[str]):
    def run(self, *args, **kwargs):
        result = step(self, *args, **kwargs)
        marker.write_text(phase)
        if phase in phases:
            time.sleep(pause)
        return result
    return run


def main() -> None:
    marker, pause, phases = Path(sys.argv[1]), float(sys.argv[2]), sys.argv[3].split(",")
    merge.Merge.build = paused(merge.Merge.build, marker, "build", pause, phases)
    merge.Merge.swap = paused(merge.Merge.swap, marker, "final", pause, phases)
    merge.Merge.table = paused(merge.Merge.table, marker, "final", pause, phases)
    if "second" in phases:
        build_process.SECOND_PROCESS_RECORDS = 0
        build_process.ENTRY = (f"import sys; from tests.slow_merge import second; "
                               f"second({str(marker)!r}, {pause!r}, sys.argv[1:])")
    cli.main(args=sys.argv[4:], prog_name="mbharvest")


def second(marker: str, pause: float, argv: list[str]) -> None:
    """The second build process, pausing after each table it builds."""
    merge.Merge.build = paused(merge.Merge.build, Path(marker + ".second"), "second", pause, ["second"])
    build_process.main(argv)


if __name__ == "__main__":
    main()
