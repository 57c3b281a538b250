"""`mbharvest stats`: every figure against the value computed independently in
Python from the inputs (real fixture bodies, and a synthetic corpus with known
properties), never against the code's own output."""

import json
import random
from collections import Counter, defaultdict
from dataclasses import dataclass, field

import pytest
from click.testing import CliRunner

from harvester.cli import cli
from harvester.normalize import normalize_entity, normalize_page
from harvester.stats import (KNOWN_TOTALS, compute_stats, find_peaks, reference_year)
from harvester.store import open_db, save
from tests.conftest import load_ws2

YEAR = 2026  # the "current year" the ISRC year of reference is read against
CONTRACT_KEYS = ("artists labels release_groups releases recordings tracks recording_isrc_pairs isrcs_unique "
                 "recordings_with_isrc isrcs_on_multiple_recordings recordings_with_multiple_isrcs").split()


@dataclass
class Corpus:
    """What a database should hold, as plain Python: the independent truth."""

    artists: set = field(default_factory=set)
    labels: set = field(default_factory=set)
    release_groups: dict = field(default_factory=dict)  # id -> (primary_type, first_release_date)
    releases: dict = field(default_factory=dict)  # id -> date
    recordings: dict = field(default_factory=dict)  # id -> length_ms
    tracks: dict = field(default_factory=dict)  # id -> release_id
    isrcs: dict = field(default_factory=dict)  # recording id -> set of ISRCs
    gone: dict = field(default_factory=lambda: defaultdict(set))  # table -> ids marked gone


def year_of(date):
    return date[:4] if date and len(date) >= 4 and date[:4].isdigit() else "unknown"


