"""The WS/2 application: /ws/2 answered from a corpus the way the MusicBrainz server answers.

What the server's own code does, reproduced here: a lookup of a merged MBID
answers ``301 Moved Permanently`` with ``Location:`` the same URL carrying
the survivor (and, like the server, the survivor's body); a browse by a
merged MBID answers 200 for the survivor; errors are ``{"error", "help"}``;
``limit`` absent or 0 means 25, above 100 is cut to 100, a non-integer
``limit`` or ``offset`` is a 400; items in a browse page are sorted by MBID;
answers carry ``X-RateLimit-*`` headers (a shared pool that jumps about,
not a per-client budget). The proxy's behaviour (per-IP and load-shedding
503s, faults) is the server's business, in front of this.

``shift``: a catalogue that changes while a harvest pages through it. After
the first page of each browse, the browse's last ``shift`` items move to its
front, so later pages repeat ``shift`` items and never show the moved ones.
"""

from __future__ import annotations

import random
import re
import threading
import time
from typing import Callable, Mapping
from urllib.parse import unquote

import musicbrainzngs.musicbrainz as mbvocab

from harvester.emulator.corpus import ENTITIES, ISRC_RE, MBID_RE, Corpus
from harvester.emulator.exchange import Reply, Request, json_reply
from harvester.emulator.render import BROWSE_LINKS, browse_body, browse_ids, isrc_body, lookup_body
from harvester.emulator.search import SearchError, search_body

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
HELP = "For usage, please see: https://musicbrainz.org/development/mmd"
PAGING_ERROR = "The 'limit' and 'offset' parameters must be positive integers"
ANY_CASE_MBID_RE = re.compile(MBID_RE.pattern, re.IGNORECASE)
NATURAL_RE = re.compile(r"^[0-9]+$")
RATE_LIMIT_POOL = 1200  # X-RateLimit-Limit on the application's answers (searches: 360)
SEARCH_RATE_LIMIT_POOL = 360


def error_reply(status: int, message: str) -> Reply:
    return json_reply(status, {"error": message, "help": HELP})


def split_includes(values: list[str]) -> list[str]:
    return [inc for value in values for inc in value.replace(" ", "+").split("+") if inc]


def parse_paging(query: Mapping[str, list[str]]) -> tuple[int, int]:
    """(limit, offset) as the server reads them: limit absent, empty or 0 is 25 and above 100 is 100;
    offset absent or empty is 0. ValueError unless both are natural numbers."""
    raw_limit = query.get("limit", [""])[0] or str(DEFAULT_LIMIT)
    raw_offset = query.get("offset", [""])[0] or "0"
    if not (NATURAL_RE.match(raw_limit) and NATURAL_RE.match(raw_offset)):
        raise ValueError(PAGING_ERROR)
    limit = int(raw_limit) or DEFAULT_LIMIT
    return min(limit, MAX_LIMIT), int(raw_offset)


def server_vocabulary(known: Mapping[str, list[str]]) -> dict[str, frozenset[str]]:
    """musicbrainzngs' includes (0.7.1, 2020) plus those the server has gained since: genres and
    user-genres wherever tags are valid, and a release's collections."""
    vocabulary = {}
    for entity, includes in known.items():
        extra = {"genres", "user-genres"} if "tags" in includes else set()
        if entity == "release":
            extra |= {"collections", "user-collections"}
        vocabulary[entity] = frozenset(includes) | extra
    return vocabulary


LOOKUP_INCLUDES = server_vocabulary(mbvocab.VALID_INCLUDES)
BROWSE_INCLUDES = server_vocabulary(mbvocab.VALID_BROWSE_INCLUDES)


def bad_include(entity: str, includes: list[str], valid: Mapping[str, frozenset[str]]) -> Reply | None:
    for inc in includes:
        if inc not in valid.get(entity, ()):
            return error_reply(400, f"{inc} is not a valid inc parameter for the {entity} resource.")
    return None


