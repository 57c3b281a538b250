"""One entity document (a lookup response, a page item, a dump line) into
rows, and the raw document kept beside them."""

from __future__ import annotations

from typing import Any

import orjson

from harvester.errors import NormalizeError
from harvester.normalize.entities import WALKS, Walker
from harvester.normalize.fields import ShapeError
from harvester.normalize.normalized import DUMP_ENTITY_TYPES, Normalized
from harvester.normalize.supplementary import CC0, SUPPLEMENTARY_LICENCE, has_supplementary, strip_supplementary


def check_entity_type(entity_type: str) -> None:
    if entity_type not in WALKS:
        raise NormalizeError(f"unknown entity type {entity_type!r} (known: {', '.join(DUMP_ENTITY_TYPES)})",
                             document=entity_type)


def describe(entity_type: str, doc: Any) -> str:
    doc_id = doc.get("id") if isinstance(doc, dict) else None
    return f"{entity_type} {doc_id}" if isinstance(doc_id, str) else f"{entity_type} document"


def document_json(doc: Any) -> str:
    """How a kept document is written: compact, keys sorted, UTF-8 as is (so
    equal documents are equal text). TypeError for what JSON cannot hold,
    such as an integer beyond 64 bits."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()


def document_row(entity_type: str, entity_id: str, doc: dict, supplementary: bool) -> dict[str, Any]:
    keep_supplementary = supplementary and has_supplementary(doc)
    kept = doc if supplementary else strip_supplementary(doc)
    try:
        text = document_json(kept)
    except TypeError as exc:
        raise NormalizeError(f"cannot be kept as JSON ({exc})", document=f"{entity_type} {entity_id}") from None
    return {"entity_type": entity_type, "entity_id": entity_id, "json": text,
            "licence": f"{CC0}+{SUPPLEMENTARY_LICENCE}" if keep_supplementary else CC0}


def normalize_entity(entity_type: str, doc: Any, *, supplementary: bool = False, keep_document: bool = True,
                     relation_types: frozenset[str] | None = None) -> Normalized:
    """One entity document (a lookup response, a page item, a dump line).

    `relation_types`: the relationship target types the document was asked
    for (relationships.relation_types_of its includes); an entity carrying
    `relations` replaces its relationships of those types. None (a dump
    line: every relationship) replaces them all; an empty set none."""
    check_entity_type(entity_type)
    if not isinstance(doc, dict):
        raise NormalizeError(f"expected a JSON object, got {type(doc).__name__}", document=f"{entity_type} document")
    walker = Walker(supplementary, relation_types)
    try:
        entity_id = WALKS[entity_type](walker, doc)
    except ShapeError as exc:
        raise NormalizeError(str(exc), document=describe(entity_type, doc)) from None
    if keep_document:
        walker.out.documents.append(document_row(entity_type, entity_id, doc, supplementary))
    return walker.out
