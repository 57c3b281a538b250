"""The normalizer against real MusicBrainz bodies: expected values are read
from the bodies themselves (literally or by an independent walk of the JSON)."""

import copy

import pytest

from harvester.errors import NormalizeError
from harvester.normalize import (
    SUPPLEMENTARY_LICENCE,
    normalize_entity,
    normalize_isrc,
    normalize_isrc_lookup,
    normalize_page,
    page_items,
    redirect_row,
)
from tests.conftest import load_ws2, ws2_index

EDITED_NULL_COPIES = {"picard/artist_null.json", "picard/country_null.json", "picard/recording_null.json",
                      "picard/release_group_null.json", "picard/release_null.json"}


def normalize_body(entity, kind, body):
    if kind == "isrc":
        return normalize_isrc_lookup(body)
    if kind in ("browse", "search"):
        return normalize_page(entity, body).normalized
    return normalize_entity(entity, body)


def rows_by_id(normalized, table):
    return {row["id"]: row for row in normalized.rows[table]}


@pytest.mark.parametrize("entry", ws2_index(), ids=lambda e: e["path"])
def test_every_real_body_normalizes(entry):
    body = load_ws2(entry["path"])
    if entry["path"] in EDITED_NULL_COPIES:
        # Picard's hand-edited copies have "id": null: nothing to key the
        # entity on, so a typed error naming the document, never a crash.
        with pytest.raises(NormalizeError, match="has no id"):
            normalize_body(entry["entity"], entry["kind"], body)
        return
    out = normalize_body(entry["entity"], entry["kind"], body)
    assert sum(len(rows) for rows in out.rows.values()) > 0


@pytest.mark.parametrize("path,entity", [
    ("picard/artist_null.json", "artist"), ("picard/country_null.json", "release"),
    ("picard/recording_null.json", "recording"), ("picard/release_group_null.json", "release-group"),
    ("picard/release_null.json", "release"),
])
def test_nulls_everywhere_else_become_null_columns(path, entity):
    body = load_ws2(path)
    body["id"] = "00000000-0000-4000-8000-000000000001"
    out = normalize_entity(entity, body)
    table = entity.replace("-", "_")
    row = out.rows[table][0]
    assert row["id"] == body["id"]
    text_columns = {"name", "sort_name", "title", "status", "date", "country", "disambiguation", "type"}
    assert all(row[column] is None for column in text_columns & set(row))


def test_release_lookup_with_isrcs_on_every_track():
    out = normalize_entity("release", load_ws2("musicbrainz-android/release_lookup.json"))
    release = rows_by_id(out, "release")["94ad3a58-a1cc-46a3-acf4-9cb6c1d6f032"]
    assert release == {
        "id": "94ad3a58-a1cc-46a3-acf4-9cb6c1d6f032", "title": "+", "status": "Official", "date": "2011-09-09",
        "country": "XE", "barcode": "5052498646524", "disambiguation": "", "packaging": "Jewel Case",
        "release_group_id": "05ce100c-eddf-4967-8d7e-33fc0883fe39", "artist_credit": "Ed Sheeran",
        "language": "eng", "script": "Latn",
    }
    assert out.rows["medium"] == [{"release_id": release["id"], "position": 1, "format": "CD", "track_count": 12,
                                   "title": ""}]
    tracks = sorted(out.rows["track"], key=lambda t: t["position"])
    assert [(t["position"], t["title"], t["length_ms"]) for t in tracks[:3]] == [
        (1, "The A Team", 261000), (2, "Drunk", 199000), (3, "U.N.I.", 229000)]
    assert tracks[11]["recording_id"] == "abe26875-6d79-40af-b26d-61093b7cad70"
    assert {t["medium_position"] for t in tracks} == {1}
    recordings = rows_by_id(out, "recording")
    assert recordings["17eb8cd6-7bb0-4579-90af-dc38c1b3fc6a"]["length_ms"] == 260506  # track says 261000
    pairs = {(p["recording_id"], p["isrc"]) for p in out.rows["recording_isrc"]}
    assert len(pairs) == 12
    assert ("17eb8cd6-7bb0-4579-90af-dc38c1b3fc6a", "GBAHS1100095") in pairs
    assert {isrc for _, isrc in pairs} == {"GBAHS1100095"} | {f"GBAHS1100{n}" for n in range(199, 210)}
    assert out.rows["release_label"] == [{"release_id": release["id"],
                                         "label_id": "a8bea33e-67af-424a-a734-898e2dc437ed",
                                         "catalog_number": "5052498646524"}]
    assert rows_by_id(out, "label")["a8bea33e-67af-424a-a734-898e2dc437ed"]["label_code"] == "2648"
    assert rows_by_id(out, "release_group")["05ce100c-eddf-4967-8d7e-33fc0883fe39"]["primary_type"] == "Album"
    assert out.invalid_isrcs == []


