"""A reader process for the readers-during-writes test.

    python -m tests.reliability.reader DB STOP_FILE OUT_JSON

Reads DB in a loop until STOP_FILE exists, each round in one read
transaction (one snapshot): per-table counts and checks that hold at every
committed page boundary. Writes what it saw to OUT_JSON."""

from __future__ import annotations

import json
import sqlite3
import sys
import time
from pathlib import Path

TABLES = ("artist", "label", "release_group", "release", "recording", "medium", "track", "recording_isrc",
          "artist_credit_name", "document")
# each must return 0 in any committed state
CHECKS = {
    "track without its release": "SELECT count(*) FROM track WHERE release_id NOT IN (SELECT id FROM release)",
    "track without its recording": "SELECT count(*) FROM track WHERE recording_id NOT IN (SELECT id FROM recording)",
    "medium without its release": "SELECT count(*) FROM medium WHERE release_id NOT IN (SELECT id FROM release)",
    "ISRC without its recording":
        "SELECT count(*) FROM recording_isrc WHERE recording_id NOT IN (SELECT id FROM recording)",
    "release with media but a track count unlike its stored tracks": """
        SELECT count(*) FROM (
            SELECT m.release_id, sum(m.track_count) AS expected,
                   (SELECT count(*) FROM track t WHERE t.release_id = m.release_id) AS got
            FROM medium m GROUP BY m.release_id) WHERE expected != got""",
    "credited entity without its credit names": """
        SELECT count(*) FROM recording r WHERE r.artist_credit IS NOT NULL AND NOT EXISTS
            (SELECT 1 FROM artist_credit_name c WHERE c.entity_type = 'recording' AND c.entity_id = r.id)""",
    "dump position ahead of its data (a recording dump: one recording per line)": """
        SELECT count(*) FROM dump_import d WHERE d.entity_type = 'recording' AND d.lines_committed >
            (SELECT count(*) FROM recording)""",
    "bookmark ahead of its data": """
        SELECT count(*) FROM harvest_bookmark b WHERE b.step LIKE 'browse|recording|artist|%' AND b.next_offset >
            (SELECT count(*) FROM artist_credit_name c WHERE c.entity_type = 'recording'
             AND c.artist_id = substr(b.step, length(b.step) - 35))""",
}


def main(db_path: str, stop_file: str, out_path: str) -> None:
    rounds, errors, violations, counts_seen = 0, [], {}, []
    while not Path(stop_file).exists():
        if not Path(db_path).exists():
            time.sleep(0.005)
            continue
        try:
            db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, isolation_level=None)
            try:
                db.execute("BEGIN")
                counts = {table: db.execute(f"SELECT count(*) FROM [{table}]").fetchone()[0] for table in TABLES}
                for name, sql in CHECKS.items():
                    if db.execute(sql).fetchone()[0]:
                        violations[name] = violations.get(name, 0) + 1
                db.execute("COMMIT")
            finally:
                db.close()
        except sqlite3.OperationalError as exc:
            if "no such table" in str(exc):  # the writer is still creating the schema
                continue
            errors.append(str(exc))
            continue
        rounds += 1
        if not counts_seen or counts != counts_seen[-1]:
            counts_seen.append(counts)
    Path(out_path).write_text(json.dumps({"rounds": rounds, "errors": errors, "violations": violations,
                                          "distinct_snapshots": len(counts_seen),
                                          "last": counts_seen[-1] if counts_seen else {}}), encoding="utf-8")


if __name__ == "__main__":
    main(*sys.argv[1:4])
