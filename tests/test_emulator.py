"""The emulator serves WS/2 the way the real service does: shapes, paging, the 500-track cut, includes."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time

import pytest
import requests

from harvester.emulator import Corpus, Emulator, generate_corpus
from harvester.emulator.corpus import ISRC_RE, MBID_RE
from harvester.emulator.render import cut_to_track_budget
from harvester.emulator.search import parse_query

from tests.conftest import CONTACT


def get(emu: Emulator, path: str, **params) -> requests.Response:
    return requests.get(emu.url + path, params={**params, "fmt": "json"}, headers={"User-Agent": CONTACT}, timeout=5)


def prolific_artist(corpus: Corpus) -> str:
    return next(iter(corpus.artists))


# ---- generator ----


def test_generator_is_deterministic_by_seed():
    one, again, other = generate_corpus(5, artists=6), generate_corpus(5, artists=6), generate_corpus(6, artists=6)
    assert one == again
    assert one.recordings != other.recordings


def test_generator_plants_the_hard_cases(corpus):
    index = corpus.index
    silent = list(corpus.artists)[-1]
    assert silent not in index.releases_by_artist
    assert any(rid not in index.releases_by_recording for rid in corpus.recordings)  # a recording on no release
    prolific = prolific_artist(corpus)
    assert sum(index.track_counts[r] for r in index.releases_by_artist[prolific]) > 500
    assert any(len(ids) >= 2 for ids in index.recordings_by_isrc.values())  # an ISRC on two recordings
    counts = {len(rec["isrcs"]) for rec in corpus.recordings.values()}
    assert {0, 1, 2} <= counts
    assert all(ISRC_RE.match(code) for code in index.recordings_by_isrc)
    assert any(len(rec["artist-credit"]) == 2 and rec["artist-credit"][0]["joinphrase"] == " feat. "
               for rec in corpus.recordings.values())
    assert any(rec["length"] is None for rec in corpus.recordings.values())
    dates = {release["date"] for release in corpus.releases.values()}
    assert "" in dates and any(re.fullmatch(r"\d{4}", d) for d in dates) and any(re.fullmatch(r"\d{4}-\d\d", d) for d in dates)
    assert any(not name.isascii() for name in (a["name"] for a in corpus.artists.values()))
    for release in corpus.releases.values():
        assert 1 <= len(release["media"]) <= 3
        assert all(8 <= len(m["tracks"]) <= 20 for m in release["media"])
    assert all(MBID_RE.match(mbid) for mbid in corpus.recordings)
    assert corpus.redirects["artist"] and corpus.redirects["recording"]


def test_generator_is_fast():
    started = time.perf_counter()
    corpus = generate_corpus(3, artists=250)
    assert len(corpus.recordings) > 15_000
    assert time.perf_counter() - started < 5


# ---- corpus from real documents ----


def test_real_release_contributes_everything_below_it(real_corpus):
    release = real_corpus.releases["94ad3a58-a1cc-46a3-acf4-9cb6c1d6f032"]
    assert release["release-group"] in real_corpus.release_groups
    tracks = [t for m in release["media"] for t in m["tracks"]]
    assert tracks and all(t["recording"] in real_corpus.recordings for t in tracks)
    assert all(info["label"] in real_corpus.labels for info in release["label-info"] if info["label"])
    assert all(part["artist"] in real_corpus.artists for part in release["artist-credit"])
    assert any(real_corpus.recordings[t["recording"]]["isrcs"] for t in tracks)


def test_real_corpus_served(real_corpus):
    with Emulator(real_corpus) as emu:
        body = get(emu, "/ws/2/release/94ad3a58-a1cc-46a3-acf4-9cb6c1d6f032",
                   inc="recordings isrcs artist-credits labels release-groups").json()
        assert body["media"][0]["tracks"][0]["recording"]["id"]
        assert "release-group" in body and "label-info" in body
        artist = body["artist-credit"][0]["artist"]["id"]
        page = get(emu, "/ws/2/recording", artist=artist, limit=100).json()
        assert page["recording-count"] >= len(body["media"][0]["tracks"]) > 0


def test_redirects_from_documents():
    corpus = Corpus.from_documents(
        [("artist", {"id": "11111111-1111-4111-8111-111111111111", "name": "Kept", "sort-name": "Kept"})],
        redirects={"artist": {"22222222-2222-4222-8222-222222222222": "11111111-1111-4111-8111-111111111111"}},
    )
    with Emulator(corpus) as emu:
        assert get(emu, "/ws/2/artist/22222222-2222-4222-8222-222222222222").json()["name"] == "Kept"


# ---- lookups, errors ----


def test_lookup_errors(emulator):
    response = get(emulator, "/ws/2/artist/5b11f4ce-a62d-471e-81fc-a69a8278c7da")
    assert response.status_code == 404 and response.json() == {"error": "Not Found"}
    response = get(emulator, "/ws/2/artist/nope")
    assert response.status_code == 400 and response.json() == {"error": "Invalid mbid."}
    assert get(emulator, "/ws/2/isrc/XX").status_code == 400
    assert get(emulator, "/ws/2/isrc/GBAAA0000000").status_code == 404
    assert get(emulator, "/ws/2/artist/5b11f4ce-a62d-471e-81fc-a69a8278c7da", inc="nonsense").status_code == 400


def test_includes_honoured(emulator, corpus):
    release_id = next(iter(corpus.releases))
    bare = get(emulator, f"/ws/2/release/{release_id}").json()
    assert not {"media", "artist-credit", "label-info", "release-group"} & set(bare)
    media = get(emulator, f"/ws/2/release/{release_id}", inc="media").json()
    assert media["media"] and all("tracks" not in m and m["track-count"] >= 8 for m in media["media"])
    full = get(emulator, f"/ws/2/release/{release_id}", inc="recordings artist-credits labels release-groups").json()
    track = full["media"][0]["tracks"][0]
    assert set(track) == {"id", "number", "position", "title", "length", "recording"}
    assert "artist-credit" in track["recording"] and "isrcs" not in track["recording"]
    assert full["artist-credit"][0]["artist"]["sort-name"]
    assert "primary-type" in full["release-group"] and "secondary-types" in full["release-group"]
    with_isrcs = get(emulator, f"/ws/2/release/{release_id}", inc="recordings isrcs").json()
    assert "isrcs" in with_isrcs["media"][0]["tracks"][0]["recording"]
    assert "artist-credit" not in with_isrcs["media"][0]["tracks"][0]["recording"]
    recording = get(emulator, f"/ws/2/recording/{next(iter(corpus.recordings))}").json()
    assert set(recording) == {"id", "title", "length", "video", "disambiguation", "first-release-date"}


def test_isrc_lookup_returns_every_recording(emulator, corpus):
    code, ids = next((c, ids) for c, ids in corpus.index.recordings_by_isrc.items() if len(ids) >= 2)
    body = get(emulator, f"/ws/2/isrc/{code}", inc="isrcs").json()
    assert body["isrc"] == code and {r["id"] for r in body["recordings"]} == set(ids)


# ---- browse ----


def test_browse_paging(emulator, corpus):
    artist = prolific_artist(corpus)
    expected = corpus.index.recordings_by_artist[artist]
    seen, offset = [], 0
    while True:
        page = get(emulator, "/ws/2/recording", artist=artist, limit=37, offset=offset).json()
        assert page["recording-count"] == len(expected) and page["recording-offset"] == offset
        if not page["recordings"]:
            break
        seen += [r["id"] for r in page["recordings"]]
        offset += len(page["recordings"])
    assert seen == expected
    assert len(get(emulator, "/ws/2/recording", artist=artist).json()["recordings"]) == 25
    assert len(get(emulator, "/ws/2/recording", artist=artist, limit=1000).json()["recordings"]) == 100


def test_featured_recordings_browse_under_the_guest(emulator, corpus):
    featured = next(r for r in corpus.recordings.values() if len(r["artist-credit"]) == 2)
    guest = featured["artist-credit"][1]["artist"]
    ids, offset, count = [], 0, 1
    while offset < count:
        page = get(emulator, "/ws/2/recording", artist=guest, limit=100, offset=offset, inc="artist-credits").json()
        count = page["recording-count"]
        ids += [r["id"] for r in page["recordings"]]
        offset += len(page["recordings"])
    assert featured["id"] in ids
    credit = get(emulator, f"/ws/2/recording/{featured['id']}", inc="artist-credits").json()["artist-credit"]
    assert "".join(part["name"] + part["joinphrase"] for part in credit).count(" feat. ") == 1


def test_release_group_browse_by_type(emulator, corpus):
    artist = next(iter(corpus.artists))
    groups = get(emulator, "/ws/2/release-group", artist=artist, type="album", limit=100).json()["release-groups"]
    assert groups and all("album" in {g["primary-type"].lower()} | {t.lower() for t in g["secondary-types"]}
                          for g in groups)


def test_release_browse_with_recordings_is_cut_at_500_tracks(emulator, corpus):
    artist = prolific_artist(corpus)
    expected = corpus.index.releases_by_artist[artist]
    seen, offset, cut = [], 0, False
    while offset < len(expected):
        page = get(emulator, "/ws/2/release", artist=artist, limit=100, offset=offset, inc="recordings").json()
        releases = page["releases"]
        tracks = sum(len(m["tracks"]) for r in releases for m in r["media"])
        assert releases and (tracks <= 500 or len(releases) == 1)
        assert all(len(m["tracks"]) == m["track-count"] for r in releases for m in r["media"])  # never partial
        cut |= len(releases) < min(100, len(expected) - offset)
        seen += [r["id"] for r in releases]
        offset += len(releases)
    assert cut and seen == expected
    without = get(emulator, "/ws/2/release", artist=artist, limit=100, inc="media").json()
    assert len(without["releases"]) == min(100, len(expected))


def test_cut_keeps_one_oversized_release():
    counts = {"a": 600, "b": 10, "c": 300, "d": 250}
    assert cut_to_track_budget(["a", "b"], counts, 500) == ["a"]
    assert cut_to_track_budget(["b", "c", "d"], counts, 500) == ["b", "c"]


def test_release_browse_by_label_group_recording_and_filters(emulator, corpus):
    release = next(r for r in corpus.releases.values() if r["label-info"])
    label = release["label-info"][0]["label"]
    assert release["id"] in [r["id"] for r in get(emulator, "/ws/2/release", label=label, limit=100).json()["releases"]]
    group = get(emulator, "/ws/2/release-group", release=release["id"]).json()
    assert group["release-group-count"] == 1 and group["release-groups"][0]["id"] == release["release-group"]
    by_group = get(emulator, "/ws/2/release", **{"release-group": release["release-group"]}).json()
    assert release["id"] in [r["id"] for r in by_group["releases"]]
    recording = release["media"][0]["tracks"][0]["recording"]
    assert get(emulator, "/ws/2/release", recording=recording).json()["release-count"] >= 1
    official = get(emulator, "/ws/2/release", artist=prolific_artist(corpus), status="official", limit=100).json()
    assert all(r["status"] == "Official" for r in official["releases"])
    assert get(emulator, "/ws/2/release", artist="x").status_code == 400
    assert get(emulator, "/ws/2/release").status_code == 400


# ---- search ----


def test_recording_search(emulator, corpus):
    artist = prolific_artist(corpus)
    body = get(emulator, "/ws/2/recording", query=f"arid:{artist}", limit=10, offset=5).json()
    assert body["count"] == len(corpus.index.recordings_by_artist[artist]) and body["offset"] == 5
    assert len(body["recordings"]) == 10 and all(r["score"] == 100 for r in body["recordings"])
    assert set(body) == {"created", "count", "offset", "recordings"}
    title = next(iter(corpus.recordings.values()))["title"]
    quoted = get(emulator, "/ws/2/recording", query=f'recording:"{title}"').json()
    assert quoted["count"] >= 1 and all(title.lower() in r["title"].lower() for r in quoted["recordings"])
    assert get(emulator, "/ws/2/recording", query=title.split()[0].lower()).json()["count"] >= quoted["count"]
    assert get(emulator, "/ws/2/recording", query="weird:x").status_code == 400
    assert parse_query('recording:"a b" AND isrc:X free') == [("recording", "a b"), ("isrc", "X"), ("", "free")]


# ---- rate limit, faults, log ----


def test_rate_limit_refuses_and_counts_refusals(corpus, tmp_path):
    log = tmp_path / "requests.jsonl"
    with Emulator(corpus, rate=2.0, log_path=log) as emu:
        statuses = [get(emu, f"/ws/2/artist/{prolific_artist(corpus)}") for _ in range(3)]
        assert [r.status_code for r in statuses] == [200, 503, 503]
        assert statuses[1].headers["Retry-After"] == "1"
        assert "exceeding the allowable rate limit" in statuses[1].json()["error"]
        time.sleep(1.6)  # refused requests counted: two intervals owed, then clear
        assert get(emu, f"/ws/2/artist/{prolific_artist(corpus)}").status_code == 200
        entries = [json.loads(line) for line in log.read_text().splitlines()]
    assert [e["status"] for e in entries] == [200, 503, 503, 200]
    assert {"n", "time", "monotonic", "path", "status", "user_agent", "remote"} <= set(entries[0])
    assert entries[0]["user_agent"] == CONTACT and entries[0]["remote"] == "127.0.0.1"


def test_unknown_fault_refused(corpus):
    with pytest.raises(ValueError):
        Emulator(corpus, faults={1: "explode"})


def test_command_line_entry(tmp_path):
    log = tmp_path / "log.jsonl"
    process = subprocess.Popen(
        [sys.executable, "-m", "harvester.emulator", "--seed", "1", "--artists", "4", "--port", "0",
         "--rate", "0", "--log", str(log), "--fault", "2=500"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        url = process.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        artist = next(iter(generate_corpus(1, artists=4).artists))
        assert requests.get(f"{url}/ws/2/artist/{artist}?fmt=json", timeout=5).json()["id"] == artist
        assert requests.get(f"{url}/ws/2/artist/{artist}?fmt=json", timeout=5).status_code == 500
    finally:
        process.terminate()
        process.wait(timeout=10)
    assert [json.loads(line)["status"] for line in log.read_text().splitlines()] == [200, 500]