def test_recording_search_of_100_lengths_and_isrcs():
    body = load_ws2("musicbrainzws2/search/MbRecordingResult.json")
    page = normalize_page("recording", body)
    assert (page.total, page.offset, page.item_count) == (4645, 0, 100)
    recordings = rows_by_id(page.normalized, "recording")
    expected_lengths = {item["id"]: item.get("length") for item in body["recordings"]}
    assert len(recordings) == len(expected_lengths) == 100
    assert {rid: row["length_ms"] for rid, row in recordings.items()} == expected_lengths
    expected_pairs = {(item["id"], code.upper()) for item in body["recordings"] for code in item.get("isrcs", [])}
    pairs = {(p["recording_id"], p["isrc"]) for p in page.normalized.rows["recording_isrc"]}
    assert pairs == expected_pairs
    assert len({isrc for _, isrc in pairs}) == 29


def test_isrc_lookup_pairs_the_code_with_every_recording():
    out = normalize_isrc_lookup(load_ws2("fuzzbin/musicbrainz_isrc_response.json"))
    recordings = rows_by_id(out, "recording")
    assert recordings["5fb524f1-8cc8-4c04-a921-e34c0a911ea7"] == {
        "id": "5fb524f1-8cc8-4c04-a921-e34c0a911ea7", "title": "Smells Like Teen Spirit", "length_ms": 301133,
        "first_release_date": "1991-09-10", "video": 0, "disambiguation": "", "artist_credit": "Nirvana"}
    assert recordings["780825bf-3a65-4fc9-8668-c712b6670ce6"]["length_ms"] == 300893
    assert sorted((p["recording_id"], p["isrc"]) for p in out.rows["recording_isrc"]) == [
        ("5fb524f1-8cc8-4c04-a921-e34c0a911ea7", "USGF19942501"),
        ("780825bf-3a65-4fc9-8668-c712b6670ce6", "USGF19942501")]
    # the lookup carries no isrcs list per recording: other ISRCs are not cleared
    assert not [r for r in out.replace if r[0] == "recording_isrc"]


def test_browse_page_counts_and_items():
    body = load_ws2("hqub-musicbrainz/release-browse.json")
    page = normalize_page("release", body)
    assert (page.total, page.offset, page.item_count) == (1029, 0, 10)
    assert list(rows_by_id(page.normalized, "release")) == [r["id"] for r in body["releases"]]


def test_length_as_a_string():
    out = normalize_entity("recording", load_ws2("inkstak-musicbrainz/recording-01-lookup-200.json"))
    assert out.rows["recording"] == [{"id": "d6243d55-bb4f-4518-9c1c-d507a5d3843a", "title": "Rot",
                                      "length_ms": 272266, "video": None, "disambiguation": ""}]


def test_release_with_several_media():
    out = normalize_entity("release", load_ws2("picard/release_multidisc.json"))
    assert [(m["position"], m["format"], m["track_count"]) for m in out.rows["medium"]] == [
        (1, "CD", 4), (2, "DVD-Video", 3)]
    assert sorted(t["medium_position"] for t in out.rows["track"]) == [1, 1, 1, 1, 2, 2, 2]


def test_legacy_singular_list_keys_in_old_search_json():
    body = load_ws2("inkstak-musicbrainz/recording-03-search-200.json")
    assert "recordings" not in body and len(body["recording"]) == 25
    page = normalize_page("recording", body)
    assert page.item_count == 25 and len(rows_by_id(page.normalized, "recording")) == 25
    # its releases' media use the singular "track" too, and are partial (inside a recording)
    assert page.normalized.rows["track"]
    assert not [r for r in page.normalized.replace if r[0] in ("track", "medium")]


@pytest.mark.parametrize("raw,expected", [
    ("GBAHS1100095", "GBAHS1100095"), ("gb-ahs-11-00095", "GBAHS1100095"), ("US S1Z 99 00001", "USS1Z9900001"),
    ("GBAHS110009", None), ("1BAHS1100095", None), ("GBAHS11000X5", None), ("", None), (None, None), (42, None),
    ("GBAHS1100095' OR 1=1", None),
])
def test_isrc_validation(raw, expected):
    assert normalize_isrc(raw) == expected


