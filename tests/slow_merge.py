"""`mbharvest` with a pause after each table of a dump import's merge, for
tests that must act while the merge's transaction is open:

    python -m tests.slow_merge MARKER SECONDS import-dump ...

MARKER (a file) is created once the first table is merged, before its pause."""

from __future__ import annotations

import sys
import time
from pathlib import Path

from harvester.cli import cli
from harvester.dumps import merge


def main() -> None:
    marker, pause = Path(sys.argv[1]), float(sys.argv[2])
    original = merge.Merge.table

    def table(self, stage):
        changes = original(self, stage)
        marker.touch()
        time.sleep(pause)
        return changes

    merge.Merge.table = table
    cli.main(args=sys.argv[3:], prog_name="mbharvest")


if __name__ == "__main__":
    main()
