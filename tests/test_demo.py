"""`mbharvest demo`: offline, on the bundled real bodies, through the normal
harvest path. The database is compared with truth read straight from the
bundled JSON files (not through the normalizer or the emulator's corpus)."""

from __future__ import annotations

import csv
import ipaddress
import json
import re
import socket
import sqlite3
from pathlib import Path

import pytest
from click.testing import CliRunner

import harvester
from harvester.cli import cli

DEMO_DATA = Path(harvester.__file__).parent / "data" / "demo"
pytestmark = pytest.mark.usefixtures("isolated")  # conftest: no config, no MBHARVEST_*, private cache
PLOTS = ("length_histogram.png", "releases_per_year.png", "release_groups_per_year_by_type.png",
         "isrc_countries.png", "isrc_reference_years.png")


class NetworkRefused(AssertionError):
    """A connection to anything but this machine was attempted."""


def _is_loopback(address) -> bool:
    if not isinstance(address, tuple):  # AF_UNIX paths and the like
        return True
    host = address[0]
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@pytest.fixture
def no_network(monkeypatch):
    """Refuse every connection that is not to 127.0.0.1/::1; record the attempts."""
    attempts: list = []
    real_connect, real_connect_ex = socket.socket.connect, socket.socket.connect_ex
    real_create_connection = socket.create_connection

    def guard(address):
        if not _is_loopback(address):
            attempts.append(address)
            raise NetworkRefused(f"the demo tried to reach {address!r}")

    def connect(self, address):
        guard(address)
        return real_connect(self, address)

    def connect_ex(self, address):
        guard(address)
        return real_connect_ex(self, address)

    def create_connection(address, *args, **kwargs):
        guard(address)
        return real_create_connection(address, *args, **kwargs)

    monkeypatch.setattr(socket.socket, "connect", connect)
    monkeypatch.setattr(socket.socket, "connect_ex", connect_ex)
    monkeypatch.setattr(socket, "create_connection", create_connection)
    return attempts


def related_recordings(doc) -> list[dict]:
    """Every recording a relationship in a body points at, at any depth."""
    found = []
    if isinstance(doc, dict):
        for relation in doc.get("relations") or []:
            if (relation.get("recording") or {}).get("id"):
                found.append(relation["recording"])
        for value in doc.values():
            found += related_recordings(value)
    elif isinstance(doc, list):
        for value in doc:
            found += related_recordings(value)
    return found


def bundled_truth() -> tuple[dict[str, int | None], set[tuple[str, str]], set[str]]:
    """(recording id -> length, {(recording id, ISRC)}, release ids), walking the
    bundled JSON: a release body gives its tracks' recordings, a recording
    body itself, and either the recordings its relationships point at; which
    is which comes from SOURCES.tsv, the files' index."""
    with open(DEMO_DATA / "SOURCES.tsv", encoding="utf-8") as fh:
        entity_of = {row["path"]: row["entity"] for row in csv.DictReader(fh, delimiter="\t")}
    assert sorted(entity_of) == sorted(str(p.relative_to(DEMO_DATA)) for p in DEMO_DATA.rglob("*.json"))
    assert set(entity_of.values()) == {"release", "recording"} and len(entity_of) >= 20
    lengths: dict[str, set] = {}
    isrc_sets: dict[str, set[tuple[str, ...]]] = {}
    releases = set()
    for name, entity in entity_of.items():
        body = json.loads((DEMO_DATA / name).read_text(encoding="utf-8"))
        if entity == "release":
            releases.add(body["id"])
            recordings = [track["recording"] for medium in body.get("media") or []
                          for track in medium.get("tracks") or [] if track.get("recording")]
        else:
            recordings = [body]
        for recording in recordings:
            length = recording.get("length")  # the 2014 bodies (inkstak) give milliseconds as a string
            lengths.setdefault(recording["id"], set()).add(None if length is None else int(length))
            if "isrcs" in recording:
                isrc_sets.setdefault(recording["id"], set()).add(tuple(sorted(recording["isrcs"])))
        for recording in related_recordings(body):  # what relationships point at (DJ-mix of, remix of...)
            length = recording.get("length")
            lengths.setdefault(recording["id"], set()).add(None if length is None else int(length))
            if recording.get("isrcs"):
                isrc_sets.setdefault(recording["id"], set()).add(tuple(sorted(recording["isrcs"])))
    # the bundled bodies agree with each other, so the truth is well defined
    assert all(len(values) == 1 for values in lengths.values())
    assert all(len(sets) == 1 for sets in isrc_sets.values())
    length_of = {rid: length for rid, (length,) in lengths.items()}
    pairs = {(rid, code) for rid, sets in isrc_sets.items() for code in sets.pop()}
    return length_of, pairs, releases


