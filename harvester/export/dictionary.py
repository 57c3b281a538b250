"""What the exported tables are: which ones, under which licence, and a
description of every table and column (used by Parquet metadata, Datasette
metadata and the bag's data card)."""

from __future__ import annotations

CORE_TABLES = (
    "artist", "label", "release_group", "release", "medium", "track", "recording",
    "recording_isrc", "release_label", "artist_credit_name", "mbid_redirect", "harvest_run",
)
DOCUMENT_TABLE = "document"
SUPPLEMENTARY_TABLES = ("tag", "rating", "annotation")
ENTITY_TABLES = ("artist", "label", "release_group", "release", "recording")

CC0_LICENSE = "CC0 1.0"
CC0_URL = "https://creativecommons.org/publicdomain/zero/1.0/"
SUPPLEMENTARY_LICENSE = "CC BY-NC-SA 3.0"
SUPPLEMENTARY_URL = "https://creativecommons.org/licenses/by-nc-sa/3.0/"
SOURCE = "MusicBrainz (MetaBrainz Foundation)"
SOURCE_URL = "https://musicbrainz.org/"
ATTRIBUTION = ("Data from MusicBrainz (https://musicbrainz.org), the open music encyclopedia, "
               "provided by the MetaBrainz Foundation.")
# How a document row's licence column marks CC BY-NC-SA content (normalize.SUPPLEMENTARY_LICENCE).
SUPPLEMENTARY_MARK = "CC-BY-NC-SA"

_STAMP_COLUMNS = {
    "fetched_at": "When this row was last fetched (UTC, ISO 8601).",
    "source": "Where the row came from: the WS/2 server URL or the dump it was imported from.",
}
_ENTITY_TYPE = "Type of the entity the row belongs to (artist, label, release_group, release, recording)."
_ENTITY_ID = "MBID of the entity the row belongs to."
_CREDIT = "Artist credit as printed (each credited name followed by its join phrase)."
_SUPPLEMENTARY_LICENCE_COLUMN = "Licence of this row: CC-BY-NC-SA-3.0 (supplementary data, NonCommercial)."

TABLE_DESCRIPTIONS: dict[str, str] = {
    "artist": "MusicBrainz artists: people, groups, orchestras, characters.",
    "label": "Record labels and other imprints.",
    "release_group": "Release groups: an album, single or EP across all its editions.",
    "release": "Releases: one edition of a release group (country, date, barcode, packaging).",
    "medium": "Media of a release (disc, vinyl side set, digital medium), by position.",
    "track": "Tracks on a medium, each pointing at its recording.",
    "recording": "Recordings: a distinct audio take, shared by every track that uses it.",
    "recording_isrc": "ISRCs assigned to recordings (upper case, no hyphens); one recording may have several.",
    "release_label": "Labels and catalogue numbers of releases ('' where none is given).",
    "artist_credit_name": "Names in an entity's artist credit, one row per credited artist, in order.",
    "mbid_redirect": "MBIDs that MusicBrainz merged into another entity, and where they point now.",
    "harvest_run": "The run ledger: every harvest, import or refresh that wrote to this database.",
    "document": "The raw WS/2 JSON each entity was stored from (CC0 fields only unless marked).",
    "tag": "Supplementary data (CC BY-NC-SA 3.0): tags, genres and moods with vote counts.",
    "rating": "Supplementary data (CC BY-NC-SA 3.0): community ratings.",
    "annotation": "Supplementary data (CC BY-NC-SA 3.0): free-text annotations.",
}

