"""The emulator's data: entities stored once, every field as it came, linked by id.

Nothing is whitelisted: an entity keeps every field of the body it came
from, and rendering (``render.py``) only leaves out what the request's
``inc`` does not ask for, the way the real service does. A link to another
entity (a credit's ``artist``, a release's ``release-group``, a label-info's
``label``, a track's ``recording``) holds either that entity's id, expanded
from its table when rendered (the generator's way), or the very nested view
a real body carried, served as it came. Either way the linked entity is also
in its own table, so it can be looked up and browsed. A corpus is filled once
(from real lookup bodies or by the generator) and then only read, so the
indexes are computed on first use.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import TYPE_CHECKING, Any, Iterable, Iterator, Mapping

if TYPE_CHECKING:  # importlib.resources.abc is 3.11+; annotations only
    from importlib.resources.abc import Traversable

ENTITIES = ("artist", "label", "release-group", "release", "recording")
MBID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISRC_RE = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")
LOOKUP_LIST_CAP = 25  # linked lists inside a lookup are capped like the real service's
TRACKS_PER_RELEASE_PAGE = 500
LABEL_TYPES = {"Original Production", "Bootleg Production", "Reissue Production", "Production", "Imprint",
               "Distributor", "Holding", "Rights Society", "Publisher", "Manufacturer"}

Doc = dict[str, Any]


def ref(link: Any) -> str | None:
    """The id a link holds: the link itself (an id) or its ``id`` (a nested view); None for anything else."""
    if isinstance(link, str):
        return link
    if isinstance(link, Mapping) and isinstance(link.get("id"), str):
        return link["id"]
    return None


def credited_artists(credit: Any) -> list[str]:
    """The artist ids of an artist credit, in credit order, without repeats."""
    found: dict[str, None] = {}
    for part in credit if isinstance(credit, list) else ():
        artist = ref(part.get("artist")) if isinstance(part, Mapping) else None
        if artist:
            found[artist] = None
    return list(found)


def medium_tracks(medium: Any) -> list[Mapping[str, Any]]:
    tracks = medium.get("tracks") if isinstance(medium, Mapping) else None
    return [track for track in tracks or () if isinstance(track, Mapping)]


def track_count(medium: Any) -> int:
    """A medium's tracks: those listed, else its ``track-count`` (a body fetched with inc=media only)."""
    listed = len(medium_tracks(medium))
    declared = medium.get("track-count") if isinstance(medium, Mapping) else None
    return listed or (declared if isinstance(declared, int) else 0)


def guess_entity(doc: Mapping[str, Any]) -> str:
    """Which entity a lookup body describes, from the keys only that entity has."""
    if "media" in doc or "label-info" in doc or "release-events" in doc or "status" in doc:
        return "release"
    if "primary-type" in doc or "secondary-types" in doc:
        return "release-group"
    if "video" in doc or "isrcs" in doc or ("length" in doc and "title" in doc):
        return "recording"
    if "label-code" in doc or doc.get("type") in LABEL_TYPES:
        return "label"
    if "name" in doc:
        return "artist"
    raise ValueError(f"cannot tell which entity this document is (keys: {sorted(doc)[:8]})")


def documents_in_folder(folder: "Traversable") -> Iterator[tuple[str, Doc]]:
    """(entity type, body) for every WS/2 lookup body (``*.json`` with an ``id``) in a folder and its
    subfolders, in path order. Other JSON (search results, browse pages, errors) is passed over.

    Takes a ``Path`` or an ``importlib.resources`` folder (an installed wheel's data)."""
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.is_dir():
            yield from documents_in_folder(entry)
        elif entry.name.endswith(".json"):
            body = json.loads(entry.read_text(encoding="utf-8"))
            if isinstance(body, dict) and isinstance(body.get("id"), str):
                yield guess_entity(body), body


