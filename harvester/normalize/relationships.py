"""Relationships and the URLs they point at.

A relationship is stored once, however many documents carry it: seen from
the artist (`direction: forward`) and from the recording (`backward`), a
performer relationship is one MusicBrainz relationship. WS/2 JSON gives it
no id, so a row is keyed by both ends and a `link_key` (a digest of the
type, the dates and the attributes with their values), and stored in one
orientation: from the relationship's source (MusicBrainz's entity0) to its
target (entity1), as MusicBrainz's own link tables are (l_artist_recording,
l_recording_work, l_url_work: between two types, the alphabetically first is
the source; between two entities of one type, `direction` says which is).

A document carrying `relations` replaces that entity's relationships of
the types it was asked for (`relation_types`: the target types of its
`*-rels` includes; None, as in a dump line, means every type), from that
side: as source and as target. Rows of other types stay; so does every row
carried by an entity seen only as another's target (see entities.Walker).
"""

from __future__ import annotations

import functools
import hashlib
from typing import Any, Iterable
from urllib.parse import urlsplit

import orjson

from harvester.normalize.fields import read_bool, read_date, read_dict, read_int, read_list, read_text

# What a relationship can point at: the target type (as stored: the table's
# name) and the keys its object may sit under in WS/2 JSON.
TARGET_KEYS: dict[str, tuple[str, ...]] = {
    "area": ("area",), "artist": ("artist",), "event": ("event",), "genre": ("genre",),
    "instrument": ("instrument",), "label": ("label",), "place": ("place",), "recording": ("recording",),
    "release": ("release",), "release_group": ("release_group", "release-group"), "series": ("series",),
    "url": ("url",), "work": ("work",),
}
RELATION_INCLUDE_SUFFIX = "-rels"


def relation_types_of(includes: Iterable[str]) -> frozenset[str]:
    """The target types a request's includes ask relationships for
    (`url-rels` -> url, `release-group-rels` -> release_group)."""
    found = set()
    for include in includes:
        if include.endswith(RELATION_INCLUDE_SUFFIX):
            target = include[:-len(RELATION_INCLUDE_SUFFIX)].replace("-", "_")
            if target in TARGET_KEYS:
                found.add(target)
    return frozenset(found)


def target_of(item: dict) -> tuple[str, dict] | None:
    """(target type, target object) of a relation item, or None when it names no target with an id.
    Bodies before about 2015 have no `target-type`: the target's key says it."""
    named = read_text(item.get("target-type"), "relations[].target-type")
    types = [named.replace("-", "_")] if named else list(TARGET_KEYS)
    for target_type in types:
        for key in TARGET_KEYS.get(target_type, (target_type,)):
            target = item.get(key)
            if isinstance(target, dict) and isinstance(target.get("id"), str) and target["id"].strip():
                return target_type, target
    return None


def link_key(type_key: str | None, begin: str | None, end: str | None, attributes: list[str],
             values: dict[str, str]) -> str:
    """What tells apart two relationships of one type between the same two
    entities (MusicBrainz refuses a second one equal in all of these): a
    16-hex-digit digest, the same from either side."""
    return _digest(type_key, begin, end, tuple(sorted(attributes)), tuple(sorted(values.items())))


@functools.lru_cache(maxsize=4096)  # most relationships are of a few types, without dates or attributes
def _digest(type_key: str | None, begin: str | None, end: str | None, attributes: tuple[str, ...],
            values: tuple[tuple[str, str], ...]) -> str:
    text = orjson.dumps([type_key, begin, end, list(attributes), [list(pair) for pair in values]])
    return hashlib.blake2b(text, digest_size=8).hexdigest()


def oriented(owner_type: str, target_type: str, direction: str | None) -> tuple[bool, str | None]:
    """(whether the owner is the relationship's source, the stored direction).
    Between two types the alphabetically first is the source (so a body
    without `direction` is oriented too); between two entities of one type
    `direction` says it, and without one the row keeps the document's
    orientation with direction NULL."""
    if owner_type != target_type:
        return owner_type < target_type, "forward"
    if direction in ("forward", "backward"):
        return direction == "forward", "forward"
    return True, None


