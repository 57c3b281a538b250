"""Issue 18's includes (aliases, url-rels, work-rels, area-rels...) against the
emulator: every harvest command costs exactly the floor of tests/truth.py with
the includes of 0.1.0 and with this release's, and with this release's the
database holds the corpus's relationships, works, ISWCs, URLs and aliases
(truth read from the corpus, not through the harvester)."""

from __future__ import annotations

import math
import random
import sqlite3
import uuid
from urllib.parse import parse_qs, urlsplit

import pytest
from click.testing import CliRunner

from harvester import harvest
from harvester.cli import cli
from harvester.emulator import Emulator, generate_corpus
from tests.conftest import CONTACT
from tests.test_harvest import prolific_artist
from tests.truth import artist_truth, isrc_truth, label_truth, release_group_truth

pytestmark = pytest.mark.usefixtures("isolated")

# What each request asked for before issue 18 (0.1.0), the constants' values then.
INCLUDES_0_1_0 = {
    "ARTIST_INCLUDES": (), "LABEL_INCLUDES": (),
    "RELEASE_INCLUDES": ("artist-credits", "labels", "recordings", "release-groups", "media", "isrcs"),
    "RELEASE_LOOKUP_INCLUDES": ("artist-credits", "labels", "recordings", "release-groups", "media", "isrcs"),
    "RECORDING_INCLUDES": ("artist-credits", "isrcs"), "RECORDING_LOOKUP_INCLUDES": ("artist-credits", "isrcs"),
    "RELEASE_GROUP_INCLUDES": ("artist-credits",), "RELEASE_GROUP_LOOKUP_INCLUDES": ("artist-credits",),
}


def work(rng: random.Random) -> dict:
    return {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)), "title": f"Work {rng.randrange(10**6)}",
            "type": "Song", "language": "eng", "disambiguation": "",
            "iswcs": [f"T-{rng.randrange(10**3):03d}.{rng.randrange(10**3):03d}.{rng.randrange(10**3):03d}-"
                      f"{rng.randrange(10)}"]}


@pytest.fixture(scope="module")
def corpus():
    """The generated corpus, with what issue 18 reads added as the service would store it: a performance
    relationship to a work on every third recording, streaming links and an alias on every artist."""
    corpus = generate_corpus(seed=11, artists=8)
    rng = random.Random(18)
    for index, recording in enumerate(corpus.recordings.values()):
        if index % 3 == 0:
            recording["relations"] = [{
                "type": "performance", "type-id": "a3005666-a872-32c3-ad06-98af558e99b0", "direction": "forward",
                "target-type": "work", "begin": None, "end": None, "ended": False,
                "attributes": ["live"] if index % 2 else [], "attribute-values": {}, "work": work(rng)}]
    for artist_id, artist in corpus.artists.items():
        artist["aliases"] = [{"name": artist["name"] + " (alias)", "sort-name": artist["name"], "locale": None,
                              "type": "Search hint", "primary": None, "begin": None, "end": None, "ended": False}]
        artist["relations"] = [{
            "type": "streaming", "type-id": "769085a1-c2f7-4c24-a532-2375a77693bd", "direction": "forward",
            "target-type": "url", "attributes": [], "begin": None, "end": None, "ended": False,
            "url": {"id": str(uuid.UUID(int=rng.getrandbits(128), version=4)),
                    "resource": f"https://open.spotify.com/artist/{artist_id[:8]}"}}]
    return corpus


def run(emu, db_path, *args):
    return CliRunner().invoke(cli, [*args[:2], "--server", emu.url, "--rate", "0", "--db", str(db_path),
                                    "--contact", CONTACT, *args[2:]])


def commands(corpus):
    """Every harvest command with its keys and the fewest requests it needs (tests/truth.py)."""
    artist = prolific_artist(corpus)
    label = next(iter(corpus.labels))
    group = next(iter(corpus.release_groups))
    release = next(iter(corpus.releases))
    recording = next(iter(corpus.recordings))
    codes = sorted({code for r in list(corpus.recordings.values())[:30] for code in r["isrcs"]})[:4]
    own = [r for r in corpus.recordings.values() if any(part["artist"] == artist for part in r["artist-credit"])]
    return [
        (("harvest", "artist", artist), artist_truth(corpus, artist).floor),
        (("harvest", "label", label), label_truth(corpus, label).floor),
        (("harvest", "release-group", group), release_group_truth(corpus, group).floor),
        (("harvest", "release", release), 1),
        (("harvest", "recording", recording), 1),
        (("harvest", "isrc", *codes), isrc_truth(corpus, codes).floor),
        (("harvest", "search", "recording", f"arid:{artist}", "--max-results", "250"),
         math.ceil(min(len(own), 250) / 100)),
    ]


