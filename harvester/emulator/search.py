"""Searches in the Lucene query syntax clients send, over a corpus.

The syntax of Lucene's classic query parser, enough for what clients send
(musicbrainzngs sends ``isrc:(gbaye1000004)``, ``arid:(5b11f4ce\\-a62d...)``,
joined by spaces, or by ``AND`` when strict): terms and ``"phrases"``,
``field:value`` and ``field:(several terms)``, parentheses, ``AND``/``&&``,
``OR``/``||``, ``NOT``/``!``, ``+required`` and ``-prohibited``, ``*`` and
``?`` wildcards, backslash escapes; boosts (``^2``) and fuzziness (``~``)
are read and ignored. As in Lucene, terms side by side are joined by ``OR``.

Fields are those of MusicBrainz's search indexes (musicbrainzngs'
``VALID_SEARCH_FIELDS``): identifiers, ISRCs, barcodes and other codes match
whole values; names and titles match word by word, case-insensitively. A
hit scores 100 times the share of the query's clauses it matches; hits come
best first.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any, Callable, Iterable, Mapping

import musicbrainzngs.musicbrainz as mbvocab

from harvester.emulator.corpus import Corpus, Doc, credited_artists, ref
from harvester.emulator.render import Renderer, plural

DEFAULT_FIELD = {"recording": "recording", "release": "release", "release-group": "releasegroup",
                 "artist": "artist", "label": "label"}
OWN_NAME_FIELDS = {"recording": {"recording", "recordingaccent"}, "release": {"release", "releaseaccent"},
                   "release-group": {"releasegroup", "releasegroupaccent"}, "artist": {"artist", "artistaccent"},
                   "label": {"label", "labelaccent"}}
OWN_ID_FIELD = {"recording": "rid", "release": "reid", "release-group": "rgid", "artist": "arid", "label": "laid"}
# Fields compared as whole values (identifiers and codes), not word by word.
KEYWORD_FIELDS = frozenset({"rid", "arid", "reid", "rgid", "laid", "tid", "isrc", "barcode", "catno", "asin", "code",
                            "ipi", "isni", "date", "begin", "end", "dur", "qdur", "video", "tnum", "number",
                            "position", "tracks", "mediums", "releases", "release_count", "tracksrelease",
                            "tracksmedium", "status", "type", "primarytype", "secondarytype", "country", "gender",
                            "quality", "lang", "script", "format", "ended"})
WORD_RE = re.compile(r"[\w*?]+", re.UNICODE)
SPECIAL = set('+-&|!(){}[]^"~*?:\\/')


class SearchError(ValueError):
    """A query this emulator cannot answer (a syntax error or a field it does not know)."""


# ---- parsing ------------------------------------------------------------------


@dataclass
class Term:
    field: str
    text: str
    phrase: bool = False


@dataclass
class Clauses:
    """Lucene's boolean query: required (+, AND), prohibited (-, NOT) and optional clauses."""

    required: list[Any] = field(default_factory=list)
    prohibited: list[Any] = field(default_factory=list)
    optional: list[Any] = field(default_factory=list)

    def all(self) -> list[Any]:
        return self.required + self.prohibited + self.optional


TOKEN_RE = re.compile(r'\s+|(?P<open>\()|(?P<close>\))|(?P<phrase>"(?:[^"\\]|\\.)*")|(?P<word>(?:\\.|[^\s()"])+)')


def tokens(query: str) -> list[tuple[str, str]]:
    """(kind, text): open, close, phrase (unquoted, unescaped) or word (raw, escapes kept)."""
    found, position = [], 0
    while position < len(query):
        match = TOKEN_RE.match(query, position)
        if not match:
            raise SearchError(f"unbalanced quote at {position + 1}")
        position = match.end()
        kind = match.lastgroup
        if kind == "phrase":
            found.append((kind, unescape(match.group(kind)[1:-1])))
        elif kind:
            found.append((kind, match.group(kind)))
    return found


