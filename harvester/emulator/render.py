"""WS/2 JSON bodies from a corpus: lookups, browse pages and ISRC lookups, shaped by ``inc``.

An entity is served with every field it was stored with, in its order,
except those an ``inc`` brings that the request did not ask for (``SHAPES``
and ``COMMON_GATES`` say which include brings which field, as the real
service's serializer does). Nothing else is added or dropped, so a real
body asked for with the includes it was fetched with comes back equal to
itself; a link held as an id (the generator's corpora) is expanded into the
linked entity's view.
"""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from harvester.emulator.corpus import LOOKUP_LIST_CAP, TRACKS_PER_RELEASE_PAGE, Corpus, Doc, ref

ANY_RELS = "*-rels"  # a gate any relationship include (artist-rels, url-rels, ...) opens
Gate = tuple[str, ...] | None  # the includes any one of which brings a field; None: always served

# Fields every entity type gets only when asked: the supplementary data and relationships.
COMMON_GATES: dict[str, Gate] = {
    "aliases": ("aliases",), "tags": ("tags",), "genres": ("genres",), "user-tags": ("user-tags",),
    "user-genres": ("user-genres",), "rating": ("ratings",), "user-rating": ("user-ratings",),
    "annotation": ("annotation",), "relations": (ANY_RELS,),
}
# For each shape, the fields an include brings and the shape of their value (None: served as stored).
SHAPES: dict[str, dict[str, tuple[Gate, str | None]]] = {
    "artist": {"recordings": (("recordings",), None), "releases": (("releases",), None),
               "release-groups": (("release-groups",), None), "works": (("works",), None)},
    "label": {"releases": (("releases",), None)},
    "recording": {"artist-credit": (("artist-credits",), "credit"), "isrcs": (("isrcs",), None),
                  "releases": (("releases",), None)},
    "release-group": {"artist-credit": (("artist-credits",), "credit"), "releases": (("releases",), None)},
    "release": {"artist-credit": (("artist-credits",), "credit"), "label-info": (("labels",), "label-info"),
                "release-group": (("release-groups",), "release-group"),
                "media": (("media", "recordings", "discids"), "media"), "collections": (("collections",), None)},
    "medium": {"tracks": (("recordings",), "tracks"), "track-offset": (("recordings",), None),
               "pregap": (("recordings",), "track"), "discs": (("discids",), None)},
    "track": {"artist-credit": (("artist-credits",), "credit"), "recording": (None, "recording")},
    "credit": {"artist": (None, "credited-artist")},
    "label-info": {"label": (None, "label-of-info")},
}
# What the service shows of an artist inside a credit and of a label inside a label-info,
# for links held as ids (a nested view from a real body is served as it came).
LINKED_VIEW_KEYS: dict[str, tuple[str, tuple[str, ...]]] = {
    "credited-artist": ("artist", ("id", "name", "sort-name", "type", "type-id", "disambiguation", "country")),
    "label-of-info": ("label", ("id", "name", "sort-name", "type", "type-id", "label-code", "disambiguation")),
}
# Lists a lookup computes from the corpus when asked for and not stored: (owner, include) -> (entity, index).
LOOKUP_LISTS: dict[tuple[str, str], tuple[str, str]] = {
    ("artist", "recordings"): ("recording", "recordings_by_artist"),
    ("artist", "releases"): ("release", "releases_by_artist"),
    ("artist", "release-groups"): ("release-group", "release_groups_by_artist"),
    ("label", "releases"): ("release", "releases_by_label"),
    ("release-group", "releases"): ("release", "releases_by_release_group"),
    ("recording", "releases"): ("release", "releases_by_recording"),
}


# List-valued shapes and the shape of their items.
LIST_PARTS = {"credit": "credit", "label-info": "label-info", "media": "medium", "tracks": "track"}


def plural(entity: str) -> str:
    return entity + "s"


class Renderer:
    """Turns stored entities into WS/2 JSON bodies for a given set of includes.

    What each shape keeps is worked out once per renderer, and a linked
    entity held as an id is rendered once per renderer (a page repeats the
    same artists and recordings many times): a renderer serves one answer."""

    def __init__(self, corpus: Corpus, includes: Iterable[str]):
        self.corpus = corpus
        includes = frozenset(includes)
        # "artists" is the older name of "artist-credits" (still the ISRC resource's)
        self.inc = includes | {"artist-credits"} if "artists" in includes else includes
        self.relationships = any(inc.endswith("-rels") for inc in self.inc)
        self.plans: dict[str, tuple[frozenset[str], dict[str, str]]] = {}
        self.linked: dict[tuple[str, str], Doc] = {}

    def asked(self, gate: Gate) -> bool:
        return gate is None or any(inc in self.inc or (inc == ANY_RELS and self.relationships) for inc in gate)

    def plan(self, shape: str) -> tuple[frozenset[str], dict[str, str]]:
        """(the fields left out, the fields whose value has a shape of its own) for a shape."""
        if shape not in self.plans:
            rules = SHAPES.get(shape, {})
            gates = {**COMMON_GATES, **{key: gate for key, (gate, _) in rules.items()}}
            dropped = frozenset(key for key, gate in gates.items() if not self.asked(gate))
            self.plans[shape] = dropped, {key: value_shape for key, (_, value_shape) in rules.items()
                                          if value_shape and key not in dropped}
        return self.plans[shape]

    def entity(self, entity: str, mbid: str) -> Doc:
        return self.shaped(entity, self.corpus.table(entity)[mbid])

    def shaped(self, shape: str, doc: Mapping[str, Any]) -> Doc:
        """The fields of doc the includes ask for, in doc's order, each value rendered by its shape."""
        dropped, value_shapes = self.plan(shape)
        body = {key: value for key, value in doc.items() if key not in dropped}
        for key, value_shape in value_shapes.items():
            if key in body:  # replaced in place: the field keeps its position
                body[key] = self.value(value_shape, body[key])
        return body

    def value(self, shape: str, value: Any) -> Any:
        """A field's value: a list of parts, a nested view, or a link held as an id (expanded).
        (Bodies are parsed JSON: ``dict`` checks, several times faster than ``Mapping``'s.)"""
        if shape in LIST_PARTS:
            if not isinstance(value, list):
                return value
            part = LIST_PARTS[shape]
            return [self.shaped(part, item) if isinstance(item, dict) else item for item in value]
        if isinstance(value, dict):
            return self.shaped(LINKED_VIEW_KEYS[shape][0] if shape in LINKED_VIEW_KEYS else shape, value)
        if isinstance(value, str):
            key = (shape, value)
            if key not in self.linked:
                if shape in LINKED_VIEW_KEYS:
                    entity, keys = LINKED_VIEW_KEYS[shape]
                    stored = self.corpus.table(entity)[value]
                    self.linked[key] = self.shaped(entity, {k: stored[k] for k in keys if k in stored})
                else:
                    self.linked[key] = self.entity(shape, value)
            return self.linked[key]
        return value


