"""WS/2 JSON documents -> rows for the contract's tables. Pure: no I/O, no clock.

One function per entity type walks a document and everything nested in it
(a release's media, tracks, recordings, ISRCs, labels, release group and
artist credits). The same functions serve API responses and dump lines: a
dump line is a WS/2 lookup response.

Rules the store relies on:
- A row holds only the columns whose source keys are present in the
  document, so an upsert never blanks a column another, richer document set.
- A child set (a recording's ISRCs, a release's media and tracks, an
  entity's artist credit, a release's labels) is listed in `replace` when the
  document carries it in full; the store clears it before writing the rows.
  Releases nested in a recording carry only the media and track of that
  recording: their tracks are upserted, never used to replace.
- Supplementary data (tags, genres, moods, ratings, annotations, user-*) is
  CC BY-NC-SA 3.0: dropped, also from the kept raw document, unless the
  caller opts in; then it goes to separate tables marked with that licence.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

import orjson

from harvester.errors import NormalizeError

CC0 = "CC0-1.0"
SUPPLEMENTARY_LICENCE = "CC-BY-NC-SA-3.0"

ENTITY_TYPES = ("artist", "label", "release-group", "release", "recording")

# The key a list of each entity type sits under in browse and search pages;
# searches from before about 2016 used the singular.
PLURAL_KEYS = {
    "artist": ("artists", "artist"),
    "label": ("labels", "label"),
    "release-group": ("release-groups", "release-group"),
    "release": ("releases", "release"),
    "recording": ("recordings", "recording"),
}

SUPPLEMENTARY_KEYS = frozenset(
    {"tags", "genres", "moods", "rating", "annotation", "user-tags", "user-genres", "user-moods", "user-rating"}
)
_TAG_KINDS = {"tags": "tag", "genres": "genre", "moods": "mood",
              "user-tags": "user-tag", "user-genres": "user-genre", "user-moods": "user-mood"}
_RATING_KINDS = {"rating": "rating", "user-rating": "user-rating"}

ISRC_PATTERN = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")
MBID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ISRC_DISPLAY_CHARS = re.compile(r"[\s\-]")

# table name <- entity type (release-group has a hyphen in WS/2, not in SQL)
TABLE_OF = {"artist": "artist", "label": "label", "release-group": "release_group",
            "release": "release", "recording": "recording"}


@dataclass
class Normalized:
    """What one or more documents become: rows to upsert per table, child sets
    to clear first, raw documents to keep, and what was refused."""

    rows: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    replace: list[tuple[str, tuple[tuple[str, Any], ...]]] = field(default_factory=list)
    documents: list[dict[str, Any]] = field(default_factory=list)
    invalid_isrcs: list[tuple[str, str]] = field(default_factory=list)

    def add(self, table: str, row: dict[str, Any]) -> None:
        self.rows.setdefault(table, []).append(row)

    def clear_children(self, table: str, **where: Any) -> None:
        self.replace.append((table, tuple(where.items())))

    def extend(self, other: "Normalized") -> None:
        for table, rows in other.rows.items():
            self.rows.setdefault(table, []).extend(rows)
        self.replace.extend(other.replace)
        self.documents.extend(other.documents)
        self.invalid_isrcs.extend(other.invalid_isrcs)

    def entity_ids(self, table: str) -> list[str]:
        return [row["id"] for row in self.rows.get(table, ())]


@dataclass(frozen=True)
class Page:
    """A browse or search page: its items' rows plus what paging needs."""

    normalized: Normalized
    total: int | None
    offset: int | None
    item_count: int


class _Shape(Exception):
    """A field holds a type the normalizer cannot use; becomes NormalizeError."""


# -- field readers: tolerant of None, strings for numbers; strict otherwise --

