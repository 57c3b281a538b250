"""Seeded synthetic MusicBrainz *release* dump lines, shaped like real ones, streamed.

    python -m benchmarks.release_dump --lines 1000000 > release.jsonl
    python -m benchmarks.release_dump --lines 1000000 --edition 2 > fifo   # the next dump

Each line is what a line of the published `mbdump/release` carries (see
musicbrainz-notes.md, "What each line includes"): the release with aliases,
annotation, tags, genres, url and artist relations, release events,
text-representation, cover-art-archive, label-info with full labels, the
release group (with its own artist credit, aliases, genres, rating), and media
with discs and tracks, each track with its own artist credit and a full
nested recording (ISRCs, aliases, work and artist relations, its own artist
credit, tags, genres, rating). Every artist in a credit comes whole (aliases,
type, disambiguation), as in the dumps.

The catalogue recurs the way a real one does:
- artists, labels and release groups are drawn with a Zipf-like skew (P(i)
  ~ 1/i): a few artists credit thousands of recordings, a few labels carry
  tens of thousands of releases;
- about 1 release in 5 is another edition of a recent release group and
  carries that group's recordings again (a country, a format, a reissue);
- about 6% are "Various Artists" compilations whose tracks reuse popular
  earlier recordings;
- tracks per release: singles (1-4), EPs, albums (8-16) and a few box sets
  (30-120): a mean of about 7 (the real 5.1 M releases hold ~35 M
  recordings).

Measured on 5,000 lines (seed 2025): 22.1 kB a line, 7.5 tracks a release,
0.83 ISRCs a track.

Every entity is a pure function of (seed, kind, index), so a recording, an
artist or a label is the same in every line that carries it (a consistent
snapshot), and memory stays flat for any number of lines (a bounded cache
of recent entities, no catalogue in memory).

Editions: `--edition 2` is the next dump of the same catalogue: about 1% of
the releases gone, 2% new ones interleaved, 4% of releases edited (title,
barcode, a track length), 2% of recordings edited in every copy (length,
an ISRC added), 1% of artists edited (disambiguation). Edition 1 and 2 share
everything else exactly.
"""

from __future__ import annotations

import argparse
import itertools
import random
import sys
from collections import OrderedDict
from typing import Callable, Iterator

import orjson

from benchmarks.synthetic_dump import COUNTRIES, WORDS

VARIOUS_ARTISTS = "89ad4ac3-39f7-470e-963a-56509c546377"
# per-kind salts for the entity seeds
_ARTIST, _LABEL, _GROUP, _RECORDING, _RELEASE, _WORK, _EDIT = range(7)
FORMATS = ("CD", "CD", "CD", "Digital Media", "Digital Media", "12\" Vinyl", "Cassette", "7\" Vinyl")
STATUSES = ("Official", "Official", "Official", "Official", "Promotion", "Bootleg")
PACKAGING = ("Jewel Case", "Digipak", "Cardboard/Paper Sleeve", "None", None)
URL_TYPES = ("discogs", "amazon asin", "purchase for download", "streaming", "free streaming")
ALIAS = {"locale": None, "type": None, "type-id": None, "primary": None, "begin": None, "end": None, "ended": False}
PERSON = "b6e035f4-3ce9-331c-97df-83397230b0df"
GROUP = "e431f5f6-b5d2-343d-8b36-72607fffb74b"
EDITION_2 = {"release_gone": 0.01, "release_new": 0.02, "release_edit": 0.02, "recording_edit": 0.005,
             "artist_edit": 0.002}


def _uuid(rng: random.Random) -> str:
    text = f"{rng.getrandbits(128):032x}"
    return f"{text[:8]}-{text[8:12]}-4{text[13:16]}-{'89ab'[int(text[16], 16) & 3]}{text[17:20]}-{text[20:]}"


def _pick(rng: random.Random, items):
    """rng.choice without its rejection sampling (a fifth of the cost)."""
    return items[int(rng.random() * len(items))]


def _between(rng: random.Random, low: int, high: int) -> int:
    return low + int(rng.random() * (high - low + 1))


def _titles(words: int) -> tuple[str, ...]:
    rng = random.Random(words)
    return tuple(" ".join(rng.choice(WORDS) for _ in range(words)).title() for _ in range(4096))


# titles of 1 to 5 words, made once: joining words per title was half the generator's time
TITLES = [(), *(_titles(words) for words in range(1, 6))]