def lookup_body(corpus: Corpus, entity: str, mbid: str, includes: Iterable[str]) -> Doc | None:
    """A lookup response for an id in the corpus (a merged id is the caller's business), or None.

    Linked lists asked for with inc= and not stored are computed from the
    corpus and capped at 25, as on the real service."""
    if mbid not in corpus.table(entity):
        return None
    renderer = Renderer(corpus, includes)
    body = renderer.entity(entity, mbid)
    plain = Renderer(corpus, renderer.inc & {"artist-credits"})
    for (owner, inc), (target, index_name) in LOOKUP_LISTS.items():
        if owner == entity and inc in renderer.inc and plural(target) not in body:
            ids = getattr(corpus.index, index_name).get(mbid, [])[:LOOKUP_LIST_CAP]
            body[plural(target)] = [plain.entity(target, i) for i in ids]
    return body


BROWSE_LINKS: dict[str, dict[str, str]] = {
    "recording": {"artist": "recordings_by_artist", "release": "recordings_by_release"},
    "release": {"artist": "releases_by_artist", "label": "releases_by_label",
                "recording": "releases_by_recording", "release-group": "releases_by_release_group"},
    "release-group": {"artist": "release_groups_by_artist", "release": "release_groups_by_release"},
}


def release_matches(corpus: Corpus, release_id: str, types: frozenset[str], statuses: frozenset[str]) -> bool:
    release = corpus.releases[release_id]
    if statuses and (release.get("status") or "").lower() not in statuses:
        return False
    if types:
        group = corpus.release_groups.get(ref(release.get("release-group")) or "", {})
        if not group_types(group) & types:
            return False
    return True


def group_types(group: Mapping[str, Any]) -> set[str]:
    """A release group's primary and secondary types, lower-cased as the type= filter spells them."""
    return {(group.get("primary-type") or "").lower()} | {t.lower() for t in group.get("secondary-types") or ()}


def browse_ids(corpus: Corpus, entity: str, linked: str, mbid: str,
               types: frozenset[str] = frozenset(), statuses: frozenset[str] = frozenset()) -> list[str] | None:
    """Every id a browse would page through, in browse order, or None when the linked entity is
    unknown. An old (merged) MBID browses as its survivor, as on the real service."""
    found = corpus.resolve(linked, mbid)
    if found is None:
        return None
    ids = getattr(corpus.index, BROWSE_LINKS[entity][linked]).get(found, [])
    if entity == "release" and (types or statuses):
        ids = [i for i in ids if release_matches(corpus, i, types, statuses)]
    if entity == "release-group" and types:
        ids = [i for i in ids if group_types(corpus.release_groups[i]) & types]
    return ids


def cut_to_track_budget(ids: list[str], track_counts: Mapping[str, int], budget: int) -> list[str]:
    """The leading releases whose tracks fit the budget: at least one, never a partial release."""
    page: list[str] = []
    total = 0
    for release_id in ids:
        total += track_counts.get(release_id, 0)
        if page and total > budget:
            break
        page.append(release_id)
    return page


def browse_body(corpus: Corpus, entity: str, ids: list[str], offset: int, limit: int,
                includes: Iterable[str]) -> Doc:
    """One browse page: ``<entity>-count``, ``<entity>-offset`` and the items, sorted by MBID.

    The page is the window [offset, offset + limit) of the browse order;
    release pages with inc=recordings hold at most 500 tracks, as on the
    real service, so callers must advance offset by the items actually
    returned. Within the page the service sorts items by MBID."""
    includes = frozenset(includes)
    page = ids[offset:offset + limit]
    if entity == "release" and "recordings" in includes:
        page = cut_to_track_budget(page, corpus.index.track_counts, TRACKS_PER_RELEASE_PAGE)
    renderer = Renderer(corpus, includes)
    return {
        f"{entity}-count": len(ids),
        f"{entity}-offset": offset,
        plural(entity): [renderer.entity(entity, i) for i in sorted(page)],
    }


def isrc_body(corpus: Corpus, code: str, includes: Iterable[str]) -> Doc | None:
    """``{"isrc", "recordings"}`` for an ISRC, or None when no recording carries it."""
    ids = corpus.index.recordings_by_isrc.get(code)
    if not ids:
        return None
    renderer = Renderer(corpus, includes)
    return {"isrc": code, "recordings": [renderer.entity("recording", i) for i in ids]}
