"""A reader process for the dump-merge tests:

    python -m tests.dump_reader DB STOP_FILE OUT_JSON

Reads DB in a loop until STOP_FILE exists, each round in one read
transaction: per table, its row count and its newest `source`. Writes the
distinct snapshots it saw, in order, and how many rounds it made, to OUT_JSON."""

from __future__ import annotations

import json
import sqlite3
import sys
from pathlib import Path

TABLES = ("artist", "label", "release_group", "release", "recording", "medium", "track", "recording_isrc",
          "release_label", "artist_credit_name")


def main(db_path: str, stop_file: str, out_path: str) -> None:
    rounds, errors, snapshots = 0, [], []
    while not Path(stop_file).exists():
        try:
            db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None)
            try:
                db.execute("BEGIN")
                snapshot = {table: list(db.execute(f"SELECT count(*), max(source) FROM [{table}]").fetchone())
                            for table in TABLES}
                db.execute("COMMIT")
            finally:
                db.close()
        except sqlite3.OperationalError as exc:
            errors.append(str(exc))
            continue
        rounds += 1
        if not snapshots or snapshot != snapshots[-1]:
            snapshots.append(snapshot)
    Path(out_path).write_text(json.dumps({"rounds": rounds, "errors": errors, "snapshots": snapshots}),
                              encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:4])