def _text(value: Any, key: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise _Shape(f"{key} should be text, not {type(value).__name__}")


def _int(value: Any, key: str) -> int | None:
    """A whole number that fits SQLite's 64-bit INTEGER; text and floats are accepted, NaN and infinity not."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise _Shape(f"{key} should be a number, not a boolean")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            raise _Shape(f"{key} should be a number, not {value[:40]!r}") from None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _Shape(f"{key} should be a finite number, not {value}")
        value = int(value)
    if isinstance(value, int):
        if not _SQLITE_INT_MIN <= value <= _SQLITE_INT_MAX:
            raise _Shape(f"{key} is out of range ({str(value)[:40]})")
        return value
    raise _Shape(f"{key} should be a number, not {type(value).__name__}")


_SQLITE_INT_MIN, _SQLITE_INT_MAX = -(2 ** 63), 2 ** 63 - 1


def _float(value: Any, key: str) -> float:
    """A finite number (ratings); text holding one is accepted."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            number = float(value)
        except (ValueError, OverflowError):
            number = math.nan
        if math.isfinite(number):
            return number
    raise _Shape(f"{key} should be a number, not {str(value)[:40]!r}")


def _bool(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value in (0, 1):  # 2014-era JSON
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return int(value.lower() == "true")
    raise _Shape(f"{key} should be true or false, not {type(value).__name__}")


def _code(value: Any, key: str) -> str | None:
    """A label code as text, the type of its column (label_code is TEXT since
    migration 0007): codes are numbers (LC 2648 -> '2648'), old data also
    holds text ('SPREC'). Giving the column's own type lets an import tell an
    unchanged row from a changed one."""
    try:
        number = _int(value, key)
    except _Shape:
        return _text(value, key)
    return None if number is None else str(number)


def _date(value: Any, key: str) -> str | None:
    """Partial dates stay as given (YYYY, YYYY-MM, YYYY-MM-DD); empty is unknown."""
    text = _text(value, key)
    return text.strip() or None if text is not None else None


def _list(value: Any, key: str) -> list:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise _Shape(f"{key} should be a list, not {type(value).__name__}")


def _dict(value: Any, key: str) -> dict | None:
    if value is None or isinstance(value, dict):
        return value
    raise _Shape(f"{key} should be an object, not {type(value).__name__}")


def _id(doc: dict, what: str) -> str:
    value = doc.get("id")
    if not isinstance(value, str) or not value.strip():
        raise _Shape(f"{what} has no id")
    return value.strip().lower()


def _pick(doc: dict, fields: Iterable[tuple[str, str, Any]]) -> dict[str, Any]:
    """Row of the columns whose keys are present: (column, key, reader)."""
    row: dict[str, Any] = {}
    for column, key, reader in fields:
        if key in doc:
            row[column] = reader(doc[key], key)
    return row


def normalize_isrc(raw: Any) -> str | None:
    """Canonical ISRC (upper case, no hyphens or spaces), or None if invalid."""
    if not isinstance(raw, str):
        return None
    code = _ISRC_DISPLAY_CHARS.sub("", raw).upper()
    return code if ISRC_PATTERN.match(code) else None


def strip_supplementary(doc: Any) -> Any:
    """A copy of doc without CC BY-NC-SA fields, at any depth."""
    if isinstance(doc, dict):  # scalars are taken as they are, not passed down: most values are scalars
        return {k: strip_supplementary(v) if isinstance(v, (dict, list)) else v
                for k, v in doc.items() if k not in SUPPLEMENTARY_KEYS}
    if isinstance(doc, list):
        return [strip_supplementary(v) if isinstance(v, (dict, list)) else v for v in doc]
    return doc


def _has_supplementary(doc: Any) -> bool:
    if isinstance(doc, dict):
        return any(k in SUPPLEMENTARY_KEYS for k in doc) or any(_has_supplementary(v) for v in doc.values())
    if isinstance(doc, list):
        return any(_has_supplementary(v) for v in doc)
    return False


def _life_span(doc: dict) -> dict[str, Any]:
    life_span = _dict(doc.get("life-span"), "life-span")
    if life_span is None:
        return {}
    return _pick(life_span, (("begin_date", "begin", _date), ("end_date", "end", _date), ("ended", "ended", _bool)))


class _Walker:
    """Walks one document; collects into a Normalized."""

    def __init__(self, supplementary: bool):
        self.supplementary = supplementary
        self.out = Normalized()

    # -- shared pieces --

    def supplementary_rows(self, entity_type: str, entity_id: str, doc: dict) -> None:
        if not self.supplementary:
            return
        for key, kind in _TAG_KINDS.items():
            if key in doc:
                self.out.clear_children("tag", entity_type=entity_type, entity_id=entity_id, kind=kind)
            for item in _list(doc.get(key), key):
                item = _dict(item, key) or {}
                name = _text(item.get("name"), f"{key}.name")
                if name:
                    self.out.add("tag", {"entity_type": entity_type, "entity_id": entity_id, "kind": kind,
                                         "name": name, "count": _int(item.get("count"), f"{key}.count"),
                                         "licence": SUPPLEMENTARY_LICENCE})
        for key, kind in _RATING_KINDS.items():
            rating = doc.get(key)
            if isinstance(rating, (int, float)) and not isinstance(rating, bool):
                rating = {"value": rating}
            rating = _dict(rating, key)
            if rating is not None and rating.get("value") is not None:
                self.out.add("rating", {"entity_type": entity_type, "entity_id": entity_id, "kind": kind,
                                        "value": _float(rating["value"], f"{key}.value"),
                                        "votes_count": _int(rating.get("votes-count"), f"{key}.votes-count"),
                                        "licence": SUPPLEMENTARY_LICENCE})
        annotation = doc.get("annotation")
        if isinstance(annotation, str) and annotation.strip():
            self.out.add("annotation", {"entity_type": entity_type, "entity_id": entity_id,
                                        "text": annotation, "licence": SUPPLEMENTARY_LICENCE})

    def artist_credit(self, entity_type: str, entity_id: str, credit: Any) -> str:
        """Credit rows for an entity; returns the credit as printed."""
        self.out.clear_children("artist_credit_name", entity_type=entity_type, entity_id=entity_id)
        printed = []
        for position, item in enumerate(_list(credit, "artist-credit")):
            item = _dict(item, "artist-credit[]") or {}
            artist = _dict(item.get("artist"), "artist-credit[].artist") or {}
            name = _text(item.get("name"), "artist-credit[].name")
            if name is None:
                name = _text(artist.get("name"), "artist-credit[].artist.name") or ""
            join_phrase = _text(item.get("joinphrase"), "artist-credit[].joinphrase") or ""
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
        for item in _list(doc.get(key), key):
            item = _dict(item, f"{key}[]")
            if item and item.get("id") is not None:
                walk(item, **kwargs)

    # -- entities --

    def artist(self, doc: dict) -> str:
        artist_id = _id(doc, "artist")
        row = {"id": artist_id, **_pick(doc, (
            ("name", "name", _text), ("sort_name", "sort-name", _text), ("type", "type", _text),
            ("country", "country", _text), ("disambiguation", "disambiguation", _text),
            ("gender", "gender", _text)))}
        row.update(_life_span(doc))
        self.out.add("artist", row)
        self.supplementary_rows("artist", artist_id, doc)
        self.nested(doc, "release-groups", self.release_group)
        self.nested(doc, "releases", self.release)
        self.nested(doc, "recordings", self.recording)
        return artist_id

    def label(self, doc: dict) -> str:
        label_id = _id(doc, "label")
        row = {"id": label_id, **_pick(doc, (
            ("name", "name", _text), ("sort_name", "sort-name", _text), ("type", "type", _text),
            ("country", "country", _text), ("label_code", "label-code", _code),
            ("disambiguation", "disambiguation", _text)))}
        row.update(_life_span(doc))
        self.out.add("label", row)
        self.supplementary_rows("label", label_id, doc)
        self.nested(doc, "releases", self.release)
        return label_id

    def release_group(self, doc: dict) -> str:
        group_id = _id(doc, "release-group")
        row = {"id": group_id, **_pick(doc, (
            ("title", "title", _text), ("primary_type", "primary-type", _text),
            ("first_release_date", "first-release-date", _date),
            ("disambiguation", "disambiguation", _text)))}
        if "secondary-types" in doc:
            types = [_text(t, "secondary-types[]") for t in _list(doc["secondary-types"], "secondary-types")]
            row["secondary_types"] = "; ".join(t for t in types if t)
        self.credit_column("release_group", group_id, doc, row)
        self.out.add("release_group", row)
        self.supplementary_rows("release_group", group_id, doc)
        self.nested(doc, "releases", self.release, release_group_id=group_id)
        return group_id

    def release(self, doc: dict, release_group_id: str | None = None, recording_id: str | None = None) -> str:
        """recording_id set: the release sits inside that recording, so its
        media hold only that recording's track and must not replace."""
        release_id = _id(doc, "release")
        row = {"id": release_id, **_pick(doc, (
            ("title", "title", _text), ("status", "status", _text), ("date", "date", _date),
            ("country", "country", _text), ("barcode", "barcode", _text),
            ("disambiguation", "disambiguation", _text), ("packaging", "packaging", _text)))}
        group = _dict(doc.get("release-group"), "release-group")
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
            self.media(release_id, _list(doc["media"], "media"), recording_id)
        return release_id

    def label_info(self, release_id: str, label_info: Any) -> None:
        self.out.clear_children("release_label", release_id=release_id)
        for item in _list(label_info, "label-info"):
            item = _dict(item, "label-info[]") or {}
            label = _dict(item.get("label"), "label-info[].label")
            label_id = self.label(label) if label and label.get("id") else ""
            catalog_number = _text(item.get("catalog-number"), "label-info[].catalog-number") or ""
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
            medium = _dict(medium, "media[]") or {}
            position = _int(medium.get("position"), "media[].position")
            if position is None:
                position = index + 1
            row = {"release_id": release_id, "position": position, **_pick(medium, (
                ("format", "format", _text), ("track_count", "track-count", _int), ("title", "title", _text)))}
            self.out.add("medium", row)
            tracks = []
            if "pregap" in medium:
                tracks.append(medium["pregap"])
            tracks += _list(medium.get("tracks", medium.get("track")), "media[].tracks")
            tracks += _list(medium.get("data-tracks"), "media[].data-tracks")
            for track in tracks:
                self.track(release_id, position, _dict(track, "media[].tracks[]") or {}, recording_id)

    def track(self, release_id: str, medium_position: int, doc: dict, recording_id: str | None) -> None:
        if not doc.get("id"):
            return  # fragments without a track MBID cannot be keyed
        track_id = _id(doc, "track")
        row = {"id": track_id, "release_id": release_id, "medium_position": medium_position, **_pick(doc, (
            ("position", "position", _int), ("number", "number", _text), ("title", "title", _text),
            ("length_ms", "length", _int)))}
        recording = _dict(doc.get("recording"), "track.recording")
        if recording is not None and recording.get("id"):
            row["recording_id"] = self.recording(recording)
        elif recording_id is not None:
            row["recording_id"] = recording_id
        self.credit_column("track", track_id, doc, row)
        self.out.add("track", row)

    def recording(self, doc: dict) -> str:
        recording_id = _id(doc, "recording")
        row = {"id": recording_id, **_pick(doc, (
            ("title", "title", _text), ("length_ms", "length", _int),
            ("first_release_date", "first-release-date", _date), ("video", "video", _bool),
            ("disambiguation", "disambiguation", _text)))}
        self.credit_column("recording", recording_id, doc, row)
        self.out.add("recording", row)
        self.supplementary_rows("recording", recording_id, doc)
        if "isrcs" in doc:
            self.isrcs(recording_id, _list(doc["isrcs"], "isrcs"))
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


_WALKS = {
    "artist": _Walker.artist, "label": _Walker.label, "release-group": _Walker.release_group,
    "release": _Walker.release, "recording": _Walker.recording,
}


def _check_entity_type(entity_type: str) -> None:
    if entity_type not in _WALKS:
        raise NormalizeError(f"unknown entity type {entity_type!r} (known: {', '.join(ENTITY_TYPES)})",
                             document=entity_type)


def _describe(entity_type: str, doc: Any) -> str:
    doc_id = doc.get("id") if isinstance(doc, dict) else None
    return f"{entity_type} {doc_id}" if isinstance(doc_id, str) else f"{entity_type} document"


def document_json(doc: Any) -> str:
    """How a kept document is written: compact, keys sorted, UTF-8 as is (so
    equal documents are equal text). TypeError for what JSON cannot hold,
    such as an integer beyond 64 bits."""
    return orjson.dumps(doc, option=orjson.OPT_SORT_KEYS).decode()


def _document_row(entity_type: str, entity_id: str, doc: dict, supplementary: bool) -> dict[str, Any]:
    keep_supplementary = supplementary and _has_supplementary(doc)
    kept = doc if supplementary else strip_supplementary(doc)
    try:
        text = document_json(kept)
    except TypeError as exc:
        raise NormalizeError(f"cannot be kept as JSON ({exc})", document=f"{entity_type} {entity_id}") from None
    return {"entity_type": entity_type, "entity_id": entity_id, "json": text,
            "licence": f"{CC0}+{SUPPLEMENTARY_LICENCE}" if keep_supplementary else CC0}


def normalize_entity(entity_type: str, doc: Any, *, supplementary: bool = False,
                     keep_document: bool = True) -> Normalized:
    """One entity document (a lookup response, a page item, a dump line)."""
    _check_entity_type(entity_type)
    if not isinstance(doc, dict):
        raise NormalizeError(f"expected a JSON object, got {type(doc).__name__}", document=f"{entity_type} document")
    walker = _Walker(supplementary)
    try:
        entity_id = _WALKS[entity_type](walker, doc)
    except _Shape as exc:
        raise NormalizeError(str(exc), document=_describe(entity_type, doc)) from None
    if keep_document:
        walker.out.documents.append(_document_row(entity_type, entity_id, doc, supplementary))
    return walker.out


def page_items(entity_type: str, page: Any) -> list:
    """The items of a browse or search page, under the plural or legacy singular key."""
    _check_entity_type(entity_type)
    if not isinstance(page, dict):
        raise NormalizeError(f"expected a JSON object, got {type(page).__name__}", document=f"{entity_type} page")
    for key in PLURAL_KEYS[entity_type]:
        if key in page:
            items = page[key]
            if not isinstance(items, list):
                raise NormalizeError(f"{key} should be a list", document=f"{entity_type} page")
            return items
    raise NormalizeError(f"no {PLURAL_KEYS[entity_type][0]} list in the page", document=f"{entity_type} page")


def normalize_page(entity_type: str, page: Any, *, supplementary: bool = False) -> Page:
    """A browse page (`<entity>-count`, `<entity>-offset`) or a search result (`count`, `offset`)."""
    items = page_items(entity_type, page)
    out = Normalized()
    for item in items:
        out.extend(normalize_entity(entity_type, item, supplementary=supplementary))
    try:
        total = _int(page.get(f"{entity_type}-count", page.get("count")), "count")
        offset = _int(page.get(f"{entity_type}-offset", page.get("offset")), "offset")
    except _Shape as exc:
        raise NormalizeError(str(exc), document=f"{entity_type} page") from None
    return Page(normalized=out, total=total, offset=offset, item_count=len(items))


def normalize_isrc_lookup(doc: Any, *, supplementary: bool = False) -> Normalized:
    """`/ws/2/isrc/<code>`: {"isrc": code, "recordings": [...]}.

    The recordings may come without their own `isrcs` list; the looked-up
    code is theirs by definition, so the pair is recorded (without replacing
    any other ISRCs the recording has)."""
    if not isinstance(doc, dict) or "recordings" not in doc:
        raise NormalizeError("expected {isrc, recordings}", document="isrc lookup")
    code = normalize_isrc(doc.get("isrc"))
    out = Normalized()
    for item in page_items("recording", doc):
        normalized = normalize_entity("recording", item, supplementary=supplementary)
        if code is not None and isinstance(item, dict) and "isrcs" not in item:
            normalized.add("recording_isrc", {"recording_id": normalized.rows["recording"][0]["id"], "isrc": code})
        out.extend(normalized)
    if code is None:
        out.invalid_isrcs.append(("", str(doc.get("isrc"))[:40]))
    return out


def redirect_row(entity_type: str, requested_id: str, returned_id: str) -> dict[str, str] | None:
    """An mbid_redirect row when a lookup answered with another (merged) entity."""
    old, new = requested_id.lower(), returned_id.lower()
    if old == new:
        return None
    return {"old_id": old, "new_id": new, "entity_type": entity_type}