def relationship_row(owner_type: str, owner_id: str, target_type: str, target_id: str,
                     item: dict) -> dict[str, Any]:
    """The stored row of one relation item, oriented from source to target."""
    direction = read_text(item.get("direction"), "relations[].direction")
    owner_is_source, stored_direction = oriented(owner_type, target_type, direction)
    given = item.get("attributes")
    attributes = [a for a in (read_text(a, "relations[].attributes[]")
                              for a in read_list(given, "relations[].attributes")) if a] if given else []
    values = _attribute_map(item, "attribute-values")
    credits = _attribute_map(item, "attribute-credits")
    type_name = read_text(item.get("type"), "relations[].type")
    type_id = read_text(item.get("type-id"), "relations[].type-id")
    begin = read_date(item.get("begin"), "relations[].begin")
    end = read_date(item.get("end"), "relations[].end")
    source_credit = read_text(item.get("source-credit"), "relations[].source-credit") or None
    target_credit = read_text(item.get("target-credit"), "relations[].target-credit") or None
    source, target = (owner_type, owner_id), (target_type, target_id)
    if not owner_is_source:
        source, target, source_credit, target_credit = target, source, target_credit, source_credit
    return {
        "entity_type": source[0], "entity_id": source[1], "target_type": target[0], "target_id": target[1],
        "link_key": link_key(type_id or type_name, begin, end, attributes, values),
        "type": type_name, "type_id": type_id, "direction": stored_direction,
        "begin_date": begin, "end_date": end, "ended": read_bool(item.get("ended"), "relations[].ended"),
        "attributes": orjson.dumps(attributes).decode() if attributes else None,
        "attribute_values": orjson.dumps(values).decode() if values else None,
        "attribute_credits": orjson.dumps(credits).decode() if credits else None,
        "entity_credit": source_credit, "target_credit": target_credit,
        "ordering_key": read_int(item.get("ordering-key"), "relations[].ordering-key"),
    }


def _attribute_map(item: dict, key: str) -> dict[str, str]:
    """An attribute's values or credits (text, as the service gives them)
    without the empty ones (most relationships have none)."""
    given = item.get(key)
    if not given:
        return {}
    values = {str(k): read_text(v, f"relations[].{key}") for k, v in read_dict(given, key).items()}
    return {k: v for k, v in values.items() if v not in (None, "")}


def relationship_sets(owner_type: str, owner_id: str,
                      relation_types: frozenset[str] | None) -> list[dict[str, str]]:
    """The child sets a document carrying an entity's `relations` replaces:
    its relationships of those types, as source and as target (named in the
    order of the table's key and target index: MBID, type, other type)."""
    if relation_types is None:
        return [{"entity_id": owner_id, "entity_type": owner_type},
                {"target_id": owner_id, "target_type": owner_type}]
    sets = []
    for other in sorted(relation_types):
        if other == owner_type or owner_type < other:
            sets.append({"entity_id": owner_id, "entity_type": owner_type, "target_type": other})
        if other == owner_type or other < owner_type:
            sets.append({"target_id": owner_id, "target_type": owner_type, "entity_type": other})
    return sets


def url_host(resource: str | None) -> str | None:
    """The host of a URL, lower case, without port or trailing dot (None when it has none)."""
    if not resource:
        return None
    try:
        host = urlsplit(resource.strip()).hostname
    except ValueError:
        return None
    return host.rstrip(".").lower() if host else None


def url_row(doc: dict, url_id: str) -> dict[str, Any]:
    row: dict[str, Any] = {"id": url_id}
    if "resource" in doc:
        resource = read_text(doc["resource"], "url.resource")
        row["resource"] = resource
        row["host"] = url_host(resource)
    return row
