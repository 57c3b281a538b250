"""Licences: core data is CC0; tags, genres, moods, ratings and annotations
(supplementary data) are CC BY-NC-SA 3.0, dropped (also from the kept raw
document) unless the caller opts in, and then kept in their own tables,
each row marked with that licence."""

from __future__ import annotations

from typing import Any

from harvester.normalize.fields import read_dict, read_float, read_int, read_list, read_text
from harvester.normalize.normalized import Normalized

CC0 = "CC0-1.0"
SUPPLEMENTARY_LICENCE = "CC-BY-NC-SA-3.0"

SUPPLEMENTARY_KEYS = frozenset(
    {"tags", "genres", "moods", "rating", "annotation", "user-tags", "user-genres", "user-moods", "user-rating"}
)
_TAG_KINDS = {"tags": "tag", "genres": "genre", "moods": "mood",
              "user-tags": "user-tag", "user-genres": "user-genre", "user-moods": "user-mood"}
_RATING_KINDS = {"rating": "rating", "user-rating": "user-rating"}


def strip_supplementary(doc: Any) -> Any:
    """A copy of doc without CC BY-NC-SA fields, at any depth."""
    if isinstance(doc, dict):  # scalars are taken as they are, not passed down: most values are scalars
        return {k: strip_supplementary(v) if isinstance(v, (dict, list)) else v
                for k, v in doc.items() if k not in SUPPLEMENTARY_KEYS}
    if isinstance(doc, list):
        return [strip_supplementary(v) if isinstance(v, (dict, list)) else v for v in doc]
    return doc


def has_supplementary(doc: Any) -> bool:
    if isinstance(doc, dict):
        return any(k in SUPPLEMENTARY_KEYS for k in doc) or any(has_supplementary(v) for v in doc.values())
    if isinstance(doc, list):
        return any(has_supplementary(v) for v in doc)
    return False


def supplementary_rows(out: Normalized, entity_type: str, entity_id: str, doc: dict) -> None:
    """The tag, rating and annotation rows of one entity (only when the caller opted in)."""
    for key, kind in _TAG_KINDS.items():
        if key in doc:
            out.clear_children("tag", entity_type=entity_type, entity_id=entity_id, kind=kind)
        for item in read_list(doc.get(key), key):
            item = read_dict(item, key) or {}
            name = read_text(item.get("name"), f"{key}.name")
            if name:
                out.add("tag", {"entity_type": entity_type, "entity_id": entity_id, "kind": kind,
                                "name": name, "count": read_int(item.get("count"), f"{key}.count"),
                                "licence": SUPPLEMENTARY_LICENCE})
    for key, kind in _RATING_KINDS.items():
        rating = doc.get(key)
        if isinstance(rating, (int, float)) and not isinstance(rating, bool):
            rating = {"value": rating}
        rating = read_dict(rating, key)
        if rating is not None and rating.get("value") is not None:
            out.add("rating", {"entity_type": entity_type, "entity_id": entity_id, "kind": kind,
                               "value": read_float(rating["value"], f"{key}.value"),
                               "votes_count": read_int(rating.get("votes-count"), f"{key}.votes-count"),
                               "licence": SUPPLEMENTARY_LICENCE})
    annotation = doc.get("annotation")
    if isinstance(annotation, str) and annotation.strip():
        out.add("annotation", {"entity_type": entity_type, "entity_id": entity_id,
                               "text": annotation, "licence": SUPPLEMENTARY_LICENCE})