def unescape(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def split_field(word: str) -> tuple[str | None, str]:
    """``field:rest`` at the first unescaped colon, else (None, word)."""
    match = re.match(r"^([A-Za-z_][\w-]*):(.*)$", word, re.DOTALL)
    return (match.group(1).lower(), match.group(2)) if match else (None, word)


class Parser:
    def __init__(self, query: str, default_field: str):
        self.tokens = tokens(query)
        self.position = 0
        self.default_field = default_field

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.position] if self.position < len(self.tokens) else None

    def take(self) -> tuple[str, str]:
        token = self.tokens[self.position]
        self.position += 1
        return token

    def parse(self) -> Clauses:
        clauses = self.sequence(self.default_field)
        if self.peek() is not None:
            raise SearchError("unbalanced parenthesis")
        if not clauses.all():
            raise SearchError("empty query")
        return clauses

    def sequence(self, field_name: str) -> Clauses:
        """Clauses up to a closing parenthesis; side by side they are optional (Lucene's OR)."""
        items: list[list[Any]] = []  # [modifier, node]: "+" required, "-" prohibited, "" optional
        join_and = False
        while (token := self.peek()) is not None and token[0] != "close":
            kind, text = token
            if kind == "word" and text in ("AND", "&&"):
                self.take()
                join_and = True
                continue
            if kind == "word" and text in ("OR", "||"):
                self.take()
                continue
            modifier = ""
            if kind == "word" and text in ("NOT", "!"):
                self.take()
                modifier = "-"
            node, sign = self.clause(field_name)
            modifier = modifier or sign
            if join_and and items:
                if items[-1][0] == "":
                    items[-1][0] = "+"
                modifier = modifier or "+"
            join_and = False
            items.append([modifier, node])
        clauses = Clauses()
        for modifier, node in items:
            {"+": clauses.required, "-": clauses.prohibited, "": clauses.optional}[modifier].append(node)
        return clauses

    def clause(self, field_name: str) -> tuple[Any, str]:
        """One clause and its sign (+, - or none)."""
        kind, text = self.take()
        sign = ""
        if kind == "word" and text[:1] in "+-!" and len(text) > 1:
            sign, text = ("-" if text[0] in "-!" else "+"), text[1:]
        elif kind == "word" and text in ("+", "-") and self.peek() is not None:
            sign = text
            kind, text = self.take()
        if kind == "open":
            return self.group(field_name), sign
        if kind == "phrase":
            return Term(field_name, text, phrase=True), sign
        if kind == "close":
            raise SearchError("unbalanced parenthesis")
        named, rest = split_field(text)
        if named is not None:
            if rest:
                return Term(named, self.clean(rest)), sign
            following = self.peek()
            if following is None:
                raise SearchError(f"nothing after {named}:")
            kind, text = self.take()
            if kind == "open":
                return self.group(named), sign
            if kind == "phrase":
                return Term(named, text, phrase=True), sign
            return Term(named, self.clean(text)), sign
        return Term(field_name, self.clean(text)), sign

    def group(self, field_name: str) -> Clauses:
        inner = self.sequence(field_name)
        if self.peek() is None or self.take()[0] != "close":
            raise SearchError("unbalanced parenthesis")
        return inner

    @staticmethod
    def clean(word: str) -> str:
        """A term without its boost (``^2``) or fuzziness (``~``, ``~0.8``), escapes resolved."""
        word = re.sub(r"(?<!\\)[\^~][0-9.]*$", "", word)
        return unescape(word)


def parse_query(query: str, default_field: str = "") -> Clauses:
    return Parser(query, default_field).parse()


# ---- matching ------------------------------------------------------------------


def words(text: str) -> list[str]:
    return WORD_RE.findall(text.lower())


def term_matches(term: Term, values: Iterable[str]) -> bool:
    wanted = term.text.lower()
    for value in values:
        value = value.lower()
        if term.field in KEYWORD_FIELDS:
            if fnmatch.fnmatchcase(value, wanted) if not term.phrase else value == wanted:
                return True
            continue
        have, want = words(value), words(wanted)
        if not want:
            continue
        if len(want) == 1 and not term.phrase:
            if any(fnmatch.fnmatchcase(word, want[0]) for word in have):
                return True
        elif any(have[i:i + len(want)] == want for i in range(len(have) - len(want) + 1)):
            return True
    return False


def matches(node: Any, values_of: Callable[[str], list[str]]) -> tuple[bool, int]:
    """(whether the node matches, how many of its clauses matched)."""
    if isinstance(node, Term):
        hit = term_matches(node, values_of(node.field))
        return hit, int(hit)
    required = [matches(n, values_of)[0] for n in node.required]
    prohibited = [matches(n, values_of)[0] for n in node.prohibited]
    optional = [matches(n, values_of)[0] for n in node.optional]
    hit = all(required) and not any(prohibited) and (bool(required) or any(optional))
    return hit, sum(required) + sum(optional) + sum(not p for p in prohibited)