@dataclass
class Corpus:
    """Entities by id, merged (redirected) ids per entity type, and which
    entities are stored from a whole lookup body (nested views never change those)."""

    artists: dict[str, Doc] = field(default_factory=dict)
    labels: dict[str, Doc] = field(default_factory=dict)
    release_groups: dict[str, Doc] = field(default_factory=dict)
    releases: dict[str, Doc] = field(default_factory=dict)
    recordings: dict[str, Doc] = field(default_factory=dict)
    redirects: dict[str, dict[str, str]] = field(default_factory=lambda: {e: {} for e in ENTITIES})
    whole: set[tuple[str, str]] = field(default_factory=set)

    def table(self, entity: str) -> dict[str, Doc]:
        return {
            "artist": self.artists,
            "label": self.labels,
            "release-group": self.release_groups,
            "release": self.releases,
            "recording": self.recordings,
        }[entity]

    # ---- building -------------------------------------------------------

    @classmethod
    def from_documents(
        cls,
        documents: Iterable[Mapping[str, Any] | tuple[str, Mapping[str, Any]]],
        redirects: Mapping[str, Mapping[str, str]] | None = None,
    ) -> "Corpus":
        """A corpus from real WS/2 lookup bodies (dicts, or (entity, dict) pairs).

        A release contributes itself, its release group, tracks, recordings,
        the artists of every credit and the labels of its label-info; other
        lookups contribute themselves and their credits' artists."""
        corpus = cls()
        for item in documents:
            entity, doc = item if isinstance(item, tuple) else (guess_entity(item), item)
            corpus.add_document(entity, doc)
        for entity, mapping in (redirects or {}).items():
            corpus.redirects.setdefault(entity, {}).update(mapping)
        return corpus

    def add_document(self, entity: str, doc: Mapping[str, Any]) -> None:
        """Store a whole lookup body (a copy, every field) and the entities nested in it."""
        if entity not in ENTITIES:
            raise ValueError(f"unknown entity type {entity!r} (known: {', '.join(ENTITIES)})")
        doc = copy.deepcopy(dict(doc))
        if self._store(entity, doc, whole=True) is None:
            raise ValueError(f"a {entity} body without an id")
        self._credit(doc.get("artist-credit"))
        if entity != "release":
            return
        group = doc.get("release-group")
        if isinstance(group, Mapping):
            self._store("release-group", group)
            self._credit(group.get("artist-credit"))
        for info in doc.get("label-info") or ():
            if isinstance(info, Mapping) and isinstance(info.get("label"), Mapping):
                self._store("label", info["label"])
        for medium in doc.get("media") or ():
            for track in medium_tracks(medium):
                self._track(track, doc)

    def _store(self, entity: str, view: Mapping[str, Any], *, whole: bool = False) -> str | None:
        """Keep a view of an entity; a whole body replaces what nested views left, a nested
        view only adds the fields not known yet. Returns the id (None: the view has none)."""
        mbid = ref(view)
        if mbid is None:
            return None
        table = self.table(entity)
        if whole:
            table[mbid] = dict(view)
            self.whole.add((entity, mbid))
        elif (entity, mbid) not in self.whole:
            stored = table.setdefault(mbid, {})
            for key, value in view.items():
                stored.setdefault(key, value)
        return mbid

    def _credit(self, credit: Any) -> None:
        for part in credit if isinstance(credit, list) else ():
            if isinstance(part, Mapping) and isinstance(part.get("artist"), Mapping):
                self._store("artist", part["artist"])

    def _track(self, track: Mapping[str, Any], release: Mapping[str, Any]) -> None:
        self._credit(track.get("artist-credit"))
        recording = track.get("recording")
        if not isinstance(recording, Mapping):
            return
        recording_id = self._store("recording", recording)
        self._credit(recording.get("artist-credit"))
        if recording_id is None or ("recording", recording_id) in self.whole:
            return
        stored = self.recordings[recording_id]
        if not stored.get("artist-credit"):  # seen without its credit: credited as its track, else its release
            credit = track.get("artist-credit") or release.get("artist-credit")
            if credit:
                stored["artist-credit"] = credit

    # ---- indexes ----------------------------------------------------------

    @cached_property
    def index(self) -> "CorpusIndex":
        return CorpusIndex.build(self)

    def resolve(self, entity: str, mbid: str) -> str | None:
        """The id that answers for mbid (itself, or the survivor of a merge), or None."""
        mbid = self.redirects.get(entity, {}).get(mbid, mbid)
        return mbid if mbid in self.table(entity) else None

    def survivor(self, entity: str, mbid: str) -> str | None:
        """The id mbid was merged into (None when it was not merged)."""
        return self.redirects.get(entity, {}).get(mbid)


@dataclass
class CorpusIndex:
    """Which entities link to which, in corpus order (the order browse pages use)."""

    recordings_by_artist: dict[str, list[str]]
    recordings_by_release: dict[str, list[str]]
    releases_by_artist: dict[str, list[str]]
    releases_by_label: dict[str, list[str]]
    releases_by_recording: dict[str, list[str]]
    releases_by_release_group: dict[str, list[str]]
    release_groups_by_artist: dict[str, list[str]]
    release_groups_by_release: dict[str, list[str]]
    recordings_by_isrc: dict[str, list[str]]
    track_counts: dict[str, int]

    @classmethod
    def build(cls, corpus: Corpus) -> "CorpusIndex":
        links: dict[str, dict[str, dict[str, None]]] = {}  # index name -> key -> ordered set of ids

        def add(name: str, key: str | None, value: str) -> None:
            if key:
                links.setdefault(name, {}).setdefault(key, {})[value] = None

        track_counts: dict[str, int] = {}
        for rid, recording in corpus.recordings.items():
            for artist in credited_artists(recording.get("artist-credit")):
                add("recordings_by_artist", artist, rid)
            for code in recording.get("isrcs") or ():
                add("recordings_by_isrc", code if isinstance(code, str) else None, rid)
        for rgid, group in corpus.release_groups.items():
            for artist in credited_artists(group.get("artist-credit")):
                add("release_groups_by_artist", artist, rgid)
        for release_id, release in corpus.releases.items():
            for artist in credited_artists(release.get("artist-credit")):
                add("releases_by_artist", artist, release_id)
            for info in release.get("label-info") or ():
                if isinstance(info, Mapping):
                    add("releases_by_label", ref(info.get("label")), release_id)
            group_id = ref(release.get("release-group"))
            if group_id:
                add("releases_by_release_group", group_id, release_id)
                add("release_groups_by_release", release_id, group_id)
            media = release.get("media") or ()
            for medium in media:
                for track in medium_tracks(medium):
                    recording_id = ref(track.get("recording"))
                    if recording_id:
                        add("recordings_by_release", release_id, recording_id)
                        add("releases_by_recording", recording_id, release_id)
            track_counts[release_id] = sum(track_count(medium) for medium in media)
        names = [f.name for f in fields(cls) if f.name != "track_counts"]
        return cls(**{name: {key: list(ids) for key, ids in links.get(name, {}).items()} for name in names},
                   track_counts=track_counts)
