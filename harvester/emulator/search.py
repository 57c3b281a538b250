"""A small subset of the Lucene search syntax, enough to exercise search paging.

Recording queries understand ``isrc:CODE``, ``arid:MBID``, ``reid:MBID``,
``recording:"title"`` (or ``recording:word``) and free text (a substring of
the title), joined by ``AND``. Other entities match free text or ``name:``/
``title:`` against their name or title. Every hit scores 100.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from typing import Callable, Iterator

from harvester.emulator.corpus import Corpus, Doc
from harvester.emulator.render import Renderer, plural

CLAUSE_RE = re.compile(r'(?:(\w+):)?("([^"]*)"|\S+)')


def parse_query(query: str) -> list[tuple[str, str]]:
    """``[(field, value)]``; field is "" for free text. ``AND`` is implied between clauses."""
    clauses = []
    for match in CLAUSE_RE.finditer(query):
        field, raw, quoted = match.group(1) or "", match.group(2), match.group(3)
        if not field and raw in ("AND", "&&"):
            continue
        clauses.append((field.lower(), quoted if quoted is not None else raw))
    return clauses


def recording_predicate(corpus: Corpus, field: str, value: str) -> Callable[[str, Doc], bool]:
    lowered = value.lower()
    if field == "isrc":
        code = value.upper()
        return lambda rid, rec: code in rec.get("isrcs", ())
    if field == "arid":
        return lambda rid, rec: any(part["artist"] == lowered for part in rec["artist-credit"])
    if field == "reid":
        on_release = set(corpus.index.recordings_by_release.get(lowered, ()))
        return lambda rid, rec: rid in on_release
    if field in ("", "recording"):
        return lambda rid, rec: lowered in (rec.get("title") or "").lower()
    raise ValueError(f"unsupported search field {field!r}")


def name_predicate(field: str, value: str) -> Callable[[str, Doc], bool]:
    if field not in ("", "name", "title", "artist", "label", "release", "releasegroup"):
        raise ValueError(f"unsupported search field {field!r}")
    lowered = value.lower()
    return lambda mbid, doc: lowered in (doc.get("name") or doc.get("title") or "").lower()


def matching_ids(corpus: Corpus, entity: str, query: str) -> Iterator[str]:
    clauses = parse_query(query)
    if entity == "recording":
        predicates = [recording_predicate(corpus, f, v) for f, v in clauses]
    else:
        predicates = [name_predicate(f, v) for f, v in clauses]
    for mbid, doc in corpus.table(entity).items():
        if all(predicate(mbid, doc) for predicate in predicates):
            yield mbid


def search_body(corpus: Corpus, entity: str, query: str, offset: int, limit: int) -> Doc:
    """``{"created", "count", "offset", "<entities>": [... with "score"]}``.

    Raises ValueError for a field this emulator does not understand."""
    ids = list(matching_ids(corpus, entity, query))
    renderer = Renderer(corpus, {"artist-credits", "isrcs"})
    items = [{**renderer.entity(entity, mbid), "score": 100} for mbid in ids[offset:offset + limit]]
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {"created": created, "count": len(ids), "offset": offset, plural(entity): items}
