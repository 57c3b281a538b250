"""The emulator's data: entities stored once, linked by id, rendered as WS/2 JSON.

Entities are kept in WS/2's own shape (hyphenated keys) except that links
hold ids (a credit's ``artist``, a release's ``release-group``, a label-info's
``label``, a track's ``recording``); rendering expands them according to the
``inc`` parameters, the way the real service does. A corpus is filled once
(from real lookup bodies or by the generator) and then only read, so the
indexes are computed on first use.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from functools import cached_property
from typing import Any, Iterable, Mapping

ENTITIES = ("artist", "label", "release-group", "release", "recording")
MBID_RE = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
ISRC_RE = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")
LOOKUP_LIST_CAP = 25  # linked lists inside a lookup are capped like the real service's
TRACKS_PER_RELEASE_PAGE = 500

ARTIST_KEYS = ("id", "name", "sort-name", "type", "country", "disambiguation")
LABEL_KEYS = ("id", "name", "sort-name", "type", "country", "label-code", "disambiguation")
RELEASE_GROUP_KEYS = ("id", "title", "primary-type", "secondary-types", "first-release-date", "disambiguation")
RELEASE_KEYS = ("id", "title", "status", "date", "country", "barcode", "disambiguation")
RECORDING_KEYS = ("id", "title", "length", "video", "disambiguation", "first-release-date")
LABEL_TYPES = {"Original Production", "Bootleg Production", "Reissue Production", "Production", "Imprint",
               "Distributor", "Holding", "Rights Society", "Publisher", "Manufacturer"}

Doc = dict[str, Any]


def _pick(doc: Mapping[str, Any], keys: Iterable[str]) -> Doc:
    return {key: doc[key] for key in keys if key in doc}


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


@dataclass
class Corpus:
    """Entities by id, plus merged (redirected) ids per entity type."""

    artists: dict[str, Doc] = field(default_factory=dict)
    labels: dict[str, Doc] = field(default_factory=dict)
    release_groups: dict[str, Doc] = field(default_factory=dict)
    releases: dict[str, Doc] = field(default_factory=dict)
    recordings: dict[str, Doc] = field(default_factory=dict)
    redirects: dict[str, dict[str, str]] = field(default_factory=lambda: {e: {} for e in ENTITIES})

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

        A release contributes itself, its release group, media, tracks,
        recordings (with ISRCs), the artists of its credits and the labels of
        its label-info; other lookups contribute themselves and their credits."""
        corpus = cls()
        for item in documents:
            entity, doc = item if isinstance(item, tuple) else (guess_entity(item), item)
            corpus.add_document(entity, doc)
        for entity, mapping in (redirects or {}).items():
            corpus.redirects.setdefault(entity, {}).update(mapping)
        return corpus

    def add_document(self, entity: str, doc: Mapping[str, Any]) -> None:
        add = {
            "artist": self._add_artist,
            "label": self._add_label,
            "release-group": self._add_release_group,
            "release": self._add_release,
            "recording": self._add_recording,
        }[entity]
        add(doc)

    def _add_artist(self, doc: Mapping[str, Any]) -> str:
        stored = self.artists.setdefault(doc["id"], {})
        stored.update(_pick(doc, ARTIST_KEYS))
        return doc["id"]

    def _add_label(self, doc: Mapping[str, Any]) -> str:
        stored = self.labels.setdefault(doc["id"], {})
        stored.update(_pick(doc, LABEL_KEYS))
        return doc["id"]

    def _credit(self, credit: Iterable[Mapping[str, Any]] | None) -> list[Doc]:
        return [
            {"name": part.get("name", ""), "joinphrase": part.get("joinphrase", ""),
             "artist": self._add_artist(part["artist"])}
            for part in credit or ()
        ]

    def _add_release_group(self, doc: Mapping[str, Any]) -> str:
        stored = self.release_groups.setdefault(doc["id"], {"artist-credit": []})
        stored.update(_pick(doc, RELEASE_GROUP_KEYS))
        if doc.get("artist-credit"):
            stored["artist-credit"] = self._credit(doc["artist-credit"])
        return doc["id"]

    def _add_recording(self, doc: Mapping[str, Any]) -> str:
        stored = self.recordings.setdefault(doc["id"], {"artist-credit": [], "isrcs": []})
        stored.update(_pick(doc, RECORDING_KEYS))
        if doc.get("artist-credit"):
            stored["artist-credit"] = self._credit(doc["artist-credit"])
        if doc.get("isrcs"):
            stored["isrcs"] = list(doc["isrcs"])
        return doc["id"]

    def _add_release(self, doc: Mapping[str, Any]) -> str:
        stored = self.releases.setdefault(doc["id"], {"artist-credit": [], "label-info": [], "media": []})
        stored.update(_pick(doc, RELEASE_KEYS))
        credit = self._credit(doc.get("artist-credit"))
        if credit:
            stored["artist-credit"] = credit
        if doc.get("release-group"):
            stored["release-group"] = self._add_release_group(doc["release-group"])
        if doc.get("label-info"):
            stored["label-info"] = [
                {"catalog-number": info.get("catalog-number"),
                 "label": self._add_label(info["label"]) if info.get("label") else None}
                for info in doc["label-info"]
            ]
        if doc.get("media"):
            stored["media"] = [self._medium(medium, credit) for medium in doc["media"]]
        return doc["id"]

    def _medium(self, medium: Mapping[str, Any], release_credit: list[Doc]) -> Doc:
        tracks = []
        for track in medium.get("tracks") or ():
            if not track.get("recording"):
                continue  # a track without its recording cannot be linked; the real service never sends one
            recording = dict(track["recording"])
            if not recording.get("artist-credit"):
                recording["artist-credit"] = track.get("artist-credit") or []
            recording_id = self._add_recording(recording)
            if not self.recordings[recording_id]["artist-credit"]:
                self.recordings[recording_id]["artist-credit"] = list(release_credit)
            tracks.append({**_pick(track, ("id", "number", "position", "title", "length")),
                           "recording": recording_id})
        return {**_pick(medium, ("position", "format", "title")), "tracks": tracks}

    # ---- indexes ----------------------------------------------------------

    @cached_property
    def index(self) -> "CorpusIndex":
        return CorpusIndex.build(self)

    def resolve(self, entity: str, mbid: str) -> str | None:
        """The id that answers for mbid (itself, or the survivor of a merge), or None."""
        mbid = self.redirects.get(entity, {}).get(mbid, mbid)
        return mbid if mbid in self.table(entity) else None


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

        def add(name: str, key: str, value: str) -> None:
            links.setdefault(name, {}).setdefault(key, {})[value] = None

        track_counts: dict[str, int] = {}
        for rid, recording in corpus.recordings.items():
            for artist in {part["artist"] for part in recording["artist-credit"]}:
                add("recordings_by_artist", artist, rid)
            for code in recording.get("isrcs", ()):
                add("recordings_by_isrc", code, rid)
        for rgid, group in corpus.release_groups.items():
            for artist in {part["artist"] for part in group["artist-credit"]}:
                add("release_groups_by_artist", artist, rgid)
        for release_id, release in corpus.releases.items():
            for artist in {part["artist"] for part in release["artist-credit"]}:
                add("releases_by_artist", artist, release_id)
            for info in release["label-info"]:
                if info["label"]:
                    add("releases_by_label", info["label"], release_id)
            if release.get("release-group"):
                add("releases_by_release_group", release["release-group"], release_id)
                add("release_groups_by_release", release_id, release["release-group"])
            for medium in release["media"]:
                for track in medium["tracks"]:
                    add("recordings_by_release", release_id, track["recording"])
                    add("releases_by_recording", track["recording"], release_id)
            track_counts[release_id] = sum(len(m["tracks"]) for m in release["media"])
        names = [f.name for f in fields(cls) if f.name != "track_counts"]
        return cls(**{name: {key: list(ids) for key, ids in links.get(name, {}).items()} for name in names},
                   track_counts=track_counts)
