"""The entity walkers: one method per entity type walks a document and
everything nested in it (a release's media, tracks, recordings, ISRCs,
labels, release group, release events and artist credits; any entity's
aliases and relationships, and the entities those point at) into a
Normalized.

An entity met only as a relationship's target (or as the area of an
artist, label, place or release event) is a partial view: the service
serializes it without loading its aliases or relationships (it prints `[]`
for what it did not load). Its rows are upserted, its child sets are never
replaced, its aliases are not taken."""

from __future__ import annotations

from typing import Any, Callable

import orjson

from harvester.normalize.aliases import alias_rows
from harvester.normalize.areas import area_row
from harvester.normalize.fields import (
    life_span, normalize_isrc, pick, read_bool, read_code, read_date, read_dict, read_float, read_id, read_int,
    read_list, read_text,
)
from harvester.normalize.normalized import Normalized
from harvester.normalize.relationships import relationship_row, relationship_sets, target_of, url_row
from harvester.normalize.supplementary import supplementary_rows
from harvester.normalize.works import normalize_iswc, work_row


class Walker:
    """Walks one document; collects into a Normalized."""

    def __init__(self, supplementary: bool, relation_types: frozenset[str] | None = None):
        self.supplementary = supplementary
        self.relation_types = relation_types
        self.complete = True  # False while walking a partial view (a relationship's target)
        self.walked: dict[tuple[str, str], bool] = {}  # (type, id) -> whether a whole view was walked
        self.out = Normalized()

    # -- shared pieces --

    def seen(self, entity_type: str, entity_id: str) -> bool:
        """Whether this document already gave this entity's rows: a whole view
        once (every copy of an entity in one document is the same: a dump
        line's artist comes whole in each of its dozens of credits), a
        partial view once until a whole one comes."""
        whole = self.walked.get((entity_type, entity_id))
        if whole or (whole is not None and not self.complete):
            return True
        self.walked[(entity_type, entity_id)] = self.complete
        return False

    def clear(self, table: str, **where: Any) -> None:
        """Name a child set the document carries in full (never from a partial view)."""
        if self.complete:
            self.out.clear_children(table, **where)

    def common(self, entity_type: str, entity_id: str, doc: dict) -> None:
        """What every entity type may carry: supplementary data, aliases, relationships."""
        if self.supplementary:
            supplementary_rows(self.out, entity_type, entity_id, doc)
        if "aliases" in doc and self.complete:
            self.clear("alias", entity_type=entity_type, entity_id=entity_id)
            for row in alias_rows(entity_type, entity_id, doc["aliases"]):
                self.out.add("alias", row)
        if "relations" in doc:
            self.relations(entity_type, entity_id, doc["relations"])

    def relations(self, owner_type: str, owner_id: str, relations: Any) -> None:
        if self.complete:
            for where in relationship_sets(owner_type, owner_id, self.relation_types):
                self.out.clear_children("relationship", **where)
        for item in read_list(relations, "relations"):
            item = read_dict(item, "relations[]")
            found = target_of(item) if item else None
            if found is None:
                continue  # no target with an id: nothing to key the relationship on
            target_type, target = found
            target_id = self.partial(target_type, target)
            self.out.add("relationship", relationship_row(owner_type, owner_id, target_type, target_id, item))

    def partial(self, entity_type: str, doc: dict) -> str:
        """Walk a partial view of an entity; returns its id."""
        walk = TARGET_WALKS.get(entity_type)
        if walk is None:  # a type without a table (genre): only its id
            return read_id(doc, entity_type)
        complete, self.complete = self.complete, False
        try:
            return walk(self, doc)
        finally:
            self.complete = complete

    def area_column(self, doc: dict, keys: tuple[str, ...], row: dict, column: str) -> None:
        """An area link (`area`, `begin-area` or its older spelling `begin_area`): its id in the row."""
        for key in keys:
            if key in doc:
                area = read_dict(doc[key], key)
                row[column] = self.partial("area", area) if area and area.get("id") else None
                return

    def artist_credit(self, entity_type: str, entity_id: str, credit: Any) -> str:
        """Credit rows for an entity; returns the credit as printed."""
        self.clear("artist_credit_name", entity_type=entity_type, entity_id=entity_id)
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
        items = doc.get(key)
        if not items:  # absent, null or empty: most documents
            return
        for item in read_list(items, key):
            item = read_dict(item, f"{key}[]")
            if item and item.get("id") is not None:
                walk(item, **kwargs)

    # -- entities --

    def artist(self, doc: dict) -> str:
        artist_id = read_id(doc, "artist")
        if self.seen("artist", artist_id):
            return artist_id
        row = {"id": artist_id, **pick(doc, (
            ("name", "name", read_text), ("sort_name", "sort-name", read_text), ("type", "type", read_text),
            ("country", "country", read_text), ("disambiguation", "disambiguation", read_text),
            ("gender", "gender", read_text)))}
        row.update(life_span(doc))
        self.area_column(doc, ("area",), row, "area_id")
        self.area_column(doc, ("begin-area", "begin_area"), row, "begin_area_id")
        self.area_column(doc, ("end-area", "end_area"), row, "end_area_id")
        self.out.add("artist", row)
        self.common("artist", artist_id, doc)
        self.nested(doc, "release-groups", self.release_group)
        self.nested(doc, "releases", self.release)
        self.nested(doc, "recordings", self.recording)
        # inc=works: a list capped at 25, whose ISWCs the service may not have loaded: partial views
        self.nested(doc, "works", lambda work: self.partial("work", work))
        return artist_id

    def label(self, doc: dict) -> str:
        label_id = read_id(doc, "label")
        if self.seen("label", label_id):
            return label_id
        row = {"id": label_id, **pick(doc, (
            ("name", "name", read_text), ("sort_name", "sort-name", read_text), ("type", "type", read_text),
            ("country", "country", read_text), ("label_code", "label-code", read_code),
            ("disambiguation", "disambiguation", read_text)))}
        row.update(life_span(doc))
        self.area_column(doc, ("area",), row, "area_id")
        self.out.add("label", row)
        self.common("label", label_id, doc)
        self.nested(doc, "releases", self.release)
        return label_id

    def release_group(self, doc: dict) -> str:
        group_id = read_id(doc, "release-group")
        if self.seen("release_group", group_id):
            return group_id
        row = {"id": group_id, **pick(doc, (
            ("title", "title", read_text), ("primary_type", "primary-type", read_text),
            ("first_release_date", "first-release-date", read_date),
            ("disambiguation", "disambiguation", read_text)))}
        if "secondary-types" in doc:
            types = [read_text(t, "secondary-types[]") for t in read_list(doc["secondary-types"], "secondary-types")]
            row["secondary_types"] = orjson.dumps([t for t in types if t]).decode()
        self.credit_column("release_group", group_id, doc, row)
        self.out.add("release_group", row)
        self.common("release_group", group_id, doc)
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
        text = read_dict(doc.get("text-representation"), "text-representation")
        if text is not None:
            row.update(pick(text, (("language", "language", read_text), ("script", "script", read_text))))
        self.credit_column("release", release_id, doc, row)
        self.out.add("release", row)
        self.common("release", release_id, doc)
        if "release-events" in doc:
            self.release_events(release_id, doc["release-events"])
        if "label-info" in doc:
            self.label_info(release_id, doc["label-info"])
        if "media" in doc:
            self.media(release_id, read_list(doc["media"], "media"), recording_id)
        return release_id

    def release_events(self, release_id: str, events: Any) -> None:
        """Every event of a release: where (an area, most often a country; NULL
        when the event names none) and when, in the document's order."""
        self.clear("release_event", release_id=release_id)
        for position, item in enumerate(read_list(events, "release-events")):
            item = read_dict(item, "release-events[]") or {}
            row = {"release_id": release_id, "position": position, "area_id": None,
                   "date": read_date(item.get("date"), "release-events[].date")}
            self.area_column(item, ("area",), row, "area_id")
            self.out.add("release_event", row)

    def label_info(self, release_id: str, label_info: Any) -> None:
        self.clear("release_label", release_id=release_id)
        for item in read_list(label_info, "label-info"):
            item = read_dict(item, "label-info[]") or {}
            label = read_dict(item.get("label"), "label-info[].label")
            label_id = self.label(label) if label and label.get("id") else None  # NULL: no label, not ''

            catalog_number = read_text(item.get("catalog-number"), "label-info[].catalog-number") or ""
            self.out.add("release_label", {"release_id": release_id, "label_id": label_id,
                                           "catalog_number": catalog_number})

    def media(self, release_id: str, media: list, recording_id: str | None) -> None:
        complete = recording_id is None
        with_tracks = complete and any(isinstance(m, dict) and ("tracks" in m or "track" in m) for m in media)
        if complete:
            self.clear("medium", release_id=release_id)
        if with_tracks:
            self.clear("track", release_id=release_id)
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
        if self.seen("recording", recording_id):
            return recording_id
        row = {"id": recording_id, **pick(doc, (
            ("title", "title", read_text), ("length_ms", "length", read_int),
            ("first_release_date", "first-release-date", read_date), ("video", "video", read_bool),
            ("disambiguation", "disambiguation", read_text)))}
        self.credit_column("recording", recording_id, doc, row)
        self.out.add("recording", row)
        self.common("recording", recording_id, doc)
        if "isrcs" in doc:
            self.codes("recording_isrc", "recording_id", recording_id, "isrc", read_list(doc["isrcs"], "isrcs"),
                       normalize_isrc, self.out.invalid_isrcs)
        self.nested(doc, "releases", self.release, recording_id=recording_id)
        return recording_id

    def codes(self, table: str, owner: str, owner_id: str, column: str, codes: list,
              normalize: Callable[[Any], str | None], invalid: list) -> None:
        """A recording's ISRCs or a work's ISWCs: normalized and each stored
        once; invalid ones counted (`invalid`) and kept out."""
        self.clear(table, **{owner: owner_id})
        seen = set()
        for raw in codes:
            if isinstance(raw, dict):  # {"id": "..."} in some client-made JSON
                raw = raw.get("id")
            code = normalize(raw)
            if code is None:
                invalid.append((owner_id, str(raw)[:40]))
            elif code not in seen:
                seen.add(code)
                self.out.add(table, {owner: owner_id, column: code})

    def work(self, doc: dict) -> str:
        work_id = read_id(doc, "work")
        if self.seen("work", work_id):
            return work_id
        self.out.add("work", work_row(doc, work_id))
        if "iswcs" in doc:
            self.codes("work_iswc", "work_id", work_id, "iswc", read_list(doc["iswcs"], "iswcs"), normalize_iswc,
                       self.out.invalid_iswcs)
        self.common("work", work_id, doc)
        return work_id

    def area(self, doc: dict) -> str:
        area_id = read_id(doc, "area")
        if self.seen("area", area_id):
            return area_id
        self.out.add("area", area_row(doc, area_id))
        self.common("area", area_id, doc)
        return area_id

    def url(self, doc: dict) -> str:
        url_id = read_id(doc, "url")
        if self.seen("url", url_id):
            return url_id
        self.out.add("url", url_row(doc, url_id))
        self.common("url", url_id, doc)
        return url_id

    def event(self, doc: dict) -> str:
        event_id = read_id(doc, "event")
        if self.seen("event", event_id):
            return event_id
        row = {"id": event_id, **pick(doc, (
            ("name", "name", read_text), ("type", "type", read_text), ("disambiguation", "disambiguation", read_text),
            ("time", "time", read_text), ("cancelled", "cancelled", read_bool), ("setlist", "setlist", read_text)))}
        row.update(life_span(doc))
        self.out.add("event", row)
        self.common("event", event_id, doc)
        return event_id

    def instrument(self, doc: dict) -> str:
        instrument_id = read_id(doc, "instrument")
        if self.seen("instrument", instrument_id):
            return instrument_id
        self.out.add("instrument", {"id": instrument_id, **pick(doc, (
            ("name", "name", read_text), ("type", "type", read_text), ("disambiguation", "disambiguation", read_text),
            ("description", "description", read_text)))})
        self.common("instrument", instrument_id, doc)
        return instrument_id

    def place(self, doc: dict) -> str:
        place_id = read_id(doc, "place")
        if self.seen("place", place_id):
            return place_id
        row = {"id": place_id, **pick(doc, (
            ("name", "name", read_text), ("type", "type", read_text), ("disambiguation", "disambiguation", read_text),
            ("address", "address", read_text)))}
        coordinates = read_dict(doc.get("coordinates"), "coordinates")
        if coordinates is not None:
            row.update(pick(coordinates, (("latitude", "latitude", _coordinate), ("longitude", "longitude", _coordinate))))
        elif "coordinates" in doc:
            row.update(latitude=None, longitude=None)
        row.update(life_span(doc))
        self.area_column(doc, ("area",), row, "area_id")
        self.out.add("place", row)
        self.common("place", place_id, doc)
        return place_id

    def series(self, doc: dict) -> str:
        series_id = read_id(doc, "series")
        if self.seen("series", series_id):
            return series_id
        self.out.add("series", {"id": series_id, **pick(doc, (
            ("name", "name", read_text), ("type", "type", read_text),
            ("disambiguation", "disambiguation", read_text)))})
        self.common("series", series_id, doc)
        return series_id


def _coordinate(value: Any, key: str) -> float | None:
    return None if value is None or value == "" else read_float(value, key)


# entity type (as WS/2 spells it) -> its walker: what a document can be
WALKS = {
    "area": Walker.area, "artist": Walker.artist, "event": Walker.event, "instrument": Walker.instrument,
    "label": Walker.label, "place": Walker.place, "recording": Walker.recording, "release": Walker.release,
    "release-group": Walker.release_group, "series": Walker.series, "work": Walker.work,
}
# target type (as stored: a table's name) -> its walker: what a relationship can point at
TARGET_WALKS = {**{entity.replace("-", "_"): walk for entity, walk in WALKS.items()}, "url": Walker.url}
