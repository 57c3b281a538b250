"""Property tests: real MusicBrainz bodies with random fields (at any depth)
replaced by arbitrary JSON never crash the normalizer with anything but
NormalizeError, and whatever it returns can be stored."""

from __future__ import annotations

from typing import Any, Callable

import sqlite_utils
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from harvester.errors import NormalizeError
from harvester.normalize import normalize_entity, normalize_isrc_lookup, normalize_page
from harvester.store import ensure_db_shape, save
from tests.conftest import load_ws2

EXAMPLES = 100

# any JSON value: scalars (integers beyond 64 bits, NaN and infinities included), lists, objects
JSON = st.recursive(
    st.none() | st.booleans() | st.integers(min_value=-(2 ** 80), max_value=2 ** 80)
    | st.floats() | st.text(max_size=12),
    lambda children: st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3),
    max_leaves=6,
)

# body -> (fixture, normalizer(document, supplementary))
BODIES: dict[str, tuple[str, Callable[[Any, bool], Any]]] = {
    "artist lookup": ("musicbrainz-android/artist_lookup.json",
                      lambda d, s: normalize_entity("artist", d, supplementary=s)),
    "label lookup": ("musicbrainz-android/label_lookup.json",
                     lambda d, s: normalize_entity("label", d, supplementary=s)),
    "release lookup": ("musicbrainz-android/release_lookup.json",
                       lambda d, s: normalize_entity("release", d, supplementary=s)),
    "release-group lookup": ("musicbrainz-android/release-group_lookup.json",
                             lambda d, s: normalize_entity("release-group", d, supplementary=s)),
    "recording lookup": ("musicbrainz-android/recording_lookup.json",
                         lambda d, s: normalize_entity("recording", d, supplementary=s)),
    "release browse": ("hqub-musicbrainz/release-browse.json",
                       lambda d, s: normalize_page("release", d, supplementary=s).normalized),
    "recording search": ("musicbrainzws2/search/MbRecordingResult.json",
                         lambda d, s: normalize_page("recording", d, supplementary=s).normalized),
    "isrc lookup": ("fuzzbin/musicbrainz_isrc_response.json",
                    lambda d, s: normalize_isrc_lookup(d, supplementary=s)),
}


def paths(value: Any, prefix: tuple = ()) -> list[tuple]:
    """Every place in a JSON tree (the root excluded)."""
    found = []
    children = value.items() if isinstance(value, dict) else enumerate(value) if isinstance(value, list) else ()
    for key, child in children:
        found.append(prefix + (key,))
        found += paths(child, prefix + (key,))
    return found


def replaced(document: Any, path: tuple, new: Any) -> Any:
    """A copy of `document` with the value at `path` replaced (only the spine is copied)."""
    if not path:
        return new
    head, rest = path[0], path[1:]
    if isinstance(document, dict):
        return {**document, head: replaced(document[head], rest, new)}
    copy = list(document)
    copy[head] = replaced(document[head], rest, new)
    return copy


@st.composite
def mutated(draw, name: str) -> Any:
    """The named real body with 1-5 fields, anywhere, replaced by arbitrary JSON."""
    document = load_ws2(BODIES[name][0])
    for _ in range(draw(st.integers(min_value=1, max_value=5))):
        places = paths(document)
        if draw(st.booleans()):  # half the time an entity's own field or a page's shape
            places = [place for place in places if len(place) <= 3] or places
        place = places[draw(st.integers(min_value=0, max_value=len(places) - 1))]
        document = replaced(document, place, draw(JSON))
    return document


def property_test(name: str):
    database = sqlite_utils.Database(memory=True)
    ensure_db_shape(database)

    @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                            HealthCheck.data_too_large])
    @given(document=mutated(name), supplementary=st.booleans())
    def test(document, supplementary, tally):
        try:
            normalized = BODIES[name][1](document, supplementary)
            with database.atomic():
                save(database, normalized, source="property-test", fetched_at="2026-01-01T00:00:00Z")
        except NormalizeError:
            pass
        except Exception:
            tally.record(SCENARIO, runs=1, failures=1)
            raise
        tally.record(SCENARIO, runs=1, failures=0)

    return test


SCENARIO = "normalizer + save: real bodies with 1-5 fields replaced by arbitrary JSON (hypothesis)"
for _name in BODIES:
    globals()[f"test_{_name.replace(' ', '_').replace('-', '_')}_survives_arbitrary_json"] = property_test(_name)


def test_numbers_sqlite_cannot_hold_are_normalize_errors():
    """Found while writing the properties above: these used to crash save() or the normalizer."""
    recording = load_ws2("musicbrainz-android/recording_lookup.json")
    for length in (2 ** 80, -(2 ** 64), 1e308, "inf", float("nan"), "1e400"):
        try:
            normalize_entity("recording", {**recording, "length": length})
        except NormalizeError as exc:
            assert "length" in str(exc)
        else:
            raise AssertionError(f"length {length!r} was accepted")
    artist = load_ws2("musicbrainz-android/artist_lookup.json")
    for value in ([], "", "high", float("inf")):
        try:
            normalize_entity("artist", {**artist, "rating": {"value": value}}, supplementary=True)
        except NormalizeError as exc:
            assert "rating.value" in str(exc)
        else:
            raise AssertionError(f"rating {value!r} was accepted")
    assert normalize_entity("recording", {**recording, "length": " 2e5 "}).rows["recording"][0]["length_ms"] == 200000