class WS2App:
    """The /ws/2 routes over a corpus; callable as an emulator application."""

    def __init__(self, corpus: Corpus, *, shift: int = 0, clock: Callable[[], float] = time.time, seed: int = 0):
        if shift < 0:
            raise ValueError(f"shift must be 0 or more, not {shift}")
        self.corpus = corpus
        self.shift = shift
        self.clock = clock
        self.rng = random.Random(seed)
        self.browses_begun: set[tuple[object, ...]] = set()
        self.lock = threading.Lock()

    def __call__(self, request: Request) -> Reply:
        reply = self.route(request)
        pool = SEARCH_RATE_LIMIT_POOL if "query" in request.query else RATE_LIMIT_POOL
        with self.lock:
            remaining = self.rng.randrange(pool)
        headers = (("X-RateLimit-Limit", str(pool)), ("X-RateLimit-Remaining", str(remaining)),
                   ("X-RateLimit-Reset", str(int(self.clock()) + 1)))
        return Reply(reply.status, reply.body, reply.content_type, reply.headers + headers, reply.server)

    def route(self, request: Request) -> Reply:
        parts = [unquote(p) for p in request.path.split("/") if p]
        if parts[:2] != ["ws", "2"] or len(parts) not in (3, 4):
            return error_reply(404, "Not Found")
        query = request.query
        fmt = query.get("fmt", [None])[0]
        if fmt is None and "json" not in (request.headers.get("Accept") or ""):
            # the service answers XML then (musicbrainzngs' default): a client must not get JSON by luck here
            return error_reply(406, "Without fmt=json or Accept: application/json the service answers XML, "
                                    "which this emulator does not render.")
        if fmt not in (None, "json"):
            return error_reply(400, "This emulator serves fmt=json only.")
        entity = parts[2]
        includes = split_includes(query.get("inc", []))
        if entity == "isrc" and len(parts) == 4:
            return self.isrc(parts[3], includes)
        if entity not in ENTITIES:
            return error_reply(400, f"{entity} is not a resource this emulator serves.")
        if len(parts) == 4:
            return self.lookup(request, entity, parts[3], includes)
        if "query" in query:
            return self.search(entity, query)
        return self.browse(entity, query, includes)

    def lookup(self, request: Request, entity: str, mbid: str, includes: list[str]) -> Reply:
        if not ANY_CASE_MBID_RE.match(mbid):
            return error_reply(400, "Invalid mbid.")
        refused = bad_include(entity, includes, LOOKUP_INCLUDES)
        if refused:
            return refused
        found = self.corpus.resolve(entity, mbid.lower())
        body = None if found is None else lookup_body(self.corpus, entity, found, includes)
        if body is None:
            return error_reply(404, "Not Found")
        if found != mbid:  # merged (or asked in capitals): where it lives now, with its body, as the server does
            location = f"{request.base}/ws/2/{entity}/{found}" + (f"?{request.raw_query}" if request.raw_query else "")
            return json_reply(301, body, headers=(("Location", location),))
        return json_reply(200, body)

    def isrc(self, code: str, includes: list[str]) -> Reply:
        if not ISRC_RE.match(code):
            return error_reply(400, "Invalid isrc.")
        refused = bad_include("isrc", includes, LOOKUP_INCLUDES)
        if refused:
            return refused
        body = isrc_body(self.corpus, code, includes)
        return error_reply(404, "Not Found") if body is None else json_reply(200, body)

    def browse(self, entity: str, query: Mapping[str, list[str]], includes: list[str]) -> Reply:
        links = BROWSE_LINKS.get(entity, {})
        given = [name for name in links if name in query]
        if len(given) != 1:
            return error_reply(400, f"Browse {entity} needs exactly one of: {', '.join(links) or 'nothing'}.")
        linked = given[0]
        mbid = query[linked][0]
        if not MBID_RE.match(mbid):
            return error_reply(400, "Invalid mbid.")
        refused = bad_include(entity, includes, BROWSE_INCLUDES)
        if refused:
            return refused
        try:
            limit, offset = parse_paging(query)
        except ValueError as exc:
            return error_reply(400, str(exc))
        types = frozenset(split_includes([v.replace("|", "+") for v in query.get("type", [])]))
        statuses = frozenset(split_includes([v.replace("|", "+") for v in query.get("status", [])]))
        ids = browse_ids(self.corpus, entity, linked, mbid, types, statuses)
        if ids is None:
            return error_reply(404, "Not Found")
        ids = self.shifted((entity, linked, self.corpus.resolve(linked, mbid), types, statuses), ids)
        return json_reply(200, browse_body(self.corpus, entity, ids, offset, limit, includes))

    def shifted(self, browse: tuple[object, ...], ids: list[str]) -> list[str]:
        """The browse order as this request sees it: from the second request of a browse on, with
        the last ``shift`` items moved to the front (see the module's docstring)."""
        with self.lock:
            begun = browse in self.browses_begun
            self.browses_begun.add(browse)
        moved = self.shift % len(ids) if ids else 0
        return ids[-moved:] + ids[:-moved] if begun and moved else ids

    def search(self, entity: str, query: Mapping[str, list[str]]) -> Reply:
        try:
            limit, offset = parse_paging(query)
        except ValueError as exc:
            return error_reply(400, str(exc))
        try:
            return json_reply(200, search_body(self.corpus, entity, query["query"][0], offset, limit))
        except SearchError as exc:
            return error_reply(400, f"Invalid search: {exc}")