def _title(rng: random.Random, low: int, high: int) -> str:
    return _pick(rng, TITLES[_between(rng, low, high)])


def _zipf(rng: random.Random, size: int) -> int:
    """An index in [0, size) with P(i) ~ 1/(i+1): log-uniform."""
    return min(size - 1, int(size ** rng.random()) - 1) if size > 1 else 0


class _Cache(OrderedDict):
    """A bounded least-recently-used cache of entities made by `make(index)`."""

    def __init__(self, make: Callable[[int], dict], size: int):
        super().__init__()
        self.make, self.size = make, size

    def get_entity(self, index: int):
        try:
            self.move_to_end(index)
            return self[index]
        except KeyError:
            value = self[index] = self.make(index)
            if len(self) > self.size:
                self.popitem(last=False)
            return value


class ReleaseDump:
    """The lines of one edition of a seeded catalogue of `releases` releases."""

    def __init__(self, releases: int, seed: int = 2025, edition: int = 1):
        self.releases, self.seed, self.edition = releases, seed, edition
        self.artist_count = max(50, releases * 54 // 100)      # 2.73 M artists for 5.09 M releases
        self.label_count = max(20, releases * 6 // 100)
        self.artists = _Cache(self._make_artist, 100_000)
        self.labels = _Cache(self._make_label, 20_000)
        self.recordings = _Cache(self._make_recording, 50_000)
        self.groups: OrderedDict[int, tuple[int, list[int]]] = OrderedDict()  # recent group -> (index, recordings)
        self.next_group = 0
        self.next_recording = 0
        # releases new in edition 2 take groups and recordings from index spaces
        # of their own, so that everything else is numbered as in edition 1
        self.new_group = 10 ** 12
        self.new_recording = 10 ** 12

    # -- deterministic entities --

    def _rng(self, kind: int, index: int) -> random.Random:
        return random.Random((self.seed * 8 + kind) * 10 ** 13 + index)

    def _edited(self, kind: int, index: int, share: float) -> bool:
        return self.edition > 1 and self._rng(_EDIT, kind * 10 ** 13 + index).random() < share

    def _make_artist(self, index: int) -> tuple[dict, dict]:
        """The artist as credits carry it, and as relations do (fewer fields)."""
        if index == 0:
            various = {"id": VARIOUS_ARTISTS, "name": "Various Artists", "sort-name": "Various Artists",
                    "type": "Other", "type-id": "ac897045-5043-3294-965d-e7ac8ad9d4a4",
                    "disambiguation": "add compilations to this artist", "aliases": [], "genres": []}
            return various, various
        rng = self._rng(_ARTIST, index)
        name = _title(rng, 1, 3)
        person = rng.random() < 0.6
        artist = {"id": _uuid(rng), "name": name, "sort-name": (", ".join(reversed(name.split(" ", 1)))
                                                              if person else name),
                  "type": "Person" if person else "Group", "type-id": PERSON if person else GROUP,
                  "disambiguation": _pick(rng, ("", "", "", f"{_pick(rng, COUNTRIES)} band", "rapper")),
                  "aliases": [dict(ALIAS, name=_title(rng, 1, 3), **{"sort-name": _title(rng, 1, 2)})
                              for _ in range(_pick(rng, (0, 0, 0, 1, 2)))],
                  "genres": [{"name": _pick(rng, ("rock", "pop", "jazz", "electronic")), "count": _between(rng, 1, 9),
                              "id": _uuid(rng), "disambiguation": ""} for _ in range(_pick(rng, (0, 0, 1)))]}
        if self._edited(_ARTIST, index, EDITION_2["artist_edit"]):
            artist["disambiguation"] = "edited " + artist["disambiguation"]
        return artist, {key: artist[key] for key in ("id", "name", "sort-name", "type", "type-id", "disambiguation")}

    def _credit(self, rng: random.Random, artists: list[int]) -> list[dict]:
        credit = []
        for position, index in enumerate(artists):
            artist = self.artists.get_entity(index)[0]
            join = "" if position == len(artists) - 1 else _pick(rng, (" & ", " feat. ", ", ", " x "))
            name = artist["name"] if rng.random() < 0.95 else artist["name"].upper()
            credit.append({"name": name, "joinphrase": join, "artist": artist})
        return credit

    def _credited(self, rng: random.Random) -> list[int]:
        count = 1 if rng.random() < 0.8 else _between(rng, 2, 4)
        return [_zipf(rng, self.artist_count - 1) + 1 for _ in range(count)]

    def _make_label(self, index: int) -> dict:
        rng = self._rng(_LABEL, index)
        name = _title(rng, 1, 3) + _pick(rng, (" Records", " Music", " Recordings", ""))
        return {"id": _uuid(rng), "name": name, "sort-name": name, "type": _pick(rng, ("Original Production",
                                                                                        "Imprint", None)),
                "type-id": None, "label-code": _pick(rng, (None, _between(rng, 100, 99999))),
                "disambiguation": "", "aliases": [], "genres": []}

    def _make_recording(self, index: int) -> dict:
        rng = self._rng(_RECORDING, index)
        year = _between(rng, 1950, 2025)
        recording = {
            "id": _uuid(rng), "title": _title(rng, 1, 5),
            "length": _pick(rng, (None, _between(rng, 30_000, 600_000), _between(rng, 120_000, 300_000))),
            "video": rng.random() < 0.01,
            "disambiguation": _pick(rng, ("", "", "", "", "live", "radio edit", "demo")),
            "first-release-date": _pick(rng, ("", str(year), f"{year}-{_between(rng, 1, 12):02d}-{_between(rng, 1, 28):02d}")),
            "isrcs": [f"{_pick(rng, COUNTRIES)}{_pick(rng, ('ABC', 'UM7', 'AYE', 'WB1'))}{_between(rng, 0, 99):02d}"
                      f"{_between(rng, 0, 99999):05d}" for _ in range(_pick(rng, (0, 0, 1, 1, 1, 2)))],
            "artist-credit": self._credit(rng, self._credited(rng)),
            "aliases": [dict(ALIAS, name=_title(rng, 1, 4), **{"sort-name": _title(rng, 1, 4)})
                        for _ in range(_pick(rng, (0, 0, 0, 1)))],
            "tags": [{"name": _pick(rng, WORDS), "count": _between(rng, 1, 5)} for _ in range(_pick(rng, (0, 0, 1, 2)))],
            "genres": [{"name": _pick(rng, ("rock", "pop", "jazz")), "count": 1, "id": _uuid(rng),
                        "disambiguation": ""} for _ in range(_pick(rng, (0, 0, 1)))],
            "rating": {"value": _pick(rng, (None, None, 3.5, 4.0)), "votes-count": _between(rng, 0, 3)},
            "relations": [self._work_relation(rng) for _ in range(_pick(rng, (0, 1, 1, 1, 2)))]
            + [self._artist_relation(rng) for _ in range(_pick(rng, (0, 0, 1, 2, 3)))],
        }
        if self._edited(_RECORDING, index, EDITION_2["recording_edit"]):
            recording["length"] = (recording["length"] or 200_000) + 1000
            recording["isrcs"] = recording["isrcs"] + [f"QZ{_pick(rng, ('ABC', 'K3D'))}26{_between(rng, 0, 99999):05d}"]
        return recording

    def _work_relation(self, rng: random.Random) -> dict:
        return {"type": "performance", "type-id": "a3005666-a872-32c3-ad06-98af558e99b0", "direction": "forward",
                "target-type": "work", "attributes": [], "attribute-ids": {}, "attribute-values": {},
                "begin": None, "end": None, "ended": False, "source-credit": "", "target-credit": "",
                "work": {"id": _uuid(rng), "title": _title(rng, 1, 4), "type": "Song", "language": "eng",
                         "languages": ["eng"], "iswcs": [], "disambiguation": "", "attributes": [],
                         "type-id": "f061270a-2fd6-32f1-a641-f0f8676d14e6"}}

    def _artist_relation(self, rng: random.Random) -> dict:
        artist = self.artists.get_entity(_zipf(rng, self.artist_count - 1) + 1)[1]
        return {"type": _pick(rng, ("producer", "mix", "instrument", "vocal", "engineer")),
                "type-id": "5c0ceac3-feb4-41f0-868d-dc06f6e27fc0", "direction": "backward",
                "target-type": "artist", "attributes": [], "attribute-ids": {}, "attribute-values": {},
                "begin": None, "end": None, "ended": False, "source-credit": "", "target-credit": "",
                "artist": artist}

    def _url_relation(self, rng: random.Random) -> dict:
        kind = _pick(rng, URL_TYPES)
        return {"type": kind, "type-id": "4f2e710d-166c-480c-a293-2e2c8d658d87", "direction": "forward",
                "target-type": "url", "attributes": [], "attribute-ids": {}, "attribute-values": {},
                "begin": None, "end": None, "ended": False, "source-credit": "", "target-credit": "",
                "url": {"id": _uuid(rng), "resource": f"https://example.org/{kind.replace(' ', '-')}/"
                                                      f"{rng.getrandbits(40):x}"}}

    def _group(self, rng: random.Random, index: int, artists: list[int], compilation: bool) -> dict:
        grng = self._rng(_GROUP, index)
        year = _between(grng, 1950, 2025)
        kind = "Single" if rng.random() < 0.3 else _pick(grng, ("Album", "Album", "EP", "Single"))
        return {"id": _uuid(grng), "title": _title(grng, 1, 4), "primary-type": kind,
                "primary-type-id": "f529b476-6e62-324f-b0aa-1f3e33d313fc",
                "secondary-types": ["Compilation"] if compilation else _pick(grng, ([], [], [], ["Live"])),
                "secondary-type-ids": [], "first-release-date": _pick(grng, (str(year), f"{year}-0{_between(grng, 1, 9)}-1{_between(grng, 0, 9)}")),
                "disambiguation": "", "artist-credit": self._credit(grng, artists),
                "aliases": [], "genres": [], "tags": [],
                "rating": {"value": None, "votes-count": 0}}

    # -- releases --

    def _track_count(self, rng: random.Random) -> int:
        roll = rng.random()
        if roll < 0.40:
            return _between(rng, 1, 4)      # singles
        if roll < 0.55:
            return _between(rng, 4, 7)      # EPs
        if roll < 0.99:
            return _between(rng, 8, 12)     # albums
        return _between(rng, 20, 60)        # box sets

    def _count(self, counter: str, count: int) -> list[int]:
        start = getattr(self, counter)
        setattr(self, counter, start + count)
        return list(range(start, start + count))

    def release(self, index: int, new: bool = False) -> dict:
        """Release `index` of this edition (new: one that only edition 2 has).
        Called in index order: editions reuse recent groups' recordings."""
        rng = self._rng(_RELEASE, index + (5 * 10 ** 12 if new else 0))
        compilation = rng.random() < 0.06
        edition_of = None
        if not compilation and self.groups and rng.random() < 0.12:
            edition_of = _pick(rng, list(itertools.islice(reversed(self.groups), 64)))
        if edition_of is not None:
            artists, reuse = self.groups[edition_of]
            group_index = edition_of
        else:
            group_index = self._count("new_group" if new else "next_group", 1)[0]
            if compilation:
                artists = [0]
                reuse = [_zipf(rng, max(1, self.next_recording)) for _ in range(_between(rng, 12, 24))]
            else:
                artists = self._credited(rng)
                reuse = self._count("new_recording" if new else "next_recording", self._track_count(rng))
        if not compilation and not new:
            self.groups[group_index] = (artists, reuse)
            if len(self.groups) > 4096:
                self.groups.popitem(last=False)
        doc = self._release_doc(rng, index, group_index, artists, reuse, compilation)
        if not new and self._edited(_RELEASE, index, EDITION_2["release_edit"]):
            doc["title"] += " (Remastered)"
            doc["barcode"] = "0" + (doc["barcode"] or "")
            track = doc["media"][0]["tracks"][0]
            track["length"] = (track["length"] or 0) + 1000
        return doc

    def _release_doc(self, rng: random.Random, index: int, group_index: int, artists: list[int],
                     recordings: list[int], compilation: bool) -> dict:
        release_id = _uuid(rng)
        year = _between(rng, 1950, 2025)
        country = _pick(rng, COUNTRIES)
        discs = 1 if len(recordings) < 20 else _between(rng, 2, 4)
        per_disc = -(-len(recordings) // discs)
        media = []
        for disc in range(discs):
            chunk = recordings[disc * per_disc:(disc + 1) * per_disc]
            tracks = []
            for position, recording_index in enumerate(chunk, 1):
                recording = self.recordings.get_entity(recording_index)
                tracks.append({"id": _uuid(rng), "number": str(position), "position": position,
                               "title": recording["title"] if rng.random() < 0.97 else _title(rng, 1, 5),
                               "length": recording["length"],
                               "artist-credit": recording["artist-credit"] if rng.random() < 0.9
                               else self._credit(rng, self._credited(rng)),
                               "recording": recording})
            media.append({"position": disc + 1, "title": "", "format": _pick(rng, FORMATS),
                          "format-id": "9712d52a-4509-3d4b-a1a2-67c88c643e31", "track-count": len(tracks),
                          "track-offset": 0, "tracks": tracks,
                          "discs": [{"id": f"{rng.getrandbits(120):030x}"[:28] + "-", "sectors": _between(rng, 1, 360_000),
                                     "offset-count": len(tracks), "offsets": [150 * t for t in range(len(tracks))]}
                                    for _ in range(_pick(rng, (0, 1, 1, 2)))]})
        labels = [self.labels.get_entity(_zipf(rng, self.label_count)) for _ in range(_pick(rng, (0, 1, 1, 1, 2)))]
        return {
            "id": release_id, "title": _title(rng, 1, 4), "status": _pick(rng, STATUSES),
            "status-id": "4e304316-386d-3409-af2e-78857eec5cfe", "quality": "normal",
            "packaging": _pick(rng, PACKAGING), "packaging-id": None, "disambiguation": "",
            "date": _pick(rng, ("", str(year), f"{year}-{_between(rng, 1, 12):02d}-{_between(rng, 1, 28):02d}")),
            "country": country, "barcode": _pick(rng, (None, "", f"{rng.getrandbits(40):013d}"[:13])),
            "asin": None, "text-representation": {"language": "eng", "script": "Latn"},
            "cover-art-archive": {"artwork": False, "count": 0, "front": False, "back": False, "darkened": False},
            "release-events": [{"date": str(year), "area": {"id": _uuid(rng), "name": country, "sort-name": country,
                                                            "iso-3166-1-codes": [country], "disambiguation": "",
                                                            "type": None, "type-id": None}}],
            "artist-credit": self._credit(rng, artists),
            "release-group": self._group(rng, group_index, artists, compilation),
            "label-info": [{"catalog-number": _pick(rng, (None, f"{label['name'][:3].upper()}{_between(rng, 1, 9999)}")),
                            "label": label} for label in labels],
            "media": media,
            "aliases": [], "annotation": _pick(rng, (None, None, None, "Limited edition of 500 copies.")),
            "tags": [{"name": _pick(rng, WORDS), "count": 1} for _ in range(_pick(rng, (0, 0, 1)))],
            "genres": [],
            "relations": [self._url_relation(rng) for _ in range(_pick(rng, (0, 1, 1, 2, 3)))]
            + [self._artist_relation(rng) for _ in range(_pick(rng, (0, 0, 1)))],
        }

    def documents(self) -> Iterator[dict]:
        """The release documents of this edition, in dump order (not MBID order)."""
        for index in range(self.releases):
            doc = self.release(index)
            if not self._edited(_RELEASE, index + 3 * 10 ** 12, EDITION_2["release_gone"]):
                yield doc
            if self._edited(_RELEASE, index + 4 * 10 ** 12, EDITION_2["release_new"]):
                yield self.release(index, new=True)

    def lines(self) -> Iterator[bytes]:
        for doc in self.documents():
            yield orjson.dumps(doc) + b"\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lines", type=int, required=True, help="Releases in edition 1.")
    parser.add_argument("--seed", type=int, default=2025)
    parser.add_argument("--edition", type=int, default=1, choices=(1, 2))
    parser.add_argument("--out", default="-", help="A file or FIFO to write to (default: stdout).")
    parser.add_argument("--progress", default=None,
                        help="A file to keep the number of lines written in (rewritten every 64 lines).")
    args = parser.parse_args()
    out = sys.stdout.buffer if args.out == "-" else open(args.out, "wb")
    try:
        buffer = []
        written = 0
        for line in ReleaseDump(args.lines, args.seed, args.edition).lines():
            buffer.append(line)
            if len(buffer) >= 64:
                out.write(b"".join(buffer))
                written += len(buffer)
                buffer.clear()
                if args.progress:
                    with open(args.progress, "w") as note:
                        note.write(str(written))
        out.write(b"".join(buffer))
        out.flush()
        if args.progress:
            with open(args.progress, "w") as note:
                note.write(str(written + len(buffer)))
    except BrokenPipeError:
        pass
    finally:
        if out is not sys.stdout.buffer:
            out.close()


if __name__ == "__main__":
    main()
