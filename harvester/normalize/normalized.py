"""What documents become: rows per table, child sets to clear first, raw
documents to keep, what was refused; and the entity types and their tables."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

# What harvest commands fetch (and refresh keeps current).
ENTITY_TYPES = ("artist", "label", "release-group", "release", "recording")
# What the JSON dumps hold: one archive per type, in the notes' order (no url or genre dump).
DUMP_ENTITY_TYPES = ("area", "artist", "event", "instrument", "label", "place", "recording", "release",
                     "release-group", "series", "work")

# The key a list of each entity type sits under in browse and search pages;
# searches from before about 2016 used the singular.
PLURAL_KEYS = {
    "artist": ("artists", "artist"),
    "label": ("labels", "label"),
    "release-group": ("release-groups", "release-group"),
    "release": ("releases", "release"),
    "recording": ("recordings", "recording"),
    "area": ("areas", "area"),
    "event": ("events", "event"),
    "instrument": ("instruments", "instrument"),
    "place": ("places", "place"),
    "series": ("series",),
    "work": ("works", "work"),
}

# table name <- entity type (release-group has a hyphen in WS/2, not in SQL)
TABLE_OF = {entity: entity.replace("-", "_") for entity in DUMP_ENTITY_TYPES}


@dataclass
class Normalized:
    """What one or more documents become: rows to upsert per table, child sets
    to clear first, raw documents to keep, and what was refused."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    replace: list[tuple[str, tuple[tuple[str, Any], ...]]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)
    invalid_isrcs: list[tuple[str, str]] = field(default_factory=list)
    invalid_iswcs: list[tuple[str, str]] = field(default_factory=list)

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, []).append(row)

    def clear_children(self, table: str, **where: Any) -> None:
        self.replace.append((table, tuple(where.items())))

    def extend(self, other: "Normalized") -> None:
        for table, rows in other.rows.items():
            self.rows.setdefault(table, []).extend(rows)
        self.replace.extend(other.replace)
        self.documents.extend(other.documents)
        self.invalid_isrcs.extend(other.invalid_isrcs)
        self.invalid_iswcs.extend(other.invalid_iswcs)

    def entity_ids(self, table: str) -> list[str]:
        return [row["id"] for row in self.rows.get(table, ())]


@dataclass(frozen=True)
class Page:
    """A browse or search page: its items' rows plus what paging needs."""

    normalized: Normalized
    total: int | None
    offset: int | None
    item_count: int