class Fields:
    """The values of each search field of one entity type, from the corpus."""

    def __init__(self, corpus: Corpus, entity: str):
        self.corpus = corpus
        self.entity = entity
        valid = mbvocab.VALID_SEARCH_FIELDS.get(entity)
        if valid is None:
            raise SearchError(f"{entity} is not searchable here")
        self.valid = set(valid)

    def check(self, names: Iterable[str]) -> None:
        unknown = sorted(set(names) - self.valid)
        if unknown:
            raise SearchError(f"unsupported search field {unknown[0]!r} for {self.entity}")

    def __call__(self, mbid: str, doc: Mapping[str, Any]) -> Callable[[str], list[str]]:
        return lambda name: [str(v) for v in self.values(name, mbid, doc) if v is not None]

    def values(self, name: str, mbid: str, doc: Mapping[str, Any]) -> list[Any]:
        entity = self.entity
        if name in OWN_NAME_FIELDS[entity]:
            return [doc.get("title")] if "title" in doc else [doc.get("name"), doc.get("sort-name")] + aliases(doc)
        if name == OWN_ID_FIELD[entity]:
            return [mbid]
        parts = [part for part in doc.get("artist-credit") or () if isinstance(part, Mapping)]
        if name == "arid":
            return credited_artists(parts)
        if name in ("artist", "artistname"):  # the credit as printed, and each credited artist's name
            printed = ["".join(f"{p.get('name') or ''}{p.get('joinphrase') or ''}" for p in parts)]
            return (printed if name == "artist" else []) + [self.artist_name(p.get("artist")) for p in parts]
        if name == "creditname":
            return [part.get("name") for part in parts]
        if name in ("reid", "release", "rgid") and entity in ("recording", "release-group"):
            index = self.corpus.index.releases_by_recording if entity == "recording" else \
                self.corpus.index.releases_by_release_group
            releases = [self.corpus.releases[i] for i in index.get(mbid, ())]
            if name == "reid":
                return [release.get("id") for release in releases]
            return [ref(release.get("release-group")) for release in releases] if name == "rgid" else \
                [release.get("title") for release in releases]
        if name in ("primarytype", "secondarytype", "type") and entity in ("release", "release-group"):
            group = doc if entity == "release-group" else self.corpus.release_groups.get(
                ref(doc.get("release-group")) or "", {})
            primary, secondary = [group.get("primary-type")], list(group.get("secondary-types") or ())
            return {"primarytype": primary, "secondarytype": secondary, "type": primary + secondary}[name]
        if entity == "release" and name in ("rgid", "laid", "label", "catno"):
            infos = [info for info in doc.get("label-info") or () if isinstance(info, Mapping)]
            labels = [ref(info.get("label")) for info in infos]
            return {"rgid": lambda: [ref(doc.get("release-group"))], "laid": lambda: labels,
                    "label": lambda: [self.corpus.labels.get(i or "", {}).get("name") for i in labels],
                    "catno": lambda: [info.get("catalog-number") for info in infos]}[name]()
        renamed = {"isrc": "isrcs", "sortname": "sort-name", "alias": None, "comment": "disambiguation",
                   "code": "label-code", "dur": "length"}
        if name == "alias":
            return aliases(doc)
        if name == "video":
            return [str(bool(doc.get("video"))).lower()]
        value = doc.get(renamed.get(name, name))  # the rest: the field of that name (status, country, barcode...)
        return list(value) if isinstance(value, list) else [value]

    def artist_name(self, artist: Any) -> str | None:
        if isinstance(artist, Mapping):
            return artist.get("name")
        return self.corpus.artists.get(artist or "", {}).get("name")



def aliases(doc: Mapping[str, Any]) -> list[str]:
    return [alias.get("name") for alias in doc.get("aliases") or () if isinstance(alias, Mapping)]


def fields_in(node: Any) -> set[str]:
    if isinstance(node, Term):
        return {node.field}
    return {name for child in node.all() for name in fields_in(child)}


def search_ids(corpus: Corpus, entity: str, query: str) -> list[tuple[str, int]]:
    """(id, score) of every hit, best first (corpus order among equals). SearchError for a bad query."""
    if entity not in DEFAULT_FIELD:
        raise SearchError(f"{entity} is not searchable here")
    tree = parse_query(query, DEFAULT_FIELD[entity])
    fields_of = Fields(corpus, entity)
    fields_of.check(fields_in(tree))
    clauses = max(1, len(tree.all()))
    hits = []
    for mbid, doc in corpus.table(entity).items():
        hit, matched = matches(tree, fields_of(mbid, doc))
        if hit:
            hits.append((mbid, min(100, round(100 * matched / clauses))))
    hits.sort(key=lambda item: -item[1])
    return hits


def search_body(corpus: Corpus, entity: str, query: str, offset: int, limit: int) -> Doc:
    """``{"created", "count", "offset", "<entities>": [... with "score"]}``; SearchError for a bad query."""
    hits = search_ids(corpus, entity, query)
    renderer = Renderer(corpus, {"artist-credits", "isrcs"})
    items = [{"id": mbid, "score": score, **renderer.entity(entity, mbid)} for mbid, score in hits[offset:offset + limit]]
    created = datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.000Z")
    return {"created": created, "count": len(hits), "offset": offset, plural(entity): items}