@pytest.mark.parametrize("includes", ["0.1.0", "issue 18"])
def test_every_harvest_command_costs_the_floor_with_the_old_and_the_new_includes(corpus, tmp_path, monkeypatch,
                                                                                 includes):
    if includes == "0.1.0":
        for name, value in INCLUDES_0_1_0.items():
            monkeypatch.setattr(harvest, name, value)
    for index, (args, floor) in enumerate(commands(corpus)):
        with Emulator(corpus) as emu:
            result = run(emu, tmp_path / f"{index}.db", *args)
            assert result.exit_code == 0, (args, result.output)
            assert len(emu.requests) == floor, (args, [r["path"] for r in emu.requests])
            asked = {inc for r in emu.requests for value in parse_qs(urlsplit(r["path"]).query).get("inc", [])
                     for inc in value.replace(" ", "+").split("+") if inc}
        if includes == "issue 18" and args[1] not in ("isrc", "search"):
            assert {"url-rels"} <= asked, args
        if includes == "0.1.0":
            assert not any(inc.endswith("-rels") or inc == "aliases" for inc in asked), args


def test_an_artist_harvest_brings_works_iswcs_links_and_aliases_at_the_same_cost(corpus, tmp_path):
    artist = prolific_artist(corpus)
    truth = artist_truth(corpus, artist)
    with Emulator(corpus) as emu:
        assert run(emu, tmp_path / "a.db", "harvest", "artist", artist).exit_code == 0
        assert len(emu.requests) == truth.floor
    db = sqlite3.connect(tmp_path / "a.db")
    performed = {(rid, rel["work"]["id"], rel["type"]) for rid in truth.recordings
                 for rel in corpus.recordings[rid].get("relations", ())}
    assert performed and set(db.execute("SELECT recording_id, work_id, type FROM recording_work")) == performed
    works = {rel["work"]["id"]: rel["work"] for rid in truth.recordings
             for rel in corpus.recordings[rid].get("relations", ())}
    assert set(db.execute("SELECT id, title FROM work")) == {(w, body["title"]) for w, body in works.items()}
    assert set(db.execute("SELECT work_id, iswc FROM work_iswc")) == {
        (w, body["iswcs"][0].replace("-", "").replace(".", "")) for w, body in works.items()}
    links = {(a, corpus.artists[a]["relations"][0]["url"]["resource"]) for a in [artist]}
    assert set(db.execute("SELECT entity_id, resource FROM entity_url WHERE service = 'Spotify'")) >= links
    assert set(db.execute("SELECT entity_id, name FROM alias")) >= {(artist, corpus.artists[artist]["name"] + " (alias)")}


def test_the_client_asks_relationships_on_browses_and_refuses_aliases_there_before_sending(corpus, tmp_path):
    """The vocabulary the client checks against (musicbrainzngs, the service's): a recording browse takes
    work-rels (the issue's recorded answer: performances with their works and ISWCs), not aliases."""
    from harvester.client import WS2Client
    from harvester.errors import UsageError

    artist = prolific_artist(corpus)
    with Emulator(corpus) as emu:
        client = WS2Client(emu.url, CONTACT, 0, cache_dir=str(tmp_path))
        page = client.browse("recording", "artist", artist, includes=("artist-credits", "work-rels"), limit=100)
        works = [rel["work"] for item in page["recordings"] for rel in item.get("relations", ())]
        assert works and all(work["iswcs"] for work in works)
        sent = len(emu.requests)
        with pytest.raises(UsageError, match="'aliases' is not a valid include for a browse of recording"):
            client.browse("recording", "artist", artist, includes=("aliases",))
        assert len(emu.requests) == sent
