"""Answers that hold several entities (browse and search pages, ISRC
lookups), and the redirect a merged MBID's lookup leaves."""

from __future__ import annotations

from typing import Any

from harvester.errors import NormalizeError
from harvester.normalize.documents import check_entity_type, normalize_entity
from harvester.normalize.fields import ShapeError, normalize_isrc, read_int
from harvester.normalize.normalized import PLURAL_KEYS, Normalized, Page


def page_items(entity_type: str, page: Any) -> list:
    """The items of a browse or search page, under the plural or legacy singular key."""
    check_entity_type(entity_type)
    if not isinstance(page, dict):
        raise NormalizeError(f"expected a JSON object, got {type(page).__name__}", document=f"{entity_type} page")
    for key in PLURAL_KEYS[entity_type]:
        if key in page:
            items = page[key]
            if not isinstance(items, list):
                raise NormalizeError(f"{key} should be a list", document=f"{entity_type} page")
            return items
    raise NormalizeError(f"no {PLURAL_KEYS[entity_type][0]} list in the page", document=f"{entity_type} page")


def normalize_page(entity_type: str, page: Any, *, supplementary: bool = False,
                   relation_types: frozenset[str] | None = None) -> Page:
    """A browse page (`<entity>-count`, `<entity>-offset`) or a search result
    (`count`, `offset`; give a search `relation_types=frozenset()`: what its
    items carry of their relationships is not said)."""
    items = page_items(entity_type, page)
    out = Normalized()
    for item in items:
        out.extend(normalize_entity(entity_type, item, supplementary=supplementary, relation_types=relation_types))
    try:
        total = read_int(page.get(f"{entity_type}-count", page.get("count")), "count")
        offset = read_int(page.get(f"{entity_type}-offset", page.get("offset")), "offset")
    except ShapeError as exc:
        raise NormalizeError(str(exc), document=f"{entity_type} page") from None
    return Page(normalized=out, total=total, offset=offset, item_count=len(items))


def normalize_isrc_lookup(doc: Any, *, supplementary: bool = False) -> Normalized:
    """`/ws/2/isrc/<code>`: {"isrc": code, "recordings": [...]}.

    The recordings may come without their own `isrcs` list; the looked-up
    code is theirs by definition, so the pair is recorded (without replacing
    any other ISRCs the recording has)."""
    if not isinstance(doc, dict) or "recordings" not in doc:
        raise NormalizeError("expected {isrc, recordings}", document="isrc lookup")
    code = normalize_isrc(doc.get("isrc"))
    out = Normalized()
    for item in page_items("recording", doc):
        normalized = normalize_entity("recording", item, supplementary=supplementary)
        if code is not None and isinstance(item, dict) and "isrcs" not in item:
            normalized.add("recording_isrc", {"recording_id": normalized.rows["recording"][0]["id"], "isrc": code})
        out.extend(normalized)
    if code is None:
        out.invalid_isrcs.append(("", str(doc.get("isrc"))[:40]))
    return out


def redirect_row(entity_type: str, requested_id: str, returned_id: str) -> dict[str, str] | None:
    """An mbid_redirect row when a lookup answered with another (merged) entity."""
    old, new = requested_id.lower(), returned_id.lower()
    if old == new:
        return None
    return {"old_id": old, "new_id": new, "entity_type": entity_type}