def expected(corpus: Corpus) -> dict:
    gone = corpus.gone
    recordings = {rid: length for rid, length in corpus.recordings.items() if rid not in gone["recording"]}
    pairs = {(rid, code) for rid, codes in corpus.isrcs.items() if rid not in gone["recording"] for code in codes}
    recordings_per_isrc = Counter(code for _, code in pairs)
    isrcs_per_recording = Counter(rid for rid, _ in pairs)
    lengths = [length for length in recordings.values() if length is not None and length > 0]
    by_bin = Counter(length // 5000 for length in lengths)
    dense = [b for b in by_bin if b < 360]
    bins = list(range(max(dense) + 1 if dense else 0)) + sorted(b for b in by_bin if b >= 360)
    releases = {rid: date for rid, date in corpus.releases.items() if rid not in gone["release"]}
    groups = {gid: v for gid, v in corpus.release_groups.items() if gid not in gone["release_group"]}
    by_type = defaultdict(Counter)
    for primary_type, date in groups.values():
        by_type[primary_type or "(none)"][year_of(date)] += 1
    return {
        "artists": len(corpus.artists - gone["artist"]),
        "labels": len(corpus.labels - gone["label"]),
        "release_groups": len(groups),
        "releases": len(releases),
        "recordings": len(recordings),
        "tracks": sum(1 for release in corpus.tracks.values() if release not in gone["release"]),
        "recording_isrc_pairs": len(pairs),
        "isrcs_unique": len(recordings_per_isrc),
        "recordings_with_isrc": len(isrcs_per_recording),
        "isrcs_on_multiple_recordings": sum(1 for n in recordings_per_isrc.values() if n > 1),
        "recordings_with_multiple_isrcs": sum(1 for n in isrcs_per_recording.values() if n > 1),
        "length_histogram": [{"start_ms": b * 5000, "end_ms": b * 5000 + 5000, "count": by_bin.get(b, 0)}
                             for b in bins],
        "releases_per_year": dict(Counter(year_of(d) for d in releases.values())),
        "isrc_countries": dict(Counter(code[:2] for code in recordings_per_isrc)),
        "isrc_reference_years": dict(Counter(
            str(2000 + int(code[5:7]) if int(code[5:7]) <= YEAR % 100 else 1900 + int(code[5:7]))
            for code in recordings_per_isrc)),
        "recordings_with_length": len(lengths),
        "recordings_without_length": len(recordings) - len(lengths),
        "release_groups_per_year_by_type": {t: dict(c) for t, c in by_type.items()},
        "isrcs_per_recording": {str(k): v for k, v in Counter(
            [isrcs_per_recording.get(rid, 0) for rid in recordings]).items()},
        "longest_recording_ms": max(lengths, default=0),
    }


def assert_figures(stats: dict, truth: dict) -> None:
    for key, value in truth.items():
        assert stats[key] == value, key
    assert list(stats["releases_per_year"])[-1:] in ([], ["unknown"]) or "unknown" not in stats["releases_per_year"]
    assert sum(b["count"] for b in stats["length_histogram"]) == truth["recordings_with_length"]
    for key in ("artists", "release_groups", "releases", "recordings"):
        assert stats["coverage"][key] == {"local": truth[key], "musicbrainz": KNOWN_TOTALS[key],
                                          "share": truth[key] / KNOWN_TOTALS[key]}


# -- (a) real fixture bodies, walked independently of the normalizer --

FIXTURE_DOCS = [
    ("recording", "search", "musicbrainzws2/search/MbRecordingResult.json"),
    ("release", "lookup", "musicbrainz-android/release_lookup.json"),
    ("recording", "lookup", "sortipy/recordings-line1-ab80a174-1b7d-41c8-bddb-5edfd849d512.json"),
    ("recording", "lookup", "sortipy/recordings-line2-5fbaab56-3904-40fe-9ef2-be59a16c86be.json"),
    ("recording", "lookup", "sortipy/recordings-line3-5e7029b3-f17e-4d4d-a08e-0bfd8f4a5765.json"),
    ("release", "lookup", "sortipy/releases-line1-58558cec-d9f1-40e4-a857-f7af88883c12.json"),
    ("release", "lookup", "wrtag/release/21a03203-91a4-4948-ae1e-2d0977f1bdbc.json"),
    ("release", "lookup", "wrtag/release/70130d47-2145-4e61-972e-49d3d21a087e.json"),
    ("release", "lookup", "wrtag/release/bdc01183-d1c9-378f-a209-a6145fa596c9.json"),
]


class Walk:
    """Collects entities from WS/2 JSON the plain way (later documents win,
    as upserts do; a document's ISRC list replaces the recording's set)."""

    def __init__(self):
        self.corpus = Corpus()

    def credit(self, doc):
        for item in doc.get("artist-credit") or []:
            if (item.get("artist") or {}).get("id"):
                self.corpus.artists.add(item["artist"]["id"])

    def relations(self, doc):
        """The entities a document's relationships point at (a target's own
        lists are partial views: they add, never replace)."""
        for relation in doc.get("relations") or []:
            target_type = (relation.get("target-type") or "").replace("-", "_")
            target = relation.get(target_type)
            if not (target or {}).get("id"):
                continue
            if target_type == "artist":
                self.corpus.artists.add(target["id"])
            elif target_type == "label":
                self.corpus.labels.add(target["id"])
            elif target_type == "recording":
                self.recording(target, partial=True)
            elif target_type == "release":
                self.release(target)
            else:
                self.relations(target)

    def recording(self, doc, partial=False):
        rid = doc["id"]
        if "length" in doc:
            self.corpus.recordings[rid] = int(doc["length"]) if doc["length"] is not None else None
        else:
            self.corpus.recordings.setdefault(rid, None)
        if "isrcs" in doc and partial:
            self.corpus.isrcs.setdefault(rid, set()).update(doc["isrcs"])
        elif "isrcs" in doc:
            self.corpus.isrcs[rid] = set(doc["isrcs"])
        self.credit(doc)
        self.relations(doc)
        for release in doc.get("releases") or []:
            self.release(release)

    def release(self, doc):
        if "date" in doc:
            self.corpus.releases[doc["id"]] = doc["date"] or None
        else:
            self.corpus.releases.setdefault(doc["id"], None)
        group = doc.get("release-group")
        if group:
            old = self.corpus.release_groups.get(group["id"], (None, None))
            self.corpus.release_groups[group["id"]] = (
                group["primary-type"] if "primary-type" in group else old[0],
                (group["first-release-date"] or None) if "first-release-date" in group else old[1])
            self.credit(group)
        self.credit(doc)
        self.relations(doc)
        for info in doc.get("label-info") or []:
            if (info.get("label") or {}).get("id"):
                self.corpus.labels.add(info["label"]["id"])
        for medium in doc.get("media") or []:
            pregap = [medium["pregap"]] if medium.get("pregap") else []  # a hidden track before track 1
            for track in pregap + (medium.get("tracks") or medium.get("track") or []) + \
                    (medium.get("data-tracks") or []):
                self.corpus.tracks[track["id"]] = doc["id"]
                self.credit(track)
                if track.get("recording"):
                    self.recording(track["recording"])


@pytest.fixture
def fixture_db(tmp_path):
    db = open_db(tmp_path / "fixtures.db")
    walk = Walk()
    for entity, kind, path in FIXTURE_DOCS:
        body = load_ws2(path)
        normalized = normalize_page(entity, body).normalized if kind == "search" else normalize_entity(entity, body)
        with db.atomic():
            save(db, normalized, source="https://musicbrainz.org", fetched_at="2026-01-01T00:00:00Z")
        for doc in (body["recordings"] if kind == "search" else [body]):
            (walk.recording if entity == "recording" else walk.release)(doc)
    return db, walk.corpus


def test_fixture_figures_match_the_bodies(fixture_db):
    db, corpus = fixture_db
    truth = expected(corpus)
    # the bodies are what the brief says they are: real ISRCs, lengths, dates
    assert truth["recording_isrc_pairs"] >= 12 + 29 and truth["recordings"] > 100
    assert truth["releases_per_year"].get("unknown") and truth["recordings_without_length"] >= 0
    assert_figures(compute_stats(db, current_year=YEAR), truth)


def test_fixture_gone_rows_leave_every_figure(fixture_db):
    db, corpus = fixture_db
    with_isrcs = sorted(rid for rid, codes in corpus.isrcs.items() if codes)[:3]
    a_release = sorted(set(corpus.tracks.values()))[0]
    some_artist = sorted(corpus.artists)[0]
    some_group = sorted(corpus.release_groups)[0]
    for table, ids in (("recording", with_isrcs), ("release", [a_release]), ("artist", [some_artist]),
                       ("release_group", [some_group])):
        db.execute(f"UPDATE [{table}] SET gone_at = '2026-02-01T00:00:00Z' WHERE id IN "
                   f"({', '.join('?' * len(ids))})", ids)
        corpus.gone[table].update(ids)
    db.conn.commit()
    truth = expected(corpus)
    stats = compute_stats(db, current_year=YEAR)
    assert_figures(stats, truth)
    assert stats["tracks"] < len(corpus.tracks) and stats["recording_isrc_pairs"] < sum(map(len, corpus.isrcs.values()))


# -- (b) a synthetic corpus with known properties --

def synthetic_corpus(seed: int = 7) -> Corpus:
    rng = random.Random(seed)
    corpus = Corpus()
    corpus.artists = {f"artist-{i}" for i in range(12)}
    corpus.labels = {f"label-{i}" for i in range(5)}
    types = ["Album", "Single", "EP", None]
    dates = ["2023", "2023-05", "2023-05-17", "2015-01-02", "1999", "", None, "2024-12"]
    for i in range(40):
        corpus.release_groups[f"rg-{i}"] = (types[i % 4], dates[i % len(dates)] or None)
    for i in range(60):
        corpus.releases[f"rel-{i}"] = dates[i % len(dates)]
    centres = [120_000, 180_000, 240_000]
    for i in range(600):
        kind = i % 20
        if kind == 0:
            length = None
        elif kind == 1:
            length = 0
        elif i % 97 == 0:
            length = rng.randrange(1_800_000, 20_000_000)  # beyond the dense part
        else:
            length = max(1, int(rng.gauss(centres[i % 3], 6_000)))
        corpus.recordings[f"rec-{i:04d}"] = length
    countries = ["US", "GB", "DE", "JP", "FR"]
    for i, rid in enumerate(sorted(corpus.recordings)):
        count = i % 3  # 0, 1 or 2 ISRCs
        corpus.isrcs[rid] = {f"{countries[(i + k) % 5]}A{k}B{(i * 7 + k) % 100:02d}{i:05d}" for k in range(count)}
    corpus.isrcs["rec-0001"].add("USXYZ2500001")  # one ISRC on two recordings
    corpus.isrcs["rec-0004"].add("USXYZ2500001")
    for i in range(900):
        corpus.tracks[f"track-{i}"] = f"rel-{i % 60}"
    corpus.gone["recording"] = {"rec-0005", "rec-0008", "rec-0011"}  # they have ISRCs
    corpus.gone["release"] = {"rel-3", "rel-4"}
    corpus.gone["artist"] = {"artist-0"}
    corpus.gone["release_group"] = {"rg-1"}
    return corpus


def store_corpus(db, corpus: Corpus) -> None:
    stamp = {"fetched_at": "2026-01-01T00:00:00Z", "source": "synthetic"}
    gone = {"gone_at": "2026-02-01T00:00:00Z"}

    def mark(table, key):
        return gone if key in corpus.gone[table] else {}

    with db.atomic():
        db["artist"].insert_all({"id": a, "name": a, **stamp, **mark("artist", a)} for a in corpus.artists)
        db["label"].insert_all({"id": x, "name": x, **stamp} for x in corpus.labels)
        db["release_group"].insert_all({"id": g, "primary_type": t, "first_release_date": d, **stamp,
                                        **mark("release_group", g)} for g, (t, d) in corpus.release_groups.items())
        db["release"].insert_all({"id": r, "date": d, **stamp, **mark("release", r)}
                                 for r, d in corpus.releases.items())
        db["recording"].insert_all({"id": r, "length_ms": n, **stamp, **mark("recording", r)}
                                   for r, n in corpus.recordings.items())
        db["recording_isrc"].insert_all({"recording_id": r, "isrc": c, **stamp}
                                        for r, codes in corpus.isrcs.items() for c in codes)
        db["track"].insert_all({"id": t, "release_id": r, **stamp} for t, r in corpus.tracks.items())


@pytest.fixture
def synthetic_db(tmp_path):
    db = open_db(tmp_path / "synthetic.db")
    corpus = synthetic_corpus()
    store_corpus(db, corpus)
    return db, corpus


def test_synthetic_figures(synthetic_db):
    db, corpus = synthetic_db
    truth = expected(corpus)
    # the corpus has the properties the test is about
    assert truth["isrcs_on_multiple_recordings"] == 1
    assert truth["isrcs_per_recording"].keys() >= {"0", "1", "2"}
    assert truth["releases_per_year"]["unknown"] > 0 and truth["releases_per_year"]["2023"] > 0
    assert any(b["start_ms"] >= 1_800_000 for b in truth["length_histogram"])
    stats = compute_stats(db, current_year=YEAR)
    assert_figures(stats, truth)
    assert stats["isrc_reference_years"]["2025"] >= 1  # USXYZ25...
    assert list(stats["releases_per_year"])[-1] == "unknown"


def test_partial_dates_count_for_their_year(synthetic_db):
    db, corpus = synthetic_db
    live = [d for r, d in corpus.releases.items() if r not in corpus.gone["release"]]
    stats = compute_stats(db, current_year=YEAR)
    assert stats["releases_per_year"]["2023"] == sum(1 for d in live if d in ("2023", "2023-05", "2023-05-17"))
    assert stats["releases_per_year"]["unknown"] == sum(1 for d in live if not d)


def test_length_histogram_shape(synthetic_db):
    db, _ = synthetic_db
    histogram = compute_stats(db, current_year=YEAR)["length_histogram"]
    assert all(b["end_ms"] - b["start_ms"] == 5000 and b["start_ms"] % 5000 == 0 for b in histogram)
    starts = [b["start_ms"] for b in histogram]
    assert starts == sorted(starts) and len(set(starts)) == len(starts)
    dense = [s for s in starts if s < 1_800_000]
    assert dense == list(range(0, dense[-1] + 5000, 5000))  # no gap below 30 minutes
    assert all(b["count"] > 0 for b in histogram if b["start_ms"] >= 1_800_000)


def test_peaks_found_at_known_centres():
    rng = random.Random(3)
    lengths = [int(rng.gauss(centre, 7_000)) for centre in (120_000, 180_000, 240_000) for _ in range(4000)]
    lengths += [rng.randrange(30_000, 600_000) for _ in range(3000)]  # a flat background
    counts = Counter(length // 5000 for length in lengths)
    peaks = find_peaks([counts.get(b, 0) for b in range(max(counts) + 1)])
    centres = [p["bin"] * 5000 + 2500 for p in peaks]
    assert len(centres) == 3
    for found, true in zip(centres, (120_000, 180_000, 240_000)):
        assert abs(found - true) <= 7_500


def test_peaks_ignore_noise_and_empty():
    rng = random.Random(5)
    flat = Counter(rng.randrange(0, 100) for _ in range(20_000))
    assert find_peaks([flat.get(b, 0) for b in range(100)]) == []
    assert find_peaks([]) == [] and find_peaks([0, 0, 0]) == []


@pytest.mark.parametrize("yy,year", [("00", 2000), ("25", 2025), ("26", 2026), ("27", 1927), ("86", 1986),
                                     ("99", 1999)])
def test_reference_year(yy, year):
    assert reference_year(yy, 2026) == year


# -- the command --

def test_stats_json_has_the_contract_keys(synthetic_db, tmp_path):
    db, corpus = synthetic_db
    path = db.conn.execute("PRAGMA database_list").fetchone()[2]
    db.close()
    result = CliRunner().invoke(cli, ["stats", "--json", "--db", path])
    assert result.exit_code == 0, result.output
    figures = json.loads(result.output)
    truth = expected(corpus)
    for key in CONTRACT_KEYS:
        assert figures[key] == truth[key], key
    assert all(set(b) >= {"start_ms", "end_ms", "count"} for b in figures["length_histogram"])
    assert figures["releases_per_year"] == truth["releases_per_year"]


def test_stats_table_is_readable(synthetic_db):
    db, corpus = synthetic_db
    path = db.conn.execute("PRAGMA database_list").fetchone()[2]
    db.close()
    result = CliRunner().invoke(cli, ["--db", path, "stats"])
    assert result.exit_code == 0
    truth = expected(corpus)
    assert f"distinct ISRCs                 {truth['isrcs_unique']:,}" in result.output
    assert "Releases per year" in result.output and not result.output.lstrip().startswith("{")


def test_missing_database_is_a_usage_error(tmp_path):
    missing = tmp_path / "nope.db"
    for command in (["stats"], ["stats", "--json"], ["report", "--out", str(tmp_path / "r")]):
        result = CliRunner().invoke(cli, [*command, "--db", str(missing)])
        assert result.exit_code == 2
        assert "no database at" in result.output and str(missing) in result.output
    assert not missing.exists()


def test_empty_database_gives_zeros(tmp_path):
    path = tmp_path / "empty.db"
    open_db(path).close()
    result = CliRunner().invoke(cli, ["stats", "--json", "--db", str(path)])
    assert result.exit_code == 0
    figures = json.loads(result.output)
    assert all(figures[key] == 0 for key in CONTRACT_KEYS)
    assert figures["length_histogram"] == [] and figures["releases_per_year"] == {}
    assert figures["isrc_countries"] == {} and figures["origin"]["kind"] == "empty"


# -- the views --

def test_views_agree_with_the_corpus(synthetic_db):
    db, corpus = synthetic_db
    truth = expected(corpus)
    assert dict(db.execute("SELECT year, releases FROM releases_per_year").fetchall()) == truth["releases_per_year"]
    assert dict(db.execute("SELECT country, isrcs FROM isrc_countries").fetchall()) == truth["isrc_countries"]
    row = db.execute("SELECT isrcs, isrc_count FROM recording_with_isrcs WHERE id = 'rec-0004'").fetchone()
    assert row == (" ".join(sorted(corpus.isrcs["rec-0004"])), len(corpus.isrcs["rec-0004"]))
    assert db.execute("SELECT count(*) FROM recording_with_isrcs").fetchone()[0] == truth["recordings"]
    shared = db.execute("SELECT recordings, country, reference_year FROM isrc_summary "
                        "WHERE isrc = 'USXYZ2500001'").fetchone()
    assert shared == (2, "US", 2025)
    histogram = [dict(zip(("start_ms", "end_ms", "count"), r)) for r in
                 db.execute("SELECT start_ms, end_ms, recordings FROM recording_length_histogram").fetchall()]
    assert histogram == [b for b in truth["length_histogram"] if b["count"]]