def test_invalid_isrcs_are_counted_and_kept_out():
    doc = {"id": "d6243d55-bb4f-4518-9c1c-d507a5d3843a", "title": "x",
           "isrcs": ["gb-ahs-11-00095", "NOT-AN-ISRC", "GBAHS1100095"]}
    out = normalize_entity("recording", doc)
    assert out.rows["recording_isrc"] == [{"recording_id": doc["id"], "isrc": "GBAHS1100095"}]
    assert out.invalid_isrcs == [(doc["id"], "NOT-AN-ISRC")]


def test_licence_filter_drops_supplementary_by_default():
    body = load_ws2("hqub-musicbrainz/artist-get.json")
    assert body["tags"] and body["genres"] and body["rating"]
    out = normalize_entity("artist", body)
    assert not {"tag", "rating", "annotation"} & set(out.rows)
    kept = out.documents[0]["json"]
    assert '"tags"' not in kept and '"genres"' not in kept and '"rating"' not in kept
    assert out.documents[0]["licence"] == "CC0-1.0"


def test_licence_filter_keeps_and_marks_supplementary_on_opt_in():
    body = load_ws2("hqub-musicbrainz/artist-get.json")
    out = normalize_entity("artist", body, supplementary=True)
    tags = {(t["kind"], t["name"]) for t in out.rows["tag"] if t["entity_id"] == body["id"]}
    assert tags == {("tag", t["name"]) for t in body["tags"]} | {("genre", g["name"]) for g in body["genres"]}
    assert {t["licence"] for t in out.rows["tag"]} == {SUPPLEMENTARY_LICENCE}
    assert out.rows["rating"][0]["value"] == float(body["rating"]["value"])
    assert out.documents[0]["licence"].endswith(SUPPLEMENTARY_LICENCE)


def test_release_inside_a_recording_never_replaces_media_or_tracks():
    body = load_ws2("musicbrainz-android/recording_lookup.json")
    out = normalize_entity("recording", body)
    assert out.rows["track"] and all(t["recording_id"] == body["id"] for t in out.rows["track"])
    assert not [scope for scope in out.replace if scope[0] in ("track", "medium")]


def test_artist_credit_as_printed_and_its_names():
    body = load_ws2("picard/recording_multi_artists_1.json")
    out = normalize_entity("recording", body)
    printed = "".join(c["name"] + c["joinphrase"] for c in body["artist-credit"])
    assert out.rows["recording"][0]["artist_credit"] == printed
    names = [r for r in out.rows["artist_credit_name"] if r["entity_type"] == "recording"]
    assert [(r["position"], r["artist_id"], r["join_phrase"]) for r in names] == [
        (i, c["artist"]["id"], c["joinphrase"]) for i, c in enumerate(body["artist-credit"])]


@pytest.mark.parametrize("mutate,message", [
    (lambda d: d.update(title=["a list"]), "title should be text"),
    (lambda d: d.update(length={"ms": 1}), "length should be a number"),
    (lambda d: d.update(isrcs="GBAHS1100095"), "isrcs should be a list"),
    (lambda d: d.update({"artist-credit": {"name": "x"}}), "artist-credit should be a list"),
    (lambda d: d.update(video="maybe"), "video should be true or false"),
])
def test_wrong_shapes_give_typed_errors_naming_the_document(mutate, message):
    doc = copy.deepcopy(load_ws2("inkstak-musicbrainz/recording-01-lookup-200.json"))
    mutate(doc)
    with pytest.raises(NormalizeError, match=message) as caught:
        normalize_entity("recording", doc)
    assert "recording d6243d55-bb4f-4518-9c1c-d507a5d3843a" in str(caught.value)


@pytest.mark.parametrize("doc", [None, [], "text", 3])
def test_non_object_documents_give_typed_errors(doc):
    with pytest.raises(NormalizeError):
        normalize_entity("artist", doc)
    with pytest.raises(NormalizeError):
        page_items("artist", doc)


def test_unknown_entity_type_is_a_typed_error():
    with pytest.raises(NormalizeError, match="unknown entity type"):
        normalize_entity("genre", {"id": "x"})


def test_redirect_row_only_when_ids_differ():
    assert redirect_row("artist", "AAA", "aaa") is None
    assert redirect_row("artist", "old", "new") == {"old_id": "old", "new_id": "new", "entity_type": "artist"}
