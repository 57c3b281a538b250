"""Aliases: the other names an entity is known and searched by (other
scripts, languages, legal names, search hints), one row each, in the order
the document lists them."""

from __future__ import annotations

from typing import Any

from harvester.normalize.fields import read_bool, read_date, read_dict, read_list, read_text


def alias_rows(entity_type: str, entity_id: str, aliases: Any) -> list[dict[str, Any]]:
    """The alias rows of one entity. Lookups give `begin`/`end`, searches
    `begin-date`/`end-date`; an alias without a name is passed over."""
    rows = []
    for item in read_list(aliases, "aliases"):
        item = read_dict(item, "aliases[]") or {}
        name = read_text(item.get("name"), "aliases[].name")
        if not name:
            continue
        rows.append({
            "entity_type": entity_type, "entity_id": entity_id, "position": len(rows), "name": name,
            "sort_name": read_text(item.get("sort-name"), "aliases[].sort-name"),
            "locale": read_text(item.get("locale"), "aliases[].locale"),
            "type": read_text(item.get("type"), "aliases[].type"),
            "primary": read_bool(item.get("primary"), "aliases[].primary"),
            "begin_date": read_date(item.get("begin", item.get("begin-date")), "aliases[].begin"),
            "end_date": read_date(item.get("end", item.get("end-date")), "aliases[].end"),
            "ended": read_bool(item.get("ended"), "aliases[].ended"),
        })
    return rows
