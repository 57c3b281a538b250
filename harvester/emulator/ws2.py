"""The WS/2 application: the routes of /ws/2 answered from a corpus (no faults, no rate limit: the server's
proxy layer wraps these)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Mapping
from urllib.parse import unquote

import musicbrainzngs.musicbrainz as mbvocab

from harvester.emulator.corpus import ENTITIES, ISRC_RE, MBID_RE, Corpus
from harvester.emulator.render import BROWSE_LINKS, browse_body, browse_ids, isrc_body, lookup_body
from harvester.emulator.search import search_body

DEFAULT_LIMIT = 25
MAX_LIMIT = 100


@dataclass(frozen=True)
class Reply:
    status: int
    body: bytes
    content_type: str = "application/json; charset=utf-8"
    headers: tuple[tuple[str, str], ...] = ()


def json_reply(status: int, body: Any, headers: tuple[tuple[str, str], ...] = ()) -> Reply:
    return Reply(status, json.dumps(body, ensure_ascii=False).encode("utf-8"), headers=headers)


def error_reply(status: int, message: str) -> Reply:
    return json_reply(status, {"error": message})


def split_includes(values: list[str]) -> list[str]:
    return [inc for value in values for inc in value.replace(" ", "+").split("+") if inc]


def parse_paging(query: Mapping[str, list[str]]) -> tuple[int, int]:
    """(limit, offset); limit defaults to 25 and is capped at 100. ValueError if not integers."""
    limit = int(query.get("limit", [DEFAULT_LIMIT])[0])
    offset = int(query.get("offset", [0])[0])
    if offset < 0:
        raise ValueError("offset")
    return min(max(limit, 1), MAX_LIMIT), offset


def route(corpus: Corpus, path: str, query: Mapping[str, list[str]]) -> Reply:
    """Answer one WS/2 GET from the corpus (no faults, no rate limit: those wrap this)."""
    parts = [unquote(p) for p in path.split("/") if p]
    if parts[:2] != ["ws", "2"] or len(parts) not in (3, 4):
        return error_reply(404, "Not Found")
    if query.get("fmt", ["json"])[0] != "json":
        return error_reply(400, "This emulator serves fmt=json only.")
    entity = parts[2]
    includes = split_includes(query.get("inc", []))
    if entity == "isrc" and len(parts) == 4:
        return isrc_route(corpus, parts[3], includes)
    if entity not in ENTITIES:
        return error_reply(400, f"{entity} is not a resource this emulator serves.")
    if len(parts) == 4:
        return lookup_route(corpus, entity, parts[3], includes)
    if "query" in query:
        return search_route(corpus, entity, query)
    return browse_route(corpus, entity, query, includes)


def bad_include(entity: str, includes: list[str], valid: Mapping[str, list[str]]) -> Reply | None:
    for inc in includes:
        if inc not in valid.get(entity, ()):
            return error_reply(400, f"{inc} is not a valid inc parameter for the {entity} resource.")
    return None


def lookup_route(corpus: Corpus, entity: str, mbid: str, includes: list[str]) -> Reply:
    if not MBID_RE.match(mbid):
        return error_reply(400, "Invalid mbid.")
    refused = bad_include(entity, includes, mbvocab.VALID_INCLUDES)
    if refused:
        return refused
    body = lookup_body(corpus, entity, mbid, includes)
    return error_reply(404, "Not Found") if body is None else json_reply(200, body)


def isrc_route(corpus: Corpus, code: str, includes: list[str]) -> Reply:
    if not ISRC_RE.match(code):
        return error_reply(400, "Invalid isrc.")
    refused = bad_include("isrc", includes, mbvocab.VALID_INCLUDES)
    if refused:
        return refused
    body = isrc_body(corpus, code, includes)
    return error_reply(404, "Not Found") if body is None else json_reply(200, body)


def browse_route(corpus: Corpus, entity: str, query: Mapping[str, list[str]], includes: list[str]) -> Reply:
    links = BROWSE_LINKS.get(entity, {})
    given = [name for name in links if name in query]
    if len(given) != 1:
        return error_reply(400, f"Browse {entity} needs exactly one of: {', '.join(links) or 'nothing'}.")
    linked = given[0]
    mbid = query[linked][0]
    if not MBID_RE.match(mbid):
        return error_reply(400, "Invalid mbid.")
    refused = bad_include(entity, includes, mbvocab.VALID_BROWSE_INCLUDES)
    if refused:
        return refused
    try:
        limit, offset = parse_paging(query)
    except ValueError:
        return error_reply(400, "limit and offset must be non-negative integers.")
    types = frozenset(split_includes([v.replace("|", "+") for v in query.get("type", [])]))
    statuses = frozenset(split_includes([v.replace("|", "+") for v in query.get("status", [])]))
    ids = browse_ids(corpus, entity, linked, mbid, types, statuses)
    if ids is None:
        return error_reply(404, "Not Found")
    return json_reply(200, browse_body(corpus, entity, ids, offset, limit, includes))


def search_route(corpus: Corpus, entity: str, query: Mapping[str, list[str]]) -> Reply:
    try:
        limit, offset = parse_paging(query)
        return json_reply(200, search_body(corpus, entity, query["query"][0], offset, limit))
    except ValueError as exc:
        return error_reply(400, f"Invalid search: {exc}")
