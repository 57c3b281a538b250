"""The emulator serves WS/2 the way the real service does: shapes, paging, the 500-track cut, includes,
301s for merged MBIDs, the proxy's 503s, error bodies, every field of a real body passed through."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

import harvester

from harvester.emulator import Corpus, Emulator, generate_corpus
from harvester.emulator.corpus import ISRC_RE, MBID_RE, ref
from harvester.emulator.exchange import Reply, Request
from harvester.emulator.render import cut_to_track_budget
from harvester.emulator.search import Term, parse_query

from tests.conftest import CONTACT

HELP = "For usage, please see: https://musicbrainz.org/development/mmd"


def get(emu: Emulator, path: str, **params) -> requests.Response:
    return requests.get(emu.url + path, params={**params, "fmt": "json"}, headers={"User-Agent": CONTACT}, timeout=5)


def prolific_artist(corpus: Corpus) -> str:
    return next(iter(corpus.artists))


def windows(ids: list[str], sizes: list[int]) -> list[list[str]]:
    """ids cut into consecutive pages of the given sizes, each sorted by MBID (as the service sorts a page)."""
    pages, start = [], 0
    for size in sizes:
        pages.append(sorted(ids[start:start + size]))
        start += size
    return pages


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
    assert ref(release["release-group"]) in real_corpus.release_groups
    tracks = [t for m in release["media"] for t in m["tracks"]]
    assert tracks and all(ref(t["recording"]) in real_corpus.recordings for t in tracks)
    assert all(ref(info["label"]) in real_corpus.labels for info in release["label-info"] if info["label"])
    assert all(ref(part["artist"]) in real_corpus.artists for part in release["artist-credit"])
    assert all(ref(part["artist"]) in real_corpus.artists for t in tracks for part in t.get("artist-credit", ()))
    assert any(real_corpus.recordings[ref(t["recording"])].get("isrcs") for t in tracks)


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
        response = get(emu, "/ws/2/artist/22222222-2222-4222-8222-222222222222")
        assert response.json()["name"] == "Kept"
        assert [r.status_code for r in response.history] == [301]


# ---- lookups, errors ----


def test_lookup_errors(emulator):
    response = get(emulator, "/ws/2/artist/5b11f4ce-a62d-471e-81fc-a69a8278c7da")
    assert response.status_code == 404 and response.json() == {"error": "Not Found", "help": HELP}
    response = get(emulator, "/ws/2/artist/nope")
    assert response.status_code == 400 and response.json() == {"error": "Invalid mbid.", "help": HELP}
    assert get(emulator, "/ws/2/isrc/XX").status_code == 400
    assert get(emulator, "/ws/2/isrc/GBAAA0000000").status_code == 404
    response = get(emulator, "/ws/2/artist/5b11f4ce-a62d-471e-81fc-a69a8278c7da", inc="nonsense")
    assert response.status_code == 400
    assert response.json() == {"error": "nonsense is not a valid inc parameter for the artist resource.", "help": HELP}


def test_includes_honoured(emulator, corpus):
    release_id = next(iter(corpus.releases))
    bare = get(emulator, f"/ws/2/release/{release_id}").json()
    assert not {"media", "artist-credit", "label-info", "release-group"} & set(bare)
    media = get(emulator, f"/ws/2/release/{release_id}", inc="media").json()
    assert media["media"] and all("tracks" not in m and m["track-count"] >= 8 for m in media["media"])
    full = get(emulator, f"/ws/2/release/{release_id}", inc="recordings artist-credits labels release-groups").json()
    track = full["media"][0]["tracks"][0]
    assert set(track) == {"id", "number", "position", "title", "length", "recording"}
    assert full["media"][0]["track-count"] == len(full["media"][0]["tracks"])
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
    expected = [r for r, rec in corpus.recordings.items() if artist in {p["artist"] for p in rec["artist-credit"]}]
    pages, offset = [], 0
    while True:
        page = get(emulator, "/ws/2/recording", artist=artist, limit=37, offset=offset).json()
        assert page["recording-count"] == len(expected) and page["recording-offset"] == offset
        if not page["recordings"]:
            break
        pages.append([r["id"] for r in page["recordings"]])
        offset += len(page["recordings"])
    # each page is the next window of the browse order, its items sorted by MBID
    assert pages == windows(expected, [37] * len(pages)) and sum(map(len, pages)) == len(expected)
    assert any(page != sorted(expected[i * 37:(i + 1) * 37], key=expected.index) for i, page in enumerate(pages))


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
    expected = [r for r, rel in corpus.releases.items() if artist in {p["artist"] for p in rel["artist-credit"]}]
    pages, offset, cut = [], 0, False
    while offset < len(expected):
        page = get(emulator, "/ws/2/release", artist=artist, limit=100, offset=offset, inc="recordings").json()
        releases = page["releases"]
        tracks = sum(len(m["tracks"]) for r in releases for m in r["media"])
        assert releases and (tracks <= 500 or len(releases) == 1)
        assert all(len(m["tracks"]) == m["track-count"] for r in releases for m in r["media"])  # never partial
        cut |= len(releases) < min(100, len(expected) - offset)
        pages.append([r["id"] for r in releases])
        offset += len(releases)
    assert cut and pages == windows(expected, [len(p) for p in pages])
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
    tree = parse_query('recording:"a b" AND isrc:X free', "recording")
    assert tree.required == [Term("recording", "a b", phrase=True), Term("isrc", "X")]
    assert tree.optional == [Term("recording", "free")]


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


def test_command_line_fixtures_include_subfolders():
    demo = Path(harvester.__file__).parent / "data" / "demo"
    nested = demo / "wrtag" / "release" / "70130d47-2145-4e61-972e-49d3d21a087e.json"
    body = json.loads(nested.read_text(encoding="utf-8"))
    process = subprocess.Popen([sys.executable, "-m", "harvester.emulator", "--fixtures", str(demo), "--port", "0"],
                               stdout=subprocess.PIPE, text=True)
    try:
        url = process.stdout.readline().strip()
        answer = requests.get(f"{url}/ws/2/release/{body['id']}?fmt=json&inc=artist-credits+labels+recordings+"
                              "release-groups+media+isrcs+aliases+url-rels", headers={"User-Agent": CONTACT}, timeout=5)
        assert answer.status_code == 200 and answer.json() == body
    finally:
        process.terminate()
        process.wait(timeout=10)


# ---- merged MBIDs ----


def test_merged_lookup_answers_301_to_the_survivor_with_its_body(emulator, corpus):
    old, new = next(iter(corpus.redirects["artist"].items()))
    response = requests.get(f"{emulator.url}/ws/2/artist/{old}", params={"fmt": "json", "inc": "aliases"},
                            headers={"User-Agent": CONTACT}, timeout=5, allow_redirects=False)
    assert response.status_code == 301
    assert response.headers["Location"] == f"{emulator.url}/ws/2/artist/{new}?fmt=json&inc=aliases"
    assert response.json()["id"] == new  # the server serializes the survivor into the 301 as well
    followed = requests.get(response.headers["Location"], headers={"User-Agent": CONTACT}, timeout=5)
    assert followed.status_code == 200 and followed.json() == response.json()
    upper = requests.get(f"{emulator.url}/ws/2/artist/{new.upper()}?fmt=json", headers={"User-Agent": CONTACT},
                         timeout=5, allow_redirects=False)
    assert upper.status_code == 301 and upper.headers["Location"].endswith(f"/ws/2/artist/{new}?fmt=json")


def test_browse_by_a_merged_mbid_answers_200_for_the_survivor(emulator, corpus):
    old, new = next(iter(corpus.redirects["artist"].items()))
    by_old = get(emulator, "/ws/2/release-group", artist=old, limit=100)
    assert by_old.status_code == 200 and not by_old.history
    assert by_old.json() == get(emulator, "/ws/2/release-group", artist=new, limit=100).json()
    assert by_old.json()["release-group-count"] > 0


# ---- the proxy in front: 403 without identity, the two kinds of 503 ----


def test_the_two_kinds_of_503_as_the_proxy_sends_them(corpus):
    artist = prolific_artist(corpus)
    with Emulator(corpus, faults={1: "503", 2: "busy", 3: "503:4"}) as emu:
        per_ip, busy, longer = (get(emu, f"/ws/2/artist/{artist}") for _ in range(3))
    assert per_ip.status_code == busy.status_code == 503
    assert per_ip.headers["Retry-After"] == "1" and per_ip.headers["X-RateLimit-Zone"] == "ws ip=127.0.0.1"
    assert per_ip.json() == {"error": "Your requests are exceeding the allowable rate limit. Please see "
                                      "http://wiki.musicbrainz.org/XMLWebService for more information."}
    assert busy.headers["Retry-After"] == "0" and busy.headers["X-RateLimit-Zone"] == "global"
    assert busy.json() == {"error": "The MusicBrainz web server is currently busy. Please try again later."}
    assert busy.headers["X-RateLimit-Limit"] == "15" and 8 <= int(busy.headers["X-RateLimit-Remaining"]) <= 14
    assert per_ip.headers["Server"] == busy.headers["Server"] == "openresty"
    assert longer.headers["Retry-After"] == "4"


def test_answers_carry_the_rate_limit_pool_headers(emulator, corpus):
    artist = prolific_artist(corpus)
    answers = [get(emulator, f"/ws/2/artist/{artist}") for _ in range(6)]
    answers.append(get(emulator, "/ws/2/artist/5b11f4ce-a62d-471e-81fc-a69a8278c7da"))  # a 404 too
    now = time.time()
    for answer in answers:
        assert answer.headers["X-RateLimit-Limit"] == "1200"
        assert 0 <= int(answer.headers["X-RateLimit-Remaining"]) < 1200
        assert now - 5 <= int(answer.headers["X-RateLimit-Reset"]) <= now + 5
        assert answer.headers["Server"] != "openresty"  # the application's answer, not the proxy's
    assert len({a.headers["X-RateLimit-Remaining"] for a in answers}) > 1  # a shared pool: it jumps about
    search = get(emulator, "/ws/2/artist", query="a")
    assert search.headers["X-RateLimit-Limit"] == "360"


def test_no_user_agent_is_refused_by_the_proxy(emulator, corpus):
    response = requests.get(f"{emulator.url}/ws/2/artist/{prolific_artist(corpus)}?fmt=json",
                            headers={"User-Agent": ""}, timeout=5)
    assert response.status_code == 403 and "has not identified itself" in response.json()["error"]
    assert response.headers["X-RateLimit-Who"] == "ua-missing"
    assert emulator.requests[-1]["fault"] == "no-user-agent"


def test_json_only_when_asked_for_as_the_service_answers_xml_otherwise(emulator, corpus):
    """musicbrainz-notes: without fmt=json and without Accept: application/json
    the service answers XML; the emulator, which renders no XML, refuses
    rather than hand JSON to a client that did not ask for it."""
    url = f"{emulator.url}/ws/2/artist/{prolific_artist(corpus)}"
    agent = {"User-Agent": "mbharvest-tests/1 ( tests@example.org )"}
    assert requests.get(url, headers=agent, timeout=5).status_code == 406
    by_header = requests.get(url, headers={**agent, "Accept": "application/json"}, timeout=5)
    by_query = requests.get(url + "?fmt=json", headers=agent, timeout=5)
    assert by_header.status_code == by_query.status_code == 200
    assert by_header.json() == by_query.json()
    assert requests.get(url + "?fmt=xml", headers=agent, timeout=5).status_code == 400


# ---- paging rules ----


def test_limit_and_offset_as_the_server_reads_them(emulator, corpus):
    artist = prolific_artist(corpus)
    total = len(corpus.index.recordings_by_artist[artist])
    assert total > 100

    def count(**paging):
        return len(get(emulator, "/ws/2/recording", artist=artist, **paging).json()["recordings"])

    assert count() == count(limit=0) == count(limit="") == 25
    assert count(limit=101) == count(limit=5000) == 100
    assert count(limit=7, offset="") == 7 and count(limit=100, offset=total - 3) == 3
    for bad in ({"limit": "ten"}, {"limit": "-1"}, {"limit": "2.5"}, {"offset": "x"}, {"offset": "-5"}):
        response = get(emulator, "/ws/2/recording", artist=artist, **bad)
        assert response.status_code == 400, bad
        assert response.json() == {"error": "The 'limit' and 'offset' parameters must be positive integers",
                                   "help": HELP}
    assert get(emulator, "/ws/2/recording", query="a", limit="x").status_code == 400


# ---- a catalogue changing between page requests ----


def test_shift_moves_items_across_page_boundaries_between_requests(corpus):
    artist = prolific_artist(corpus)
    order = corpus.index.recordings_by_artist[artist]
    assert len(order) > 200
    with Emulator(corpus, shift=3) as emu:
        def page(offset):
            return [r["id"] for r in get(emu, "/ws/2/recording", artist=artist, limit=100, offset=offset)
                    .json()["recordings"]]

        first, second = page(0), page(100)
        assert first == sorted(order[:100])
        assert second == sorted(order[97:197])  # three items of page one again, three never seen
        moved = order[-3:]
        assert not set(moved) & (set(first) | set(second) | set(page(200)) | set(page(300)))
        assert set(moved) <= set(page(0))  # they went to the front: a re-read of page one finds them
        # another browse (another artist) has its own first page, unshifted
        other = list(corpus.artists)[1]
        assert [r["id"] for r in get(emu, "/ws/2/recording", artist=other, limit=5).json()["recordings"]] == \
            sorted(corpus.index.recordings_by_artist[other][:5])


# ---- every field of a real body, as it came ----

# Which include makes the service send a field, wherever it sits in a body (truth from the WS/2
# documentation, independent of the emulator's own table).
INCLUDE_OF_FIELD = {
    "artist-credit": "artist-credits", "label-info": "labels", "release-group": "release-groups", "media": "media",
    "tracks": "recordings", "track-offset": "recordings", "discs": "discids", "isrcs": "isrcs", "releases": "releases", "recordings": "recordings",
    "release-groups": "release-groups", "works": "works", "aliases": "aliases", "tags": "tags", "genres": "genres",
    "user-tags": "user-tags", "user-genres": "user-genres", "rating": "ratings", "annotation": "annotation",
    "relations": "url-rels", "collections": "collections",
}
LINKED_LISTS = ("releases", "recordings", "release-groups", "works")


def includes_of(entity: str, body) -> set[str]:
    """The includes a body was fetched with: those of the fields it holds, anywhere in it. A lookup's
    linked lists (its releases, recordings...) count for their own include only: what sits inside
    them came along with the list."""
    found: set[str] = set()

    def walk(value):
        if isinstance(value, dict):
            for key, inner in value.items():
                if key in INCLUDE_OF_FIELD:
                    found.add(INCLUDE_OF_FIELD[key])
                if not (value is body and key in LINKED_LISTS):
                    walk(inner)
        elif isinstance(value, list):
            for inner in value:
                walk(inner)

    walk(body)
    return found


def real_lookup_bodies() -> list[tuple[str, dict]]:
    """Every real lookup body the tests and the demo hold, as (entity, body)."""
    from harvester.emulator.corpus import documents_in_folder
    from tests.conftest import WS2, ws2_index

    lookups = {row["path"] for row in ws2_index() if row["kind"] == "lookup"}
    bodies = [(entity, body) for entity, body in documents_in_folder(WS2)]
    from_fixtures = [(entity, body) for (entity, body), path in zip(bodies, sorted_json_paths(WS2))
                     if path in lookups]
    demo = list(documents_in_folder(Path(harvester.__file__).parent / "data" / "demo"))
    return from_fixtures + demo


def sorted_json_paths(folder: Path) -> list[str]:
    """The .json files documents_in_folder reads, in its order (lookup bodies only: those with an id)."""
    paths = []

    def walk(current: Path) -> None:
        for entry in sorted(current.iterdir(), key=lambda e: e.name):
            if entry.is_dir():
                walk(entry)
            elif entry.name.endswith(".json") and isinstance(json.loads(entry.read_text()).get("id"), str):
                paths.append(str(entry.relative_to(folder)))

    walk(folder)
    return paths


def test_every_field_of_every_served_real_body_comes_back_unchanged():
    bodies = real_lookup_bodies()
    assert len(bodies) >= 85
    served = {}  # (entity, id) -> the body the corpus holds (a later file with the same id replaces it)
    for entity, body in bodies:
        served[(entity, body["id"])] = body
    corpus = Corpus.from_documents(bodies)
    checked = 0
    with Emulator(corpus) as emu:
        for (entity, mbid), body in served.items():
            inc = " ".join(sorted(includes_of(entity, body)))
            response = get(emu, f"/ws/2/{entity}/{mbid}", inc=inc)
            assert response.status_code == 200, (entity, mbid, inc, response.text)
            # equal as JSON, key order included: byte for byte once both are written the same way
            assert json.dumps(response.json(), ensure_ascii=False) == json.dumps(body, ensure_ascii=False), (
                entity, mbid)
            checked += 1
    assert checked == len(served) >= 55


def test_fields_the_old_whitelist_dropped_are_served(real_corpus):
    from tests.conftest import load_ws2

    body = load_ws2("musicbrainz-android/release_lookup.json")
    with Emulator(Corpus.from_documents([body])) as emu:
        bare = get(emu, f"/ws/2/release/{body['id']}").json()
        for key in ("packaging", "packaging-id", "release-events", "text-representation", "status-id", "quality",
                    "asin", "cover-art-archive"):
            assert bare[key] == body[key], key
        assert not {"media", "artist-credit", "label-info", "release-group", "aliases"} & set(bare)
        media = get(emu, f"/ws/2/release/{body['id']}", inc="media").json()["media"]
        assert [m["format-id"] for m in media] == [m["format-id"] for m in body["media"]]
        assert all("tracks" not in m for m in media)
        full = get(emu, f"/ws/2/release/{body['id']}", inc="recordings artist-credits aliases").json()
        credits = [t["artist-credit"] for m in full["media"] for t in m["tracks"]]
        assert credits == [t["artist-credit"] for m in body["media"] for t in m["tracks"]] and credits
        no_credits = get(emu, f"/ws/2/release/{body['id']}", inc="recordings").json()
        assert all("artist-credit" not in t and "artist-credit" not in t["recording"]
                   for m in no_credits["media"] for t in m["tracks"])


# ---- Lucene searches as clients send them ----


def test_lucene_field_searches_with_parentheses_quotes_and_or(emulator, corpus):
    def ids(query: str, entity: str = "recording") -> set[str]:
        body = get(emulator, f"/ws/2/{entity}", query=query, limit=100).json()
        assert body["count"] <= 100, query
        return {item["id"] for item in body[entity + "s"]}

    code, carriers = next((c, ids) for c, ids in corpus.index.recordings_by_isrc.items() if len(ids) >= 2)
    other_code, other_carriers = next((c, i) for c, i in corpus.index.recordings_by_isrc.items()
                                      if not set(i) & set(carriers))
    assert ids(f"isrc:({code.lower()})") == set(carriers)  # what musicbrainzngs sends: lower case, parentheses
    assert ids(f"isrc:{code}") == ids(f'isrc:"{code}"') == set(carriers)
    assert ids(f"isrc:{code} OR isrc:{other_code}") == set(carriers) | set(other_carriers)
    assert ids(f"isrc:({code} {other_code})") == set(carriers) | set(other_carriers)  # side by side: OR
    assert ids(f"isrc:{code} AND isrc:{other_code}") == set()
    assert ids(f"isrc:{code[:6]}*") >= set(carriers)  # a trailing wildcard
    first = corpus.recordings[carriers[0]]
    artist = first["artist-credit"][0]["artist"]
    escaped = artist.replace("-", "\\-")  # musicbrainzngs escapes Lucene's special characters
    by_artist = {r for r, rec in corpus.recordings.items() if artist in {p["artist"] for p in rec["artist-credit"]}}
    assert ids(f"arid:({escaped}) AND isrc:({code.lower()})") == set(carriers) & by_artist
    assert ids(f"(arid:{escaped} AND isrc:{code}) OR isrc:{other_code}") == \
        (set(carriers) & by_artist) | set(other_carriers)
    assert ids(f"isrc:{code} NOT rid:{carriers[0]}") == set(carriers) - {carriers[0]}
    assert ids(f"+isrc:{code} -rid:{carriers[1]}") == set(carriers) - {carriers[1]}
    words = first["title"].split()
    assert ids(f'recording:"{first["title"]}"') >= {carriers[0]}
    assert ids(f'recording:"{first["title"]}"') <= {r for r, rec in corpus.recordings.items()
                                                   if all(w.lower() in rec["title"].lower() for w in words)}
    release = next(iter(corpus.releases.values()))
    assert release["id"] in ids(f'reid:{release["id"]}', "release")
    assert get(emulator, "/ws/2/recording", query="isrc:(unclosed").status_code == 400


def test_search_results_are_sorted_by_score(emulator, corpus):
    code, carriers = next((c, ids) for c, ids in corpus.index.recordings_by_isrc.items() if len(ids) >= 2)
    body = get(emulator, "/ws/2/recording", query=f"isrc:{code} OR rid:{carriers[0]}", limit=100).json()
    scores = [item["score"] for item in body["recordings"]]
    assert scores == sorted(scores, reverse=True) and scores[0] == 100
    assert body["recordings"][0]["id"] == carriers[0]  # the only one matching both clauses


# ---- another application behind the same proxy ----


def test_another_application_mounts_behind_the_proxy(corpus):
    seen: list[Request] = []

    def dumps(request: Request) -> Reply:
        seen.append(request)
        return Reply(200, b"20261122-001001\n", content_type="text/plain", server="nginx")

    with Emulator(corpus, apps={"/pub/musicbrainz/": dumps}, faults={2: "503"}) as emu:
        first = requests.get(f"{emu.url}/pub/musicbrainz/data/json-dumps/LATEST", timeout=5)
        refused = requests.get(f"{emu.url}/pub/musicbrainz/data/json-dumps/LATEST", timeout=5)
        head = requests.head(f"{emu.url}/pub/musicbrainz/data/json-dumps/LATEST", timeout=5)
        ws2 = get(emu, f"/ws/2/artist/{prolific_artist(corpus)}")
        nowhere = get(emu, "/elsewhere")
    assert first.text == "20261122-001001\n" and first.headers["Server"] == "nginx"
    assert refused.status_code == 503  # faults and the request log apply to every application
    assert head.status_code == 200 and head.headers["Content-Length"] == "16" and head.content == b""
    assert ws2.status_code == 200 and nowhere.status_code == 404
    assert [r.method for r in seen] == ["GET", "HEAD"] and seen[0].path == "/pub/musicbrainz/data/json-dumps/LATEST"
    assert [e["path"].split("?")[0] for e in emu.requests][:3] == ["/pub/musicbrainz/data/json-dumps/LATEST"] * 3
