"""WS/2 JSON bodies from a corpus: lookups, browse pages and ISRC lookups, shaped by ``inc``."""

from __future__ import annotations

from typing import Any, Iterable, Mapping

from harvester.emulator.corpus import (
    LOOKUP_LIST_CAP, RECORDING_KEYS, RELEASE_GROUP_KEYS, RELEASE_KEYS, TRACKS_PER_RELEASE_PAGE, Corpus, Doc, _pick,
)

class Renderer:
    """Turns stored entities into WS/2 JSON bodies for a given set of includes."""

    def __init__(self, corpus: Corpus, includes: Iterable[str]):
        self.corpus = corpus
        self.inc = frozenset(includes)

    def credit(self, credit: list[Doc]) -> list[Doc]:
        return [
            {"name": part["name"], "joinphrase": part["joinphrase"],
             "artist": _pick(self.corpus.artists[part["artist"]], ("id", "name", "sort-name", "type",
                                                                   "disambiguation"))}
            for part in credit
        ]

    def artist(self, artist_id: str) -> Doc:
        return dict(self.corpus.artists[artist_id])

    def label(self, label_id: str) -> Doc:
        return dict(self.corpus.labels[label_id])

    def release_group(self, rgid: str) -> Doc:
        stored = self.corpus.release_groups[rgid]
        body = _pick(stored, RELEASE_GROUP_KEYS)
        if "artist-credits" in self.inc:
            body["artist-credit"] = self.credit(stored["artist-credit"])
        return body

    def recording(self, rid: str) -> Doc:
        stored = self.corpus.recordings[rid]
        body = _pick(stored, RECORDING_KEYS)
        if "isrcs" in self.inc:
            body["isrcs"] = list(stored.get("isrcs", ()))
        if "artist-credits" in self.inc:
            body["artist-credit"] = self.credit(stored["artist-credit"])
        return body

    def release(self, release_id: str) -> Doc:
        stored = self.corpus.releases[release_id]
        body = _pick(stored, RELEASE_KEYS)
        if "artist-credits" in self.inc:
            body["artist-credit"] = self.credit(stored["artist-credit"])
        if "release-groups" in self.inc and stored.get("release-group"):
            body["release-group"] = self.release_group(stored["release-group"])
        if "labels" in self.inc:
            body["label-info"] = [
                {"catalog-number": info["catalog-number"],
                 "label": self.label(info["label"]) if info["label"] else None}
                for info in stored["label-info"]
            ]
        if "media" in self.inc or "recordings" in self.inc:
            body["media"] = [self.medium(medium) for medium in stored["media"]]
        return body

    def medium(self, stored: Doc) -> Doc:
        body = {**_pick(stored, ("position", "format", "title")), "track-count": len(stored["tracks"])}
        if "recordings" in self.inc:
            body["track-offset"] = 0
            body["tracks"] = [
                {**_pick(track, ("id", "number", "position", "title", "length")),
                 "recording": self.recording(track["recording"])}
                for track in stored["tracks"]
            ]
        return body

    def entity(self, entity: str, mbid: str) -> Doc:
        return {
            "artist": self.artist,
            "label": self.label,
            "release-group": self.release_group,
            "release": self.release,
            "recording": self.recording,
        }[entity](mbid)


def plural(entity: str) -> str:
    return entity + "s"


def lookup_body(corpus: Corpus, entity: str, mbid: str, includes: Iterable[str]) -> Doc | None:
    """A lookup response, or None when the id (after redirects) is unknown.

    Linked lists asked for with inc= are capped at 25, as on the real service."""
    found = corpus.resolve(entity, mbid)
    if found is None:
        return None
    includes = frozenset(includes)
    renderer = Renderer(corpus, includes)
    body = renderer.entity(entity, found)
    index = corpus.index
    linked = {
        ("artist", "recordings"): ("recording", index.recordings_by_artist),
        ("artist", "releases"): ("release", index.releases_by_artist),
        ("artist", "release-groups"): ("release-group", index.release_groups_by_artist),
        ("label", "releases"): ("release", index.releases_by_label),
        ("release-group", "releases"): ("release", index.releases_by_release_group),
        ("recording", "releases"): ("release", index.releases_by_recording),
    }
    plain = Renderer(corpus, includes & {"artist-credits"})
    for (owner, inc), (target, mapping) in linked.items():
        if owner == entity and inc in includes:
            body[plural(target)] = [plain.entity(target, i) for i in mapping.get(found, [])[:LOOKUP_LIST_CAP]]
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
        group = corpus.release_groups.get(release.get("release-group") or "", {})
        if not group_types(group) & types:
            return False
    return True


def group_types(group: Mapping[str, Any]) -> set[str]:
    """A release group's primary and secondary types, lower-cased as the type= filter spells them."""
    return {(group.get("primary-type") or "").lower()} | {t.lower() for t in group.get("secondary-types") or ()}


def browse_ids(corpus: Corpus, entity: str, linked: str, mbid: str,
               types: frozenset[str] = frozenset(), statuses: frozenset[str] = frozenset()) -> list[str] | None:
    """Every id a browse would page through, or None when the linked entity is unknown."""
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
    """One browse page: ``<entity>-count``, ``<entity>-offset`` and the items.

    Release pages with inc=recordings hold at most 500 tracks, as on the real
    service, so callers must advance offset by the items actually returned."""
    includes = frozenset(includes)
    page = ids[offset:offset + limit]
    if entity == "release" and "recordings" in includes:
        page = cut_to_track_budget(page, corpus.index.track_counts, TRACKS_PER_RELEASE_PAGE)
    renderer = Renderer(corpus, includes)
    return {
        f"{entity}-count": len(ids),
        f"{entity}-offset": offset,
        plural(entity): [renderer.entity(entity, i) for i in page],
    }


def isrc_body(corpus: Corpus, code: str, includes: Iterable[str]) -> Doc | None:
    """``{"isrc", "recordings"}`` for an ISRC, or None when no recording carries it."""
    ids = corpus.index.recordings_by_isrc.get(code)
    if not ids:
        return None
    includes = frozenset(includes)
    renderer = Renderer(corpus, includes | {"artist-credits"} if "artists" in includes else includes)
    return {"isrc": code, "recordings": [renderer.recording(i) for i in ids]}
