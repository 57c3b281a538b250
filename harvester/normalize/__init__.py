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
- An entity's aliases, ISRCs, ISWCs, release events and relationships are
  child sets too; relationships are replaced per type (see relationships).
  An entity met only as a relationship's target is a partial view: upserted,
  never replacing anything (see entities).
- Supplementary data (tags, genres, moods, ratings, annotations, user-*) is
  CC BY-NC-SA 3.0: dropped, also from the kept raw document, unless the
  caller opts in; then it goes to separate tables marked with that licence.
  Relationships, aliases, works, areas, events, instruments, places and
  series are core data (CC0), kept by default.

Modules: fields (field readers), normalized (the result and the entity
types), entities (the walkers), relationships (relationships and URLs),
aliases, areas, works (and ISWCs), supplementary (licences), documents
(one entity document), pages (browse, search and ISRC answers).
"""

from harvester.normalize.documents import document_json, normalize_entity
from harvester.normalize.fields import ISRC_PATTERN, MBID_PATTERN, normalize_isrc
from harvester.normalize.normalized import DUMP_ENTITY_TYPES, ENTITY_TYPES, PLURAL_KEYS, TABLE_OF, Normalized, Page
from harvester.normalize.pages import normalize_isrc_lookup, normalize_page, page_items, redirect_row
from harvester.normalize.relationships import relation_types_of, url_host
from harvester.normalize.supplementary import (
    CC0, SUPPLEMENTARY_KEYS, SUPPLEMENTARY_LICENCE, strip_supplementary,
)
from harvester.normalize.works import normalize_iswc

__all__ = [
    "CC0", "DUMP_ENTITY_TYPES", "ENTITY_TYPES", "ISRC_PATTERN", "MBID_PATTERN", "PLURAL_KEYS", "SUPPLEMENTARY_KEYS",
    "SUPPLEMENTARY_LICENCE", "TABLE_OF", "Normalized", "Page", "document_json", "normalize_entity",
    "normalize_isrc", "normalize_isrc_lookup", "normalize_iswc", "normalize_page", "page_items", "redirect_row",
    "relation_types_of", "strip_supplementary", "url_host",
]