def bundled_release_fields() -> tuple[dict[str, str | None], dict[str, str]]:
    """(release id -> packaging, track id -> its own artist credit as printed), straight from the
    bundled release bodies: what the emulator used to strip and the demo database must now hold."""
    packaging, track_credits = {}, {}
    for path in sorted(DEMO_DATA.rglob("*.json")):
        body = json.loads(path.read_text(encoding="utf-8"))
        if "media" not in body and "label-info" not in body and "status" not in body:
            continue  # a recording
        packaging[body["id"]] = body.get("packaging")
        for medium in body.get("media") or []:
            for track in medium.get("tracks") or []:
                if track.get("artist-credit"):
                    track_credits[track["id"]] = "".join(part["name"] + part.get("joinphrase", "")
                                                         for part in track["artist-credit"])
    return packaging, track_credits


def stored(db_path: Path) -> tuple[dict[str, int | None], set[tuple[str, str]], set[str]]:
    db = sqlite3.connect(db_path)
    try:
        lengths = dict(db.execute("SELECT id, length_ms FROM recording"))
        pairs = set(db.execute("SELECT recording_id, isrc FROM recording_isrc"))
        releases = {row[0] for row in db.execute("SELECT id FROM release")}
    finally:
        db.close()
    return lengths, pairs, releases


def ledger(db_path: Path) -> list[tuple[str, str]]:
    db = sqlite3.connect(db_path)
    try:
        return list(db.execute("SELECT command, status FROM harvest_run ORDER BY id"))
    finally:
        db.close()


def test_the_guard_refuses_the_network(no_network):
    with pytest.raises(NetworkRefused):
        socket.create_connection(("192.0.2.1", 80), timeout=0.1)  # TEST-NET-1: never routed
    with pytest.raises(NetworkRefused), socket.socket() as sock:
        sock.connect(("93.184.215.14", 443))
    assert len(no_network) == 2


def test_demo_harvests_exactly_the_bundled_data_offline(no_network, tmp_path, monkeypatch):
    # settings from the environment must not leak into the demo: were they
    # used, the demo would stop after one request or go to musicbrainz.org
    monkeypatch.setenv("MBHARVEST_SERVER", "https://musicbrainz.org")
    monkeypatch.setenv("MBHARVEST_MAX_REQUESTS", "1")
    monkeypatch.setenv("MBHARVEST_DB", str(tmp_path / "elsewhere.db"))
    out = tmp_path / "out"
    result = CliRunner().invoke(cli, ["demo", "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert no_network == []

    lengths, pairs, releases = bundled_truth()
    assert len(pairs) >= 20 and len(lengths) >= 200 and len(releases) >= 15
    got_lengths, got_pairs, got_releases = stored(out / "demo.db")
    assert got_lengths == lengths
    assert got_pairs == pairs
    assert got_releases == releases
    packaging, track_credits = bundled_release_fields()
    assert sum(value is not None for value in packaging.values()) >= 8 and len(track_credits) >= 100
    db = sqlite3.connect(out / "demo.db")
    assert dict(db.execute("SELECT id, packaging FROM release")) == packaging
    assert dict(db.execute("SELECT id, artist_credit FROM track WHERE artist_credit IS NOT NULL")) == track_credits
    db.close()
    assert ledger(out / "demo.db") == [("harvest artist", "complete"), ("harvest release", "complete"),
                                       ("harvest recording", "complete"), ("harvest isrc", "complete")]
    assert not (tmp_path / "elsewhere.db").exists()

    report = out / "demo-report"
    for name in ("report.md", "report.html", *PLOTS):
        assert (report / name).stat().st_size > 0, name
    assert all((report / name).read_bytes().startswith(b"\x89PNG") for name in PLOTS)
    markdown = (report / "report.md").read_text(encoding="utf-8")
    assert f"{len(lengths)}" in markdown

    # the newcomer sees the steps, the figures, where things are and what to do next
    output = result.output
    for step in ("harvest artist", "harvest release", "harvest recording", "harvest isrc", "report"):
        assert f"mbharvest {step}" in output
    assert re.search(rf"distinct ISRCs +{len({code for _, code in pairs})}\n", output)
    assert str(out / "demo.db") in output and str(report / "report.html") in output
    assert "export MBHARVEST_CONTACT=you@example.org" in output
    assert "mbharvest plan artist " in output and "mbharvest harvest artist " in output


def test_demo_reruns_afresh_into_the_default_folder(no_network, tmp_path):
    first = CliRunner().invoke(cli, ["demo"])
    assert first.exit_code == 0, first.output
    before = stored(tmp_path / "data" / "demo.db")
    second = CliRunner().invoke(cli, ["demo"])
    assert second.exit_code == 0, second.output
    assert stored(tmp_path / "data" / "demo.db") == before
    assert len(ledger(tmp_path / "data" / "demo.db")) == 4  # a new database, not the old one plus four runs
    assert (tmp_path / "data" / "demo-report" / "report.html").exists()
    assert no_network == []


def test_demo_refuses_an_output_folder_it_cannot_create(tmp_path):
    (tmp_path / "a-file").write_text("not a folder")
    result = CliRunner().invoke(cli, ["demo", "--out", str(tmp_path / "a-file" / "out")])
    assert result.exit_code == 2
    assert "cannot create the output folder" in result.output
