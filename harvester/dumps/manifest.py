"""What an import has staged so far, kept in its `dump_import` row.

An import's row names its staged chunks (`stage`, JSON), the position after
the last line staged and the lines skipped; a chunk is named there only once
it is on disk, so a run after a kill resumes after the last chunk named.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

import sqlite_utils

from harvester.dumps.runs import Section
from harvester.dumps.staging import ColumnSets, StageCounts
from harvester.store import PRIMARY_KEYS, utc_now

_STATE_COLUMNS = ("status", "lines_committed", "lines_skipped", "lines_staged", "entities_written", "stage")


def table_keys() -> dict[str, tuple[str, ...]]:
    """Every table's primary key columns, as staging and the merge sort by them."""
    return {table: (key,) if isinstance(key, str) else tuple(key) for table, key in PRIMARY_KEYS.items()}


@dataclass
class Stage:
    """A dump's staged chunks and where reading them stopped (dump_import.stage)."""

    folder: Path
    lines: int = 0
    skipped: int = 0
    chunks: list[dict[str, Section]] = field(default_factory=list)
    column_sets: ColumnSets = field(default_factory=lambda: ColumnSets(table_keys()))
    counts: StageCounts = field(default_factory=StageCounts)
    built: dict[str, dict] = field(default_factory=dict)  # tables rebuilt beside, waiting for the swap: changes

    def as_json(self) -> str:
        return json.dumps({
            "version": 1, "folder": str(self.folder), "lines": self.lines, "skipped": self.skipped,
            "chunks": [{stream: section.as_json() for stream, section in chunk.items()} for chunk in self.chunks],
            "column_sets": self.column_sets.as_json(), "partial": self.counts.partial,
            "rows": self.counts.rows, "repeats": self.counts.repeats, "sets": self.counts.sets, "built": self.built})

    @classmethod
    def from_json(cls, text: str) -> "Stage":
        value = json.loads(text)
        folder = Path(value["folder"])
        return cls(folder, value["lines"], value["skipped"],
                   [{stream: Section.from_json(folder, section) for stream, section in chunk.items()}
                    for chunk in value["chunks"]],
                   ColumnSets.from_json(table_keys(), value["column_sets"]),
                   StageCounts(value["rows"], value["repeats"], value["sets"], value["partial"]), value["built"])

    def intact(self) -> bool:
        """Every chunk it names is on disk, at least as long as its sections."""
        for chunk in self.chunks:
            for section in chunk.values():
                try:
                    if section.path.stat().st_size < section.offset + section.length:
                        return False
                except OSError:
                    return False
        return True

    def files(self) -> set[Path]:
        return {section.path for chunk in self.chunks for section in chunk.values()}

    def merged(self) -> "Stage":
        """The stage once its chunks are merged: the same position, nothing left to merge."""
        return Stage(self.folder, self.lines, self.skipped, [], self.column_sets, self.counts)


def import_state(db: sqlite_utils.Database, key: dict) -> dict | None:
    """The `dump_import` row of the dump `key` names, if an import of it began."""
    row = db.execute(
        f"SELECT {', '.join(_STATE_COLUMNS)} FROM dump_import "
        "WHERE entity_type = ? AND dump_timestamp = ? AND size_bytes = ?",
        (key["entity_type"], key["dump_timestamp"], key["size_bytes"])).fetchone()
    return None if row is None else dict(zip(_STATE_COLUMNS, row))


def stage_name(key: dict) -> str:
    """The staging folder's name for the dump `key` names."""
    stamp = key["dump_timestamp"].replace(":", "").replace("-", "")
    return f"{key['entity_type']}-{stamp}-{key['size_bytes']}"


def save_state(db: sqlite_utils.Database, key: dict, path: Path, status: str, committed: int, stage: Stage) -> None:
    """Record where the import of `key` stands (its row is made by the first save)."""
    now = utc_now()
    with db.atomic():
        db.execute(
            "INSERT INTO dump_import (entity_type, dump_timestamp, size_bytes, path, status, lines_committed, "
            "lines_skipped, lines_staged, entities_written, stage, started_at, updated_at) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, ?, ?) "
            "ON CONFLICT (entity_type, dump_timestamp, size_bytes) DO UPDATE SET path = excluded.path, "
            "status = excluded.status, lines_skipped = excluded.lines_skipped, "
            "lines_staged = excluded.lines_staged, stage = excluded.stage, updated_at = excluded.updated_at",
            [key["entity_type"], key["dump_timestamp"], key["size_bytes"], str(path), status,
             committed, stage.skipped, stage.lines, stage.as_json(), now, now])
