"""The data dictionary: every table, view and column of the database, with
its type and a description, declared once.

Everything that describes the data reads it: Parquet's schema (types fixed
here whatever a column happens to hold), the CSV export's datapackage.json,
Datasette's metadata, and the bag's data dictionary. A table or column
without an entry here fails tests/test_dictionary.py, so a new table must
say what it holds before it ships.

Types are logical: TEXT, INTEGER, REAL, BOOLEAN (stored 0/1), TIMESTAMP (UTC,
stored as ISO 8601 text such as 2026-01-02T03:04:05Z), PARTIAL_DATE (YYYY,
YYYY-MM or YYYY-MM-DD as MusicBrainz gives it: text, never a calendar date)
and JSON (text holding a JSON document).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from harvester.views import COUNTERS, UNKNOWN_LENGTH_BIN

CORE_TABLES = (
    "artist", "label", "release_group", "release", "medium", "track", "recording",
    "recording_isrc", "release_label", "artist_credit_name", "mbid_redirect", "harvest_run",
    "work", "work_iswc", "relationship", "url", "alias", "area", "release_event",
    "event", "instrument", "place", "series",
)
DOCUMENT_TABLE = "document"
SUPPLEMENTARY_TABLES = ("tag", "rating", "annotation")
ENTITY_TABLES = ("artist", "label", "release_group", "release", "recording",
                 "area", "event", "instrument", "place", "series", "work")

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


# What a table is, for its licence and for whether researchers see it.
CORE, SUPPLEMENTARY, INTERNAL = "core", "supplementary", "internal"
TYPES = ("TEXT", "INTEGER", "REAL", "BOOLEAN", "TIMESTAMP", "PARTIAL_DATE", "JSON")


@dataclass(frozen=True)
class Column:
    type: str
    description: str

    def __post_init__(self) -> None:
        assert self.type in TYPES, self.type


@dataclass(frozen=True)
class Table:
    description: str
    columns: dict[str, Column]
    kind: str = CORE
    view: bool = False
    facets: tuple[str, ...] = field(default=())  # columns worth a Datasette facet (few values, no dates)


def _columns(**declared: tuple[str, str]) -> dict[str, Column]:
    return {name: Column(kind, text) for name, (kind, text) in declared.items()}


_STAMP = {
    "fetched_at": ("TIMESTAMP", "When this row was last fetched (UTC); a dump's rows have the dump's time. "
                   "An entity row takes the newest dump that carries it; a child row keeps its stamps while "
                   "newer dumps leave it unchanged."),
    "source": ("TEXT", "Where the row came from: ws2:<server URL> or dump:<dump timestamp> (for an entity row, "
               "the newest dump carrying it; for a child row, the dump that last wrote it)."),
}
_GONE = ("TIMESTAMP", "When the entity was found deleted upstream (NULL while it exists).")
_ENTITY_TYPE = ("TEXT", "Type of the entity the row belongs to (artist, label, release_group, release, recording, "
                        "work, area, event, instrument, place, series).")
_ENTITY_ID = ("TEXT", "MBID of the entity the row belongs to.")
_CREDIT = ("TEXT", "Artist credit as printed (each credited name followed by its join phrase).")
_ROW_LICENCE = ("TEXT", "Licence of this row: CC-BY-NC-SA-3.0 (supplementary data, NonCommercial).")
_BEGIN = ("PARTIAL_DATE", "Birth, formation or founding date (YYYY, YYYY-MM or YYYY-MM-DD).")
_END = ("PARTIAL_DATE", "Death, dissolution or end date (YYYY, YYYY-MM or YYYY-MM-DD).")
_ENDED = ("BOOLEAN", "Whether it has ended.")
_AREA = ("TEXT", "MBID of its area (area.id): a country, subdivision, city, district...; NULL when none is given.")
_NAME = ("TEXT", "Official name.")
_DISAMBIGUATION = ("TEXT", "Comment telling apart entities of the same name.")

TABLES: dict[str, Table] = {
    "artist": Table("MusicBrainz artists: people, groups, orchestras, characters.", _columns(
        id=("TEXT", "MusicBrainz identifier (MBID) of the artist."), name=("TEXT", "Official name."),
        sort_name=("TEXT", "Name for sorting (e.g. 'Beatles, The')."),
        type=("TEXT", "Person, Group, Orchestra, Choir, Character or Other."),
        country=("TEXT", "ISO 3166-1 country code of the artist's area."),
        disambiguation=("TEXT", "Comment telling apart artists of the same name."),
        gender=("TEXT", "Gender of a person."), begin_date=_BEGIN, end_date=_END,
        ended=("BOOLEAN", "Whether the artist has ended (died, dissolved)."), gone_at=_GONE, **_STAMP,
        area_id=("TEXT", "MBID of the artist's area (area.id): often a city or region, whose country is found "
                         "through area relationships ('part of'); `country` is set only when it is a country."),
        begin_area_id=("TEXT", "MBID of the area where the artist was born or formed (area.id)."),
        end_area_id=("TEXT", "MBID of the area where the artist died or dissolved (area.id).")),
        facets=("type", "country", "gender")),
    "label": Table("Record labels and other imprints.", _columns(
        id=("TEXT", "MusicBrainz identifier (MBID) of the label."), name=("TEXT", "Official name."),
        sort_name=("TEXT", "Name for sorting."),
        type=("TEXT", "Original Production, Imprint, Holding, Distributor, ..."),
        country=("TEXT", "ISO 3166-1 country code of the label's area."),
        label_code=("TEXT", "Label code as given: usually the digits of an IFPI LC number without the LC prefix "
                            "(2648), sometimes text (SPREC). Text, so every value keeps its form."),
        disambiguation=("TEXT", "Comment telling apart labels of the same name."), begin_date=_BEGIN, end_date=_END,
        ended=("BOOLEAN", "Whether the label has ended."), gone_at=_GONE, **_STAMP,
        area_id=("TEXT", "MBID of the label's area (area.id), often a city or region; `country` is set only "
                         "when it is a country.")),
        facets=("type", "country")),
    "release_group": Table("Release groups: an album, single or EP across all its editions.", _columns(
        id=("TEXT", "MusicBrainz identifier (MBID) of the release group."), title=("TEXT", "Title."),
        primary_type=("TEXT", "Album, Single, EP, Broadcast or Other."),
        secondary_types=("JSON", "Secondary types as a JSON array (e.g. [\"Compilation\",\"Live\"]; [] for none). "
                                 "Migration 0011 converted the 'Compilation; Live' text of older releases."),
        first_release_date=("PARTIAL_DATE", "Date of the earliest release in the group."), artist_credit=_CREDIT,
        disambiguation=("TEXT", "Comment telling apart groups of the same title."), gone_at=_GONE, **_STAMP),
        facets=("primary_type",)),
    "release": Table("Releases: one edition of a release group (country, date, barcode, packaging).", _columns(
        id=("TEXT", "MusicBrainz identifier (MBID) of the release."), title=("TEXT", "Title."),
        status=("TEXT", "Official, Promotion, Bootleg, Pseudo-Release, ..."),
        date=("PARTIAL_DATE", "Release date; NULL when unknown."),
        country=("TEXT", "ISO 3166-1 code of the release country (XW = worldwide, XE = Europe)."),
        barcode=("TEXT", "Barcode (EAN/UPC) as printed, leading zeros kept; '' means the release has no barcode, "
                         "NULL that none is known."),
        release_group_id=("TEXT", "MBID of the release group (release_group.id)."), artist_credit=_CREDIT,
        disambiguation=("TEXT", "Comment telling apart releases of the same title."),
        packaging=("TEXT", "Packaging (Jewel Case, Digipak, None, ...)."), gone_at=_GONE, **_STAMP,
        language=("TEXT", "Language of the titles and tracklist (ISO 639-3, e.g. eng; mul for several)."),
        script=("TEXT", "Script of the titles and tracklist (ISO 15924, e.g. Latn, Cyrl, Jpan).")),
        facets=("status", "country", "packaging", "language", "script")),
    "medium": Table("Media of a release (disc, vinyl side set, digital medium), by position.", _columns(
        release_id=("TEXT", "MBID of the release (release.id)."),
        position=("INTEGER", "Position of the medium in the release (from 1)."),
        format=("TEXT", "CD, Digital Media, 12\" Vinyl, ..."),
        track_count=("INTEGER", "Number of tracks on the medium."),
        title=("TEXT", "Medium title, if any."), **_STAMP),
        facets=("format",)),
    "track": Table("Tracks on a medium, each pointing at its recording.", _columns(
        id=("TEXT", "MusicBrainz identifier (MBID) of the track."),
        release_id=("TEXT", "MBID of the release (release.id)."),
        medium_position=("INTEGER", "Position of the medium in the release (medium.position)."),
        position=("INTEGER", "Position of the track on its medium (from 1)."),
        number=("TEXT", "Track number as printed (A1, 3, ...)."),
        title=("TEXT", "Track title (may differ from the recording's)."),
        length_ms=("INTEGER", "Track length in milliseconds."),
        recording_id=("TEXT", "MBID of the recording (recording.id)."), artist_credit=_CREDIT, **_STAMP)),
    "recording": Table("Recordings: a distinct audio take, shared by every track that uses it.", _columns(
        id=("TEXT", "MusicBrainz identifier (MBID) of the recording."), title=("TEXT", "Title."),
        length_ms=("INTEGER", "Length in milliseconds (NULL when unknown)."),
        first_release_date=("PARTIAL_DATE", "Date of the earliest release with this recording."),
        video=("BOOLEAN", "Whether the recording is a video."),
        disambiguation=("TEXT", "Comment telling apart recordings."), artist_credit=_CREDIT, gone_at=_GONE, **_STAMP),
        facets=("video",)),
    "recording_isrc": Table("ISRCs assigned to recordings (upper case, no hyphens); one recording may have several.",
                            _columns(recording_id=("TEXT", "MBID of the recording (recording.id)."),
                                     isrc=("TEXT", "ISRC: CC (country) + OOO (registrant) + YY (year) + NNNNN."),
                                     **_STAMP)),
    "release_label": Table("Labels and catalogue numbers of releases.", _columns(
        release_id=("TEXT", "MBID of the release (release.id)."),
        label_id=("TEXT", "MBID of the label (label.id); NULL when the release names a catalogue number without "
                          "a label (databases before migration 0011 held '')."),
        catalog_number=("TEXT", "Catalogue number as printed; '' if none."), **_STAMP)),
    "artist_credit_name": Table("Names in an entity's artist credit, one row per credited artist, in order.",
                                _columns(entity_type=_ENTITY_TYPE, entity_id=_ENTITY_ID,
                                         position=("INTEGER", "Position in the credit (from 0)."),
                                         artist_id=("TEXT", "MBID of the credited artist (artist.id)."),
                                         name=("TEXT", "Name as credited."),
                                         join_phrase=("TEXT", "Text printed after this name (' & ', ' feat. ', ...)."),
                                         **_STAMP),
                                facets=("entity_type",)),
    "mbid_redirect": Table("MBIDs that MusicBrainz merged into another entity, and where they point now.", _columns(
        old_id=("TEXT", "The merged (old) MBID."), new_id=("TEXT", "The MBID it now resolves to."),
        entity_type=("TEXT", "Entity type of both MBIDs."), recorded_at=("TIMESTAMP", "When the redirect was seen."))),
    "harvest_run": Table("The run ledger: every harvest, import or refresh that wrote to this database.", _columns(
        id=("INTEGER", "Run number."), command=("TEXT", "The command that ran (harvest artist, import-dump, ...)."),
        args=("JSON", "Its arguments, complete (seeds, files, options; for dump imports the dump timestamp, and "
                      "for downloaded dumps their URLs and SHA-256)."),
        started_at=("TIMESTAMP", "Start."), finished_at=("TIMESTAMP", "End (NULL while running or after a crash)."),
        status=("TEXT", "running, complete, partial (stopped at a budget; rerun continues), failed, or interrupted "
                        "(stopped by a signal or killed; its committed pages are kept)."),
        requests=("INTEGER", "WS/2 requests spent."), entities_written=("INTEGER", "Entities written."),
        new=("INTEGER", "Entities seen for the first time."), updated=("INTEGER", "Entities whose data changed."),
        unchanged=("INTEGER", "Entities fetched again without change."),
        gone=("INTEGER", "Entities found deleted upstream."), error=("TEXT", "Error message of a failed run."),
        pid=("INTEGER", "Process id of the run."),
        rereads=("INTEGER", "Extra requests spent re-reading browse pages that came up short of their count "
                            "(items shifted across page boundaries while the catalogue changed)."),
        notes=("TEXT", "What the run's reader should know that is not an error (a browse still short of its "
                       "count after its re-reads).")),
        facets=("command", "status")),
    "work": Table("Works: the compositions (songs, pieces, librettos...) recordings perform.", _columns(
        id=("TEXT", "MusicBrainz identifier (MBID) of the work."), title=("TEXT", "Title."),
        type=("TEXT", "Song, Aria, Symphony, Opera, ..."),
        language=("TEXT", "Language of the lyrics (ISO 639-3; mul for several, zxx for none)."),
        disambiguation=_DISAMBIGUATION, gone_at=_GONE, **_STAMP),
        facets=("type", "language")),
    "work_iswc": Table("ISWCs of works (T and ten digits, without dots or hyphens); invalid ones are counted and kept "
                       "out.", _columns(work_id=("TEXT", "MBID of the work (work.id)."),
                                        iswc=("TEXT", "ISWC: T + nine digits + check digit (T1234567890)."), **_STAMP)),
    "relationship": Table(
        "Every relationship the stored documents carry (performances of works, members of bands, producers, links "
        "to other sites...), stored once from its source (MusicBrainz's entity0) to its target (entity1), whichever "
        "side it was read from: between two types the alphabetically first is the source (artist -> recording, "
        "recording -> work, release -> url, url -> work).", _columns(
            entity_type=("TEXT", "Type of the source: area, artist, event, instrument, label, place, recording, "
                                 "release, release_group, series, url or work."),
            entity_id=("TEXT", "MBID of the source."),
            target_type=("TEXT", "Type of the target (as entity_type; also genre)."),
            target_id=("TEXT", "MBID of the target."),
            link_key=("TEXT", "Digest of type, dates and attributes with their values: tells apart relationships of "
                              "one type between the same two entities (part of the key)."),
            type=("TEXT", "Relationship type (performance, member of band, producer, streaming, wikidata, ...)."),
            type_id=("TEXT", "MBID of the relationship type."),
            direction=("TEXT", "forward: the row reads from source to target (every row but these: NULL for a "
                               "relationship between two entities of one type read from a body without a "
                               "direction, kept as the body had it)."),
            begin_date=("PARTIAL_DATE", "When it began (YYYY, YYYY-MM or YYYY-MM-DD)."),
            end_date=("PARTIAL_DATE", "When it ended."), ended=_ENDED,
            attributes=("JSON", "Its attributes as a JSON array (live, cover, guitar, additional, ...); NULL for "
                                "none."),
            attribute_values=("JSON", "Values of attributes that take one, as a JSON object; NULL for none."),
            attribute_credits=("JSON", "How attributes are credited (guitar as 'Fender Stratocaster'), as a JSON "
                                       "object; NULL for none."),
            entity_credit=("TEXT", "How the source is credited in this relationship, if not by its name."),
            target_credit=("TEXT", "How the target is credited in this relationship, if not by its name."),
            ordering_key=("INTEGER", "Position of the relationship among its kind (a series' parts)."), **_STAMP),
        facets=("entity_type", "target_type", "type")),
    "url": Table("URLs that relationships point at (Wikidata, Discogs, Spotify, Bandcamp, official sites...).",
                 _columns(id=("TEXT", "MusicBrainz identifier (MBID) of the URL."),
                          resource=("TEXT", "The URL."),
                          host=("TEXT", "Its host, lower case (open.spotify.com): what streaming links are "
                                        "classified by."), **_STAMP)),
    "alias": Table("Aliases: other names an entity is known and searched by (other scripts and languages, legal "
                   "names, search hints); full-text searchable.", _columns(
                       entity_type=_ENTITY_TYPE, entity_id=_ENTITY_ID,
                       position=("INTEGER", "Position in the entity's list of aliases (from 0)."),
                       name=("TEXT", "The alias."), sort_name=("TEXT", "Name for sorting."),
                       locale=("TEXT", "Locale it is the name in (en, ja, de_AT, ...)."),
                       type=("TEXT", "Artist name, Legal name, Search hint, Label name, ..."),
                       primary=("BOOLEAN", "Whether it is the primary alias for its locale (quote the column: "
                                           "\"primary\" is an SQL keyword)."),
                       begin_date=("PARTIAL_DATE", "From when it was used."),
                       end_date=("PARTIAL_DATE", "Until when it was used."), ended=_ENDED, **_STAMP),
                   facets=("entity_type", "locale", "type")),
    "area": Table("Areas: countries, subdivisions, cities, districts, islands.", _columns(
        id=("TEXT", "MusicBrainz identifier (MBID) of the area."), name=_NAME, sort_name=("TEXT", "Name for sorting."),
        type=("TEXT", "Country, Subdivision, County, Municipality, City, District, Island."),
        disambiguation=_DISAMBIGUATION,
        iso_3166_1=("TEXT", "ISO 3166-1 code of a country (GB); space-separated when it has several."),
        iso_3166_2=("TEXT", "ISO 3166-2 code of a subdivision (GB-ENG)."),
        iso_3166_3=("TEXT", "ISO 3166-3 code of a former country (SUHH)."),
        begin_date=("PARTIAL_DATE", "When it came into being."), end_date=("PARTIAL_DATE", "When it ceased to be."),
        ended=_ENDED, gone_at=_GONE, **_STAMP),
        facets=("type",)),
    "release_event": Table("Release events: every country (or other area) and date a release came out in, not only "
                           "the first.", _columns(
                               release_id=("TEXT", "MBID of the release (release.id)."),
                               position=("INTEGER", "Position in the release's list of events (from 0)."),
                               area_id=("TEXT", "MBID of the area (area.id; XW Worldwide, XE Europe are areas too); "
                                                "NULL when the event names none."),
                               date=("PARTIAL_DATE", "Release date in that area; NULL when unknown."), **_STAMP)),
    "event": Table("Events: concerts, festivals, award ceremonies, launch events.", _columns(
        id=("TEXT", "MusicBrainz identifier (MBID) of the event."), name=_NAME,
        type=("TEXT", "Concert, Festival, Launch event, Award ceremony, ..."), disambiguation=_DISAMBIGUATION,
        time=("TEXT", "Start time (HH:MM)."), cancelled=("BOOLEAN", "Whether it was cancelled."),
        setlist=("TEXT", "The setlist, in MusicBrainz's setlist syntax."),
        begin_date=("PARTIAL_DATE", "First day."), end_date=("PARTIAL_DATE", "Last day."), ended=_ENDED,
        gone_at=_GONE, **_STAMP),
        facets=("type",)),
    "instrument": Table("Instruments (what performer relationships credit).", _columns(
        id=("TEXT", "MusicBrainz identifier (MBID) of the instrument."), name=_NAME,
        type=("TEXT", "Wind instrument, String instrument, Electronic instrument, ..."),
        disambiguation=_DISAMBIGUATION, description=("TEXT", "Short description."), gone_at=_GONE, **_STAMP),
        facets=("type",)),
    "place": Table("Places: studios, venues, stadiums, religious buildings.", _columns(
        id=("TEXT", "MusicBrainz identifier (MBID) of the place."), name=_NAME,
        type=("TEXT", "Studio, Venue, Stadium, Religious building, ..."), disambiguation=_DISAMBIGUATION,
        address=("TEXT", "Address as written."), area_id=_AREA,
        latitude=("REAL", "Latitude (degrees, WGS 84)."), longitude=("REAL", "Longitude (degrees, WGS 84)."),
        begin_date=("PARTIAL_DATE", "Opening date."), end_date=("PARTIAL_DATE", "Closing date."), ended=_ENDED,
        gone_at=_GONE, **_STAMP),
        facets=("type",)),
    "series": Table("Series: ordered sets of releases, works, events... (their parts are relationships).", _columns(
        id=("TEXT", "MusicBrainz identifier (MBID) of the series."), name=_NAME,
        type=("TEXT", "Release series, Work catalogue, Tour, Festival, ..."), disambiguation=_DISAMBIGUATION,
        gone_at=_GONE, **_STAMP),
        facets=("type",)),
    "document": Table("The raw WS/2 JSON each entity was stored from (CC0 fields only unless its licence says "
                      "otherwise).", _columns(
                          entity_type=_ENTITY_TYPE, entity_id=_ENTITY_ID,
                          json=("JSON", "The WS/2 JSON document the rows were stored from."),
                          licence=("TEXT", "CC0-1.0, or CC0-1.0+CC-BY-NC-SA-3.0 when it keeps supplementary fields."),
                          **_STAMP),
                      facets=("entity_type", "licence")),
    "tag": Table("Supplementary data (CC BY-NC-SA 3.0): tags, genres and moods with vote counts.", _columns(
        entity_type=_ENTITY_TYPE, entity_id=_ENTITY_ID, kind=("TEXT", "tag, genre, mood (or user-*)."),
        name=("TEXT", "Tag name."), count=("INTEGER", "Votes for the tag."), licence=_ROW_LICENCE, **_STAMP),
        kind=SUPPLEMENTARY, facets=("entity_type", "kind")),
    "rating": Table("Supplementary data (CC BY-NC-SA 3.0): community ratings.", _columns(
        entity_type=_ENTITY_TYPE, entity_id=_ENTITY_ID, kind=("TEXT", "rating or user-rating."),
        value=("REAL", "Average rating (0-5)."), votes_count=("INTEGER", "Number of votes."),
        licence=_ROW_LICENCE, **_STAMP),
        kind=SUPPLEMENTARY, facets=("entity_type",)),
    "annotation": Table("Supplementary data (CC BY-NC-SA 3.0): free-text annotations.", _columns(
        entity_type=_ENTITY_TYPE, entity_id=_ENTITY_ID, text=("TEXT", "Annotation text."),
        licence=_ROW_LICENCE, **_STAMP),
        kind=SUPPLEMENTARY, facets=("entity_type",)),
    # internal: state of the machinery, hidden from researchers
    "_sqlite_migrations": Table("Internal: the schema migrations applied to this database.", _columns(
        id=("INTEGER", "Order applied."), migration_set=("TEXT", "Set of migrations (mbharvest)."),
        name=("TEXT", "Migration name."), applied_at=("TIMESTAMP", "When it was applied.")), kind=INTERNAL),
    "dump_import": Table("Internal: where each dump file's import stands (the resume position).", _columns(
        entity_type=("TEXT", "Entity type of the dump file."), dump_timestamp=("TIMESTAMP", "The dump's TIMESTAMP."),
        size_bytes=("INTEGER", "Size of the dump file."), path=("TEXT", "Path it was read from."),
        status=("TEXT", "running, partial (stopped at a budget), complete or failed."),
        lines_committed=("INTEGER", "Lines whose rows are merged into the tables."),
        lines_skipped=("INTEGER", "Bad lines skipped."), entities_written=("INTEGER", "Entities written."),
        started_at=("TIMESTAMP", "Start."), updated_at=("TIMESTAMP", "Last commit."),
        finished_at=("TIMESTAMP", "When it finished."),
        lines_staged=("INTEGER", "Lines whose rows are staged beside the database (where a resumed import "
                                 "starts reading)."),
        stage=("JSON", "The staged chunks waiting for the merge (files, sizes, lines)."),
        changes=("JSON", "What the merge did per table: new, updated, unchanged, deleted rows.")), kind=INTERNAL),
    "bulk_load": Table("Internal: indexes and triggers that an import by mbharvest 0.1.0 dropped, with their SQL "
                       "(rebuilt by the next open when that import died).", _columns(
                           name=("TEXT", "Index or trigger name."), type=("TEXT", "index or trigger."),
                           table_name=("TEXT", "Its table."), sql=("TEXT", "The SQL that recreates it."),
                           pid=("INTEGER", "Process of the import."), started_at=("TIMESTAMP", "When it was dropped.")),
                       kind=INTERNAL),
    "dump_sync": Table("Internal: each dump `sync-dumps` worked on, and whether its deletions are applied.", _columns(
        dump_name=("TEXT", "The dump's folder on the server (YYYYMMDD-HHMMSS)."),
        server=("TEXT", "The dump server (its json-dumps folder)."),
        rows_before=("INTEGER", "Entity rows before the first import of this dump (for the ledger's new count)."),
        entities_complete=("JSON", "Entity types imported completely, as of completed_at."),
        started_at=("TIMESTAMP", "When a sync first took this dump up."),
        completed_at=("TIMESTAMP", "When its deletions were applied (NULL until then).")), kind=INTERNAL),
    "dump_sync_file": Table("Internal: each archive of a dump `sync-dumps` downloaded and imported.", _columns(
        dump_name=("TEXT", "The dump's folder on the server."), entity_type=("TEXT", "Entity type of the archive."),
        file_name=("TEXT", "<entity>.tar.xz."), url=("TEXT", "Where it was downloaded from."),
        sha256=("TEXT", "Its SHA-256 as SHA256SUMS gives it (the download was checked against it)."),
        size_bytes=("INTEGER", "Size downloaded."), dump_timestamp=("TIMESTAMP", "The TIMESTAMP inside it."),
        downloaded_at=("TIMESTAMP", "When the download was verified."),
        imported_at=("TIMESTAMP", "When its import finished (NULL until then).")), kind=INTERNAL),
    "harvest_bookmark": Table("Internal: where each step of a resumable harvest plan stands.", _columns(
        plan=("TEXT", "The plan (command and seeds)."), step=("TEXT", "The step (a browse or lookup)."),
        run_id=("INTEGER", "Run that last moved it (harvest_run.id)."),
        next_offset=("INTEGER", "Offset of the next page."), total=("INTEGER", "Entities the server reported."),
        done=("BOOLEAN", "Whether the step is finished."), resolved_id=("TEXT", "MBID a redirect resolved to."),
        status=("TEXT", "Step status."), updated_at=("TIMESTAMP", "When it last moved.")), kind=INTERNAL),
    "harvest_plan": Table("Internal: the keys of each harvest command, kept until every one is done, so that "
                          "refresh or a rerun finishes an interrupted command.", _columns(
        run_id=("INTEGER", "Run of the command (harvest_run.id)."), plan=("TEXT", "The plan (command and key)."),
        position=("INTEGER", "Its place among the command's keys."),
        done=("BOOLEAN", "Whether this key is harvested (or gone, or refused).")), kind=INTERNAL),
    # views (harvester/views.py): rows marked gone are left out, as in `mbharvest stats`
    "recording_with_isrcs": Table("Each recording not marked gone, with its length as m:ss and its ISRCs.", _columns(
        id=("TEXT", "MBID of the recording."), title=("TEXT", "Title."), artist_credit=_CREDIT,
        length_ms=("INTEGER", "Length in milliseconds."), length=("TEXT", "Length as m:ss (NULL when unknown)."),
        first_release_date=("PARTIAL_DATE", "Date of the earliest release with this recording."),
        video=("BOOLEAN", "Whether it is a video."), disambiguation=("TEXT", "Comment telling apart recordings."),
        isrc_count=("INTEGER", "Number of ISRCs."),
        isrcs=("TEXT", "Its ISRCs, sorted, space separated (the first 1,000).")),
        view=True, facets=("video", "isrc_count")),
    "recording_work": Table("Recordings and the works they perform (recording -> work relationships; neither "
                            "marked gone).", _columns(
                                recording_id=("TEXT", "MBID of the recording (recording.id)."),
                                work_id=("TEXT", "MBID of the work (work.id)."),
                                type=("TEXT", "Relationship type (performance)."),
                                attributes=("JSON", "Its attributes as a JSON array (live, cover, instrumental, "
                                                    "medley, partial, ...); NULL for none.")),
                            view=True, facets=("type",)),
    "entity_url": Table("Each URL relationship read from the linked entity's side (also url -> work), with the "
                        "streaming service its host belongs to (harvester/streaming.py); entities marked gone left "
                        "out.", _columns(
                            entity_type=("TEXT", "Type of the linked entity (artist, release, recording, ...)."),
                            entity_id=("TEXT", "MBID of the linked entity."),
                            type=("TEXT", "Relationship type (streaming, free streaming, wikidata, discogs, ...)."),
                            url_id=("TEXT", "MBID of the URL (url.id)."), resource=("TEXT", "The URL."),
                            host=("TEXT", "Its host, lower case."),
                            service=("TEXT", "Streaming service of the host (Spotify, Apple Music, Deezer, ...); NULL "
                                             "for any other site.")),
                        view=True, facets=("entity_type", "type", "service")),
    "releases_per_year": Table("Releases not marked gone per year of their date (partial dates count for their "
                               "year; 'unknown' without one). Claim C7.", _columns(
                                   year=("TEXT", "Four-digit year, or 'unknown'."),
                                   releases=("INTEGER", "Releases.")), view=True),
    "release_groups_per_year": Table("Release groups not marked gone per year of their first release date and "
                                     "primary type ('(none)' without one). Claim C7.", _columns(
                                         year=("TEXT", "Four-digit year, or 'unknown'."),
                                         primary_type=("TEXT", "Album, Single, EP, Broadcast, Other or (none)."),
                                         release_groups=("INTEGER", "Release groups.")),
                                     view=True, facets=("primary_type",)),
    "isrc_summary": Table("One row per distinct ISRC with a recording not marked gone: its parts and recordings. "
                          "Claim C2.", _columns(
                              isrc=("TEXT", "The ISRC."), country=("TEXT", "Characters 1-2: country code."),
                              registrant=("TEXT", "Characters 3-5: registrant code."),
                              reference_year=("INTEGER", "Characters 6-7 as a year: 20YY up to this year's YY, "
                                                         "19YY above."),
                              recordings=("INTEGER", "Recordings (not marked gone) carrying it."),
                              recording_ids=("TEXT", "Their MBIDs, sorted, space separated (the first 1,000).")),
                          view=True),
    "isrc_countries": Table("Distinct ISRCs (with a recording not marked gone) per country code, largest first. "
                            "Claim C2.", _columns(country=("TEXT", "ISRC characters 1-2."),
                                                  isrcs=("INTEGER", "Distinct ISRCs.")), view=True),
    "recording_length_histogram": Table("Recordings not marked gone with a known length, per 5-second bin "
                                        "[start_ms, end_ms); empty bins are not listed. Claim C6.", _columns(
                                            start_ms=("INTEGER", "Start of the bin (ms, included)."),
                                            end_ms=("INTEGER", "End of the bin (ms, excluded)."),
                                            recordings=("INTEGER", "Recordings.")), view=True),
}


def _summary_tables() -> dict[str, Table]:
    """The summary tables behind the views, described from their declaration in views.COUNTERS."""
    keys = {"bin": Column("INTEGER", f"length_ms / 5000 ({UNKNOWN_LENGTH_BIN}: no known length)."),
            "year": Column("TEXT", "Four-digit year, or 'unknown'."),
            "primary_type": Column("TEXT", "Primary type, or (none)."), "isrc": Column("TEXT", "The ISRC."),
            "country": Column("TEXT", "ISRC characters 1-2."), "yy": Column("TEXT", "ISRC characters 6-7.")}
    return {counter.table: Table(f"Internal: {counter.description}", {
        **{name: keys[name] for name in counter.key},
        counter.count: Column("INTEGER", f"Count of {counter.count} (rows at 0 are kept).")}, kind=INTERNAL)
        for counter in COUNTERS}


def _full_text_tables() -> dict[str, Table]:
    """SQLite FTS5 tables behind each searchable table's full-text search (store.FULL_TEXT)."""
    from harvester.store import FULL_TEXT

    found: dict[str, Table] = {}
    for name, columns in FULL_TEXT.items():
        indexed = {column: Column("TEXT", f"{name}.{column}, as indexed.") for column in columns}
        found[f"{name}_fts"] = Table(f"Internal: the full-text index of {name} ({', '.join(columns)}); "
                                     f"search with MATCH or Datasette's search box.", indexed, kind=INTERNAL)
        shadows = {
            "data": _columns(id=("INTEGER", "Record id."), block=("TEXT", "Index data (binary).")),
            "idx": _columns(segid=("INTEGER", "Segment id."), term=("TEXT", "Term prefix (binary)."),
                            pgno=("INTEGER", "Page number.")),
            "docsize": _columns(id=("INTEGER", "Row id."), sz=("TEXT", "Token counts (binary).")),
            "config": _columns(k=("TEXT", "Setting."), v=("TEXT", "Value.")),
        }
        for suffix, columns in shadows.items():
            found[f"{name}_fts_{suffix}"] = Table(f"Internal: SQLite's FTS5 storage for {name}_fts ({suffix}).",
                                                  columns, kind=INTERNAL)
    return found


DICTIONARY: dict[str, Table] = {**TABLES, **_summary_tables(), **_full_text_tables()}


def describe(table: str) -> Table | None:
    return DICTIONARY.get(table)


def licence_of(table: str) -> tuple[str, str]:
    """(licence, URL) of a table's rows."""
    entry = DICTIONARY.get(table)
    if entry is not None and entry.kind == SUPPLEMENTARY:
        return SUPPLEMENTARY_LICENSE, SUPPLEMENTARY_URL
    return CC0_LICENSE, CC0_URL