COLUMN_DESCRIPTIONS: dict[str, dict[str, str]] = {
    "artist": {
        "id": "MusicBrainz identifier (MBID) of the artist.",
        "name": "Official name.", "sort_name": "Name for sorting (e.g. 'Beatles, The').",
        "type": "Person, Group, Orchestra, Choir, Character or Other.",
        "country": "ISO 3166-1 country code of the artist's area.",
        "disambiguation": "Comment telling apart artists of the same name.",
        "gender": "Gender of a person.", "begin_date": "Birth or formation date (partial dates kept).",
        "end_date": "Death or dissolution date (partial dates kept).", "ended": "1 if the artist has ended.",
        "gone_at": "When the artist was found deleted upstream (NULL while it exists).", **_STAMP_COLUMNS,
    },
    "label": {
        "id": "MusicBrainz identifier (MBID) of the label.",
        "name": "Official name.", "sort_name": "Name for sorting.",
        "type": "Original Production, Imprint, Holding, Distributor, ...",
        "country": "ISO 3166-1 country code of the label's area.",
        "label_code": "IFPI label code (LC number) without the LC prefix.",
        "disambiguation": "Comment telling apart labels of the same name.",
        "begin_date": "Founding date (partial dates kept).", "end_date": "Dissolution date (partial dates kept).",
        "ended": "1 if the label has ended.",
        "gone_at": "When the label was found deleted upstream (NULL while it exists).", **_STAMP_COLUMNS,
    },
    "release_group": {
        "id": "MusicBrainz identifier (MBID) of the release group.", "title": "Title.",
        "primary_type": "Album, Single, EP, Broadcast or Other.",
        "secondary_types": "Secondary types (Compilation, Live, Soundtrack, ...), comma separated.",
        "first_release_date": "Date of the earliest release in the group (partial dates kept).",
        "artist_credit": _CREDIT, "disambiguation": "Comment telling apart groups of the same title.",
        "gone_at": "When the group was found deleted upstream (NULL while it exists).", **_STAMP_COLUMNS,
    },
    "release": {
        "id": "MusicBrainz identifier (MBID) of the release.", "title": "Title.",
        "status": "Official, Promotion, Bootleg, Pseudo-Release, ...",
        "date": "Release date (YYYY, YYYY-MM or YYYY-MM-DD; NULL when unknown).",
        "country": "ISO 3166-1 code of the release country (XW = worldwide, XE = Europe).",
        "barcode": "Barcode (EAN/UPC) as printed; '' means the release has no barcode.",
        "release_group_id": "MBID of the release group (release_group.id).", "artist_credit": _CREDIT,
        "disambiguation": "Comment telling apart releases of the same title.", "packaging": "Packaging.",
        "gone_at": "When the release was found deleted upstream (NULL while it exists).", **_STAMP_COLUMNS,
    },
    "medium": {
        "release_id": "MBID of the release (release.id).", "position": "Position of the medium in the release (from 1).",
        "format": "CD, Digital Media, 12\" Vinyl, ...", "track_count": "Number of tracks on the medium.",
        "title": "Medium title, if any.", **_STAMP_COLUMNS,
    },
    "track": {
        "id": "MusicBrainz identifier (MBID) of the track.", "release_id": "MBID of the release (release.id).",
        "medium_position": "Position of the medium in the release (medium.position).",
        "position": "Position of the track on its medium (from 1).", "number": "Track number as printed (A1, 3, ...).",
        "title": "Track title (may differ from the recording's).", "length_ms": "Track length in milliseconds.",
        "recording_id": "MBID of the recording (recording.id).", "artist_credit": _CREDIT, **_STAMP_COLUMNS,
    },
    "recording": {
        "id": "MusicBrainz identifier (MBID) of the recording.", "title": "Title.",
        "length_ms": "Length in milliseconds (NULL when unknown).",
        "first_release_date": "Date of the earliest release with this recording (partial dates kept).",
        "video": "1 if the recording is a video.", "disambiguation": "Comment telling apart recordings.",
        "artist_credit": _CREDIT,
        "gone_at": "When the recording was found deleted upstream (NULL while it exists).", **_STAMP_COLUMNS,
    },
    "recording_isrc": {
        "recording_id": "MBID of the recording (recording.id).",
        "isrc": "ISRC: CC (country) + OOO (registrant) + YY (year) + NNNNN.", **_STAMP_COLUMNS,
    },
    "release_label": {
        "release_id": "MBID of the release (release.id).", "label_id": "MBID of the label (label.id); '' if none.",
        "catalog_number": "Catalogue number as printed; '' if none.", **_STAMP_COLUMNS,
    },
    "artist_credit_name": {
        "entity_type": _ENTITY_TYPE, "entity_id": _ENTITY_ID, "position": "Position in the credit (from 0).",
        "artist_id": "MBID of the credited artist (artist.id).", "name": "Name as credited.",
        "join_phrase": "Text printed after this name (' & ', ' feat. ', ...).", **_STAMP_COLUMNS,
    },
    "mbid_redirect": {
        "old_id": "The merged (old) MBID.", "new_id": "The MBID it now resolves to.",
        "entity_type": "Entity type of both MBIDs.", "recorded_at": "When the redirect was seen (UTC).",
    },
    "harvest_run": {
        "id": "Run number.", "command": "The command that ran (harvest artist, import-dump, refresh, ...).",
        "args": "Its arguments (seeds, files, options).", "started_at": "Start (UTC).", "finished_at": "End (UTC).",
        "status": "running, finished, partial (stopped at a budget) or failed.",
        "requests": "WS/2 requests spent.", "entities_written": "Entities written.",
        "new": "Entities seen for the first time.", "updated": "Entities whose data changed.",
        "unchanged": "Entities fetched again without change.", "gone": "Entities found deleted upstream.",
        "error": "Error message of a failed run.", "pid": "Process id of the run.",
    },
    "document": {
        "entity_type": _ENTITY_TYPE, "entity_id": _ENTITY_ID,
        "json": "The WS/2 JSON document the rows were stored from.",
        "licence": "CC0-1.0, or CC0-1.0+CC-BY-NC-SA-3.0 when it keeps supplementary fields.", **_STAMP_COLUMNS,
    },
    "tag": {
        "entity_type": _ENTITY_TYPE, "entity_id": _ENTITY_ID, "kind": "tag, genre, mood (or user-*).",
        "name": "Tag name.", "count": "Votes for the tag.", "licence": _SUPPLEMENTARY_LICENCE_COLUMN,
        **_STAMP_COLUMNS,
    },
    "rating": {
        "entity_type": _ENTITY_TYPE, "entity_id": _ENTITY_ID, "kind": "rating or user-rating.",
        "value": "Average rating (0-5).", "votes_count": "Number of votes.",
        "licence": _SUPPLEMENTARY_LICENCE_COLUMN, **_STAMP_COLUMNS,
    },
    "annotation": {
        "entity_type": _ENTITY_TYPE, "entity_id": _ENTITY_ID, "text": "Annotation text.",
        "licence": _SUPPLEMENTARY_LICENCE_COLUMN, **_STAMP_COLUMNS,
    },
}
