"""The emulator driven by a client this project did not write: musicbrainzngs, in JSON mode.

Lookups with includes, browses, ISRC lookups and field searches (the way
musicbrainzngs builds them: lower-cased, escaped, in parentheses) must return
what the corpus holds; the truth is read from the corpus's own records, not
from the emulator's renderer.
"""

from __future__ import annotations

import warnings

import musicbrainzngs
import musicbrainzngs.musicbrainz as mb
import pytest

from harvester.emulator import Emulator

from tests.conftest import CONTACT

SETTINGS = ("hostname", "https", "ws_format", "parser_fun", "_useragent", "_client", "do_rate_limit",
            "limit_interval", "limit_requests")


@pytest.fixture
def ngs(corpus, monkeypatch):
    """musicbrainzngs pointed at an emulator over the session corpus; its global settings restored after."""
    for name in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)  # urllib would send 127.0.0.1 through a proxy from the environment
    saved = {name: getattr(mb, name) for name in SETTINGS}
    with Emulator(corpus) as emu, warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "the json format is non-official"
        musicbrainzngs.set_useragent("mbharvest-tests", "1", CONTACT)
        musicbrainzngs.set_format("json")
        musicbrainzngs.set_hostname(emu.url.removeprefix("http://"), use_https=False)
        musicbrainzngs.set_rate_limit(False)
        try:
            yield emu
        finally:
            for name, value in saved.items():
                setattr(mb, name, value)


def credited(entity: dict) -> list[str]:
    return [part["artist"] for part in entity["artist-credit"]]


def artist_with_many_recordings(corpus) -> str:
    return max(corpus.artists, key=lambda a: sum(a in credited(r) for r in corpus.recordings.values()))


def test_release_lookup_with_includes(ngs, corpus):
    release_id, release = next((i, r) for i, r in corpus.releases.items() if r["label-info"])
    body = musicbrainzngs.get_release_by_id(
        release_id, includes=["recordings", "isrcs", "artist-credits", "labels", "release-groups"])
    assert body["id"] == release_id and body["title"] == release["title"] and body["status"] == release["status"]
    assert [p["artist"]["id"] for p in body["artist-credit"]] == credited(release)
    assert body["release-group"]["id"] == release["release-group"]
    assert [info["label"]["id"] for info in body["label-info"]] == [info["label"] for info in release["label-info"]]
    assert [[t["id"] for t in m["tracks"]] for m in body["media"]] == \
        [[t["id"] for t in m["tracks"]] for m in release["media"]]
    for medium, stored in zip(body["media"], release["media"]):
        for track, stored_track in zip(medium["tracks"], stored["tracks"]):
            recording = corpus.recordings[stored_track["recording"]]
            assert track["recording"]["id"] == recording["id"]
            assert track["recording"]["isrcs"] == recording["isrcs"]
            assert track["recording"]["length"] == recording["length"]


def test_recording_lookup_and_merged_ids(ngs, corpus):
    recording_id, recording = next((i, r) for i, r in corpus.recordings.items() if len(r["isrcs"]) == 2)
    body = musicbrainzngs.get_recording_by_id(recording_id, includes=["isrcs", "artist-credits", "releases"])
    assert body["isrcs"] == recording["isrcs"] and body["title"] == recording["title"]
    assert [p["artist"]["id"] for p in body["artist-credit"]] == credited(recording)
    on = {i for i, r in corpus.releases.items() for m in r["media"] for t in m["tracks"]
          if t["recording"] == recording_id}
    assert {r["id"] for r in body["releases"]} == on
    old, new = next(iter(corpus.redirects["artist"].items()))
    assert musicbrainzngs.get_artist_by_id(old)["id"] == new  # its urllib follows the 301
    assert [e["status"] for e in ngs.requests[-2:]] == [301, 200]
    with pytest.raises(musicbrainzngs.ResponseError) as raised:
        musicbrainzngs.get_label_by_id("5b11f4ce-a62d-471e-81fc-a69a8278c7da")
    assert raised.value.cause.code == 404


def test_browses_page_through_what_the_corpus_holds(ngs, corpus):
    artist = artist_with_many_recordings(corpus)
    truth = {i for i, r in corpus.recordings.items() if artist in credited(r)}
    assert len(truth) > 100
    seen, offset = [], 0
    while True:
        page = musicbrainzngs.browse_recordings(artist=artist, includes=["isrcs"], limit=100, offset=offset)
        assert page["recording-count"] == len(truth)
        if not page["recordings"]:
            break
        seen += [r["id"] for r in page["recordings"]]
        assert all(r["isrcs"] == corpus.recordings[r["id"]]["isrcs"] for r in page["recordings"])
        offset += len(page["recordings"])
    assert len(seen) == len(truth) and set(seen) == truth
    albums = {i for i, r in corpus.releases.items() if artist in credited(r)
              and "album" in {corpus.release_groups[r["release-group"]]["primary-type"].lower()}
              | {t.lower() for t in corpus.release_groups[r["release-group"]]["secondary-types"]}}
    page = musicbrainzngs.browse_releases(artist=artist, release_type=["album"], limit=100)
    assert {r["id"] for r in page["releases"]} == albums and page["release-count"] == len(albums)
    groups = musicbrainzngs.browse_release_groups(artist=artist, limit=100)
    assert {g["id"] for g in groups["release-groups"]} == \
        {i for i, g in corpus.release_groups.items() if artist in credited(g)}


def test_isrc_lookups(ngs, corpus):
    code = next(c for r in corpus.recordings.values() for c in r["isrcs"]
                if sum(c in other["isrcs"] for other in corpus.recordings.values()) >= 2)
    body = musicbrainzngs.get_recordings_by_isrc(code, includes=["artists", "isrcs"])
    assert body["isrc"] == code
    assert {r["id"] for r in body["recordings"]} == {i for i, r in corpus.recordings.items() if code in r["isrcs"]}
    assert all(r["artist-credit"] and code in r["isrcs"] for r in body["recordings"])


def test_field_searches(ngs, corpus):
    code, carriers = next((c, ids) for c, ids in corpus.index.recordings_by_isrc.items() if len(ids) >= 2)
    found = musicbrainzngs.search_recordings(isrc=code)  # sent as isrc:(<code in lower case>)
    assert {r["id"] for r in found["recordings"]} == set(carriers) and found["count"] == len(carriers)
    artist = artist_with_many_recordings(corpus)
    truth = {i for i, r in corpus.recordings.items() if artist in credited(r)}
    by_artist = musicbrainzngs.search_recordings(arid=artist, limit=100)  # the MBID's hyphens escaped
    assert by_artist["count"] == len(truth) and {r["id"] for r in by_artist["recordings"]} <= truth
    strict = musicbrainzngs.search_recordings(arid=artist, isrc=code, strict=True)  # joined by AND
    assert {r["id"] for r in strict["recordings"]} == truth & set(carriers)
    release_id, release = next(iter(corpus.releases.items()))
    releases = musicbrainzngs.search_releases(reid=release_id)
    assert [r["id"] for r in releases["releases"]] == [release_id]
    title = corpus.recordings[carriers[0]]["title"]
    by_title = musicbrainzngs.search_recordings(recording=title, strict=True)  # recording:"<title>"
    assert carriers[0] in {r["id"] for r in by_title["recordings"]}
    assert all(title.lower() in r["title"].lower() for r in by_title["recordings"])
    name = corpus.artists[artist]["name"]
    artists = musicbrainzngs.search_artists(artist=name, strict=True)
    assert artist in {a["id"] for a in artists["artists"]}
