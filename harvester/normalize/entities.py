"""The entity walkers: one method per entity type walks a document and
everything nested in it (a release's media, tracks, recordings, ISRCs,
labels, release group and artist credits) into a Normalized."""

from __future__ import annotations

from typing import Any

from harvester.normalize.fields import (
    life_span, normalize_isrc, pick, read_bool, read_code, read_date, read_dict, read_id, read_int, read_list,
    read_text,
)
from harvester.normalize.normalized import Normalized
from harvester.normalize.supplementary import supplementary_rows


class Walker:
    """Walks one document; collects into a Normalized."""

    def __init__(self, supplementary: bool):
        self.supplementary = supplementary
        self.out = Normalized()

    # -- shared pieces --

    def supplementary_rows(self, entity_type: str, entity_id: str, doc: dict) -> None:
        if self.supplementary:
            supplementary_rows(self.out, entity_type, entity_id, doc)

    def artist_credit(self, entity_type: str, entity_id: str, credit: Any) -> str:
        """Credit rows for an entity; returns the credit as printed."""
        self.out.clear_children("artist_credit_name", entity_type=entity_type, entity_id=entity_id)
        printed = []
        for position, item in enumerate(read_list(credit, "artist-credit")):
            item = read_dict(item, "artist-credit[]") or {}
            artist = read_dict(item.get("artist"), "artist-credit[].artist") or {}
            name = read_text(item.get("name"), "artist-credit[].name")
            if name is None:
                name = read_text(artist.get("name"), "artist-credit[].artist.name") or ""
            join_phrase = read_text(item.get("joinphrase"), "artist-credit[].joinphrase") or ""
            printed.append(name + join_phrase)
            artist_id = self.artist(artist) if artist.get("id") else None
            self.out.add("artist_credit_name", {"entity_type": entity_type, "entity_id": entity_id,
                                                "position": position, "artist_id": artist_id,
                                                "name": name, "join_phrase": join_phrase})
        return "".join(printed)

    def credit_column(self, entity_type: str, entity_id: str, doc: dict, row: dict) -> None:
        if "artist-credit" in doc:
            row["artist_credit"] = self.artist_credit(entity_type, entity_id, doc["artist-credit"])

    def nested(self, doc: dict, key: str, walk, **kwargs) -> None:
        """Walk a nested list; an item without an id cannot be keyed and is passed over."""
        for item in read_list(doc.get(key), key):
            item = read_dict(item, f"{key}[]")
            if item and item.get("id") is not None:
                walk(item, **kwargs)

    # -- entities --

    def artist(self, doc: dict) -> str:
        artist_id = read_id(doc, "artist")
        row = {"id": artist_id, **pick(doc, (
            ("name", "name", read_text), ("sort_name", "sort-name", read_text), ("type", "type", read_text),
            ("country", "country", read_text), ("disambiguation", "disambiguation", read_text),
            ("gender", "gender", read_text)))}
        row.update(life_span(doc))
        self.out.add("artist", row)
        self.supplementary_rows("artist", artist_id, doc)
        self.nested(doc, "release-groups", self.release_group)
        self.nested(doc, "releases", self.release)
        self.nested(doc, "recordings", self.recording)
        return artist_id

    def label(self, doc: dict) -> str:
        label_id = read_id(doc, "label")
        row = {"id": label_id, **pick(doc, (
            ("name", "name", read_text), ("sort_name", "sort-name", read_text), ("type", "type", read_text),
            ("country", "country", read_text), ("label_code", "label-code", read_code),
            ("disambiguation", "disambiguation", read_text)))}
        row.update(life_span(doc))
        self.out.add("label", row)
        self.supplementary_rows("label", label_id, doc)
        self.nested(doc, "releases", self.release)
        return label_id

    def release_group(self, doc: dict) -> str:
        group_id = read_id(doc, "release-group")
        row = {"id": group_id, **pick(doc, (
            ("title", "title", read_text), ("primary_type", "primary-type", read_text),
            ("first_release_date", "first-release-date", read_date),
            ("disambiguation", "disambiguation", read_text)))}
        if "secondary-types" in doc:
            types = [read_text(t, "secondary-types[]") for t in read_list(doc["secondary-types"], "secondary-types")]
            row["secondary_types"] = "; ".join(t for t in types if t)
        self.credit_column("release_group", group_id, doc, row)
        self.out.add("release_group", row)
        self.supplementary_rows("release_group", group_id, doc)
        self.nested(doc, "releases", self.release, release_group_id=group_id)
        return group_id

    def release(self, doc: dict, release_group_id: str | None = None, recording_id: str | None = None) -> str:
        """recording_id set: the release sits inside that recording, so its
        media hold only that recording's track and must not replace."""
        release_id = read_id(doc, "release")
        row = {"id": release_id, **pick(doc, (
            ("title", "title", read_text), ("status", "status", read_text), ("date", "date", read_date),
            ("country", "country", read_text), ("barcode", "barcode", read_text),
            ("disambiguation", "disambiguation", read_text), ("packaging", "packaging", read_text)))}
        group = read_dict(doc.get("release-group"), "release-group")
        if group is not None and group.get("id"):
            row["release_group_id"] = self.release_group(group)
        elif release_group_id is not None:
            row["release_group_id"] = release_group_id
        self.credit_column("release", release_id, doc, row)
        self.out.add("release", row)
        self.supplementary_rows("release", release_id, doc)
        if "label-info" in doc:
            self.label_info(release_id, doc["label-info"])
        if "media" in doc:
            self.media(release_id, read_list(doc["media"], "media"), recording_id)
        return release_id

    def label_info(self, release_id: str, label_info: Any) -> None:
        self.out.clear_children("release_label", release_id=release_id)
        for item in read_list(label_info, "label-info"):
            item = read_dict(item, "label-info[]") or {}
            label = read_dict(item.get("label"), "label-info[].label")
            label_id = self.label(label) if label and label.get("id") else ""
            catalog_number = read_text(item.get("catalog-number"), "label-info[].catalog-number") or ""
            self.out.add("release_label", {"release_id": release_id, "label_id": label_id,
                                           "catalog_number": catalog_number})

    def media(self, release_id: str, media: list, recording_id: str | None) -> None:
        complete = recording_id is None
        with_tracks = complete and any(isinstance(m, dict) and ("tracks" in m or "track" in m) for m in media)
        if complete:
            self.out.clear_children("medium", release_id=release_id)
        if with_tracks:
            self.out.clear_children("track", release_id=release_id)
        for index, medium in enumerate(media):
            medium = read_dict(medium, "media[]") or {}
            position = read_int(medium.get("position"), "media[].position")
            if position is None:
                position = index + 1
            row = {"release_id": release_id, "position": position, **pick(medium, (
                ("format", "format", read_text), ("track_count", "track-count", read_int),
                ("title", "title", read_text)))}
            self.out.add("medium", row)
            tracks = []
            if "pregap" in medium:
                tracks.append(medium["pregap"])
            tracks += read_list(medium.get("tracks", medium.get("track")), "media[].tracks")
            tracks += read_list(medium.get("data-tracks"), "media[].data-tracks")
            for track in tracks:
                self.track(release_id, position, read_dict(track, "media[].tracks[]") or {}, recording_id)

    def track(self, release_id: str, medium_position: int, doc: dict, recording_id: str | None) -> None:
        if not doc.get("id"):
            return  # fragments without a track MBID cannot be keyed
        track_id = read_id(doc, "track")
        row = {"id": track_id, "release_id": release_id, "medium_position": medium_position, **pick(doc, (
            ("position", "position", read_int), ("number", "number", read_text), ("title", "title", read_text),
            ("length_ms", "length", read_int)))}
        recording = read_dict(doc.get("recording"), "track.recording")
        if recording is not None and recording.get("id"):
            row["recording_id"] = self.recording(recording)
        elif recording_id is not None:
            row["recording_id"] = recording_id
        self.credit_column("track", track_id, doc, row)
        self.out.add("track", row)

    def recording(self, doc: dict) -> str:
        recording_id = read_id(doc, "recording")
        row = {"id": recording_id, **pick(doc, (
            ("title", "title", read_text), ("length_ms", "length", read_int),
            ("first_release_date", "first-release-date", read_date), ("video", "video", read_bool),
            ("disambiguation", "disambiguation", read_text)))}
        self.credit_column("recording", recording_id, doc, row)
        self.out.add("recording", row)
        self.supplementary_rows("recording", recording_id, doc)
        if "isrcs" in doc:
            self.isrcs(recording_id, read_list(doc["isrcs"], "isrcs"))
        self.nested(doc, "releases", self.release, recording_id=recording_id)
        return recording_id

    def isrcs(self, recording_id: str, codes: list) -> None:
        self.out.clear_children("recording_isrc", recording_id=recording_id)
        seen = set()
        for raw in codes:
            if isinstance(raw, dict):  # {"id": "..."} in some client-made JSON
                raw = raw.get("id")
            code = normalize_isrc(raw)
            if code is None:
                self.out.invalid_isrcs.append((recording_id, str(raw)[:40]))
            elif code not in seen:
                seen.add(code)
                self.out.add("recording_isrc", {"recording_id": recording_id, "isrc": code})


WALKS = {
    "artist": Walker.artist, "label": Walker.label, "release-group": Walker.release_group,
    "release": Walker.release, "recording": Walker.recording,
}
