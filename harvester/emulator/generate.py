"""A seeded generator of realistic corpora: same seed, same corpus.

It plants the cases a harvester must survive: featured artists
(" feat. "), recordings with 0, 1 or 2 ISRCs and ISRCs shared by two
recordings, unicode names, partial and empty dates, null lengths, releases
sharing recordings within a release group, a recording on no release, an
artist with no releases, an artist whose releases total more than 500 tracks
(so release browses with inc=recordings get cut), and merged (redirected)
artist and recording ids.
"""

from __future__ import annotations

import random
import uuid

from harvester.emulator.corpus import Corpus, Doc, TRACKS_PER_RELEASE_PAGE

FIRST_NAMES = ["Anna", "Björk", "Ólafur", "Zoë", "José", "Mikko", "Chloé", "Søren", "Ana", "Kenji", "Amara",
               "Łukasz", "Nadia", "Ilya", "Dário", "Fatou", "Henrik", "Leïla", "Tomás", "Yuki"]
LAST_NAMES = ["Sørensen", "Nakamura", "Okafor", "Müller", "García", "Nowak", "Dubois", "Ivanova", "Haddad",
              "Lindqvist", "Costa", "Kowalczyk", "Rossi", "Eriksen", "Moreau"]
BAND_WORDS = ["Silver", "Night", "Echo", "Paper", "Velvet", "Static", "Northern", "Glass", "Electric",
              "Hollow", "Neon", "Quiet", "Copper", "Drift", "Signal", "Сплин", "東京", "Ελλάδα", "Café", "Ñandú"]
TITLE_WORDS = ["Love", "Rain", "City", "Dream", "Fire", "Ocean", "Light", "Shadow", "River", "Song", "Heart",
               "Road", "Winter", "Summer", "Gold", "Stars", "Home", "Lost", "Wild", "Blue", "Été", "Nuit",
               "Träume", "Ψυχή", "Сердце", "夜", "Corazón", "Åsa", "Rêve", "Straße"]
COUNTRIES = ["GB", "US", "DE", "FR", "SE", "JP", "BR", "NO", "FI", "ES", "IT", "NL", "XW", "PL", "CA"]
ISRC_COUNTRIES = ["GB", "US", "DE", "FR", "SE", "JP", "BR", "NO", "FI", "ES", "IT", "NL", "QM", "QZ", "CA"]
ARTIST_TYPES = ["Person", "Group", "Group", "Person", "Orchestra", "Choir", None]
LABEL_TYPES = ["Original Production", "Imprint", "Production", "Reissue Production", None]
PRIMARY_TYPES = ["Album", "Album", "Album", "Single", "Single", "EP", "Other", "Broadcast"]
SECONDARY_TYPES = [[], [], [], [], [], ["Compilation"], ["Live"], ["Remix"], ["Soundtrack"], ["Live", "Compilation"]]
STATUSES = ["Official", "Official", "Official", "Official", "Promotion", "Bootleg", "Pseudo-Release"]
FORMATS = ["CD", "CD", "Digital Media", "12\" Vinyl", "Cassette", None]
ALPHANUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


class Generator:
    """Draws every value from one ``random.Random``; holds the corpus being built."""

    def __init__(self, seed: int):
        self.rng = random.Random(seed)
        self.corpus = Corpus()
        self.isrcs_issued: list[str] = []

    def mbid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def title(self, words: int) -> str:
        return " ".join(self.rng.choice(TITLE_WORDS) for _ in range(words))

    def date(self) -> str:
        """Full, year-month, year-only or unknown, as MusicBrainz has them."""
        roll = self.rng.random()
        year = self.rng.randint(1955, 2025)
        if roll < 0.08:
            return ""
        if roll < 0.25:
            return f"{year}"
        if roll < 0.35:
            return f"{year}-{self.rng.randint(1, 12):02d}"
        return f"{year}-{self.rng.randint(1, 12):02d}-{self.rng.randint(1, 28):02d}"

    def isrc(self) -> str:
        rng = self.rng
        code = (rng.choice(ISRC_COUNTRIES) + "".join(rng.choice(ALPHANUM) for _ in range(3))
                + f"{rng.randint(0, 99):02d}{rng.randint(0, 99999):05d}")
        self.isrcs_issued.append(code)
        return code

    def isrcs(self) -> list[str]:
        """0, 1 or 2 codes; now and then one already issued to another recording."""
        roll = self.rng.random()
        if roll < 0.35:
            return []
        codes = [self.isrc()] if roll < 0.85 else [self.isrc(), self.isrc()]
        if self.rng.random() < 0.02 and len(self.isrcs_issued) > 2:
            codes[0] = self.rng.choice(self.isrcs_issued[:-1])
        return sorted(set(codes))

    def artist(self) -> str:
        rng = self.rng
        artist_type = rng.choice(ARTIST_TYPES)
        if artist_type == "Person":
            first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
            name, sort_name = f"{first} {last}", f"{last}, {first}"
        else:
            words = f"{rng.choice(BAND_WORDS)} {rng.choice(BAND_WORDS)}"
            name, sort_name = f"The {words}", f"{words}, The"
        mbid = self.mbid()
        self.corpus.artists[mbid] = {"id": mbid, "name": name, "sort-name": sort_name, "type": artist_type,
                                     "country": rng.choice(COUNTRIES), "disambiguation": ""}
        return mbid

    def label(self) -> str:
        rng = self.rng
        name = f"{rng.choice(BAND_WORDS)} {rng.choice(['Records', 'Music', 'Recordings', 'Tonträger', 'Disques'])}"
        mbid = self.mbid()
        self.corpus.labels[mbid] = {"id": mbid, "name": name, "sort-name": name, "type": rng.choice(LABEL_TYPES),
                                    "country": rng.choice(COUNTRIES), "disambiguation": "",
                                    "label-code": rng.choice([None, rng.randint(100, 99999)])}
        return mbid

    def credit(self, artist_id: str) -> list[Doc]:
        return [{"name": self.corpus.artists[artist_id]["name"], "joinphrase": "", "artist": artist_id}]

    def featuring(self, artist_id: str, guest_id: str) -> list[Doc]:
        return [{"name": self.corpus.artists[artist_id]["name"], "joinphrase": " feat. ", "artist": artist_id},
                {"name": self.corpus.artists[guest_id]["name"], "joinphrase": "", "artist": guest_id}]

    def recording(self, credit: list[Doc], date: str) -> str:
        rng = self.rng
        mbid = self.mbid()
        self.corpus.recordings[mbid] = {
            "id": mbid, "title": self.title(rng.randint(1, 4)),
            "length": None if rng.random() < 0.05 else rng.randint(30_000, 600_000),
            "video": rng.random() < 0.01, "disambiguation": "", "first-release-date": date,
            "artist-credit": credit, "isrcs": self.isrcs(),
        }
        return mbid

    def release_group(self, artist_id: str, guests: list[str], labels: list[str]) -> int:
        """A release group with 1-2 releases (the second reuses the first's recordings); returns its track count."""
        rng = self.rng
        rgid = self.mbid()
        release_dates = [self.date() for _ in range(rng.choice([1, 1, 1, 2]))]
        known = sorted(d for d in release_dates if d)
        self.corpus.release_groups[rgid] = {
            "id": rgid, "title": self.title(rng.randint(1, 3)), "primary-type": rng.choice(PRIMARY_TYPES),
            "secondary-types": list(rng.choice(SECONDARY_TYPES)),
            "first-release-date": known[0] if known else "", "disambiguation": "",
            "artist-credit": self.credit(artist_id),
        }
        media_plan = [rng.randint(8, 20) for _ in range(rng.choice([1, 1, 1, 2, 3]))]
        recordings: list[str] = []
        for tracks in media_plan:
            for _ in range(tracks):
                credit = (self.featuring(artist_id, rng.choice(guests))
                          if guests and rng.random() < 0.08 else self.credit(artist_id))
                recordings.append(self.recording(credit, known[0] if known else ""))
        total = 0
        for date in release_dates:
            total += self.release(rgid, artist_id, date, media_plan, recordings, labels)
        return total

    def release(self, rgid: str, artist_id: str, date: str, media_plan: list[int], recordings: list[str],
                labels: list[str]) -> int:
        rng = self.rng
        release_id = self.mbid()
        media, cursor = [], 0
        for position, tracks in enumerate(media_plan, start=1):
            medium_tracks = []
            for number in range(1, tracks + 1):
                recording_id = recordings[cursor]
                cursor += 1
                medium_tracks.append({
                    "id": self.mbid(), "number": str(number), "position": number,
                    "title": self.corpus.recordings[recording_id]["title"],
                    "length": self.corpus.recordings[recording_id]["length"], "recording": recording_id,
                })
            media.append({"position": position, "format": rng.choice(FORMATS), "title": "", "track-count": tracks,
                          "track-offset": 0, "tracks": medium_tracks})
        label_info = [] if not labels or rng.random() < 0.1 else [
            {"catalog-number": rng.choice([None, f"{rng.choice(ALPHANUM)}{rng.choice(ALPHANUM)}-{rng.randint(1, 9999)}"]),
             "label": rng.choice(labels)}
        ]
        self.corpus.releases[release_id] = {
            "id": release_id, "title": self.corpus.release_groups[rgid]["title"],
            "status": rng.choice(STATUSES), "date": date, "country": rng.choice(COUNTRIES + [None]),
            "barcode": rng.choice([None, "", f"{rng.randint(10**11, 10**13 - 1)}"]), "disambiguation": "",
            "artist-credit": self.credit(artist_id), "release-group": rgid,
            "label-info": label_info, "media": media,
        }
        return sum(media_plan)


def generate_corpus(seed: int, artists: int = 20, labels: int | None = None,
                    release_groups_per_artist: tuple[int, int] = (1, 6)) -> Corpus:
    """A deterministic corpus: ``artists`` artists (the first with more than 500
    tracks, the last with none), ``labels`` labels (default artists // 4 + 1)."""
    if artists < 2:
        raise ValueError("need at least 2 artists (one prolific, one with no releases)")
    gen = Generator(seed)
    artist_ids = [gen.artist() for _ in range(artists)]
    label_ids = [gen.label() for _ in range(labels if labels is not None else artists // 4 + 1)]
    silent = artist_ids[-1]
    guests = artist_ids[:-1]
    for position, artist_id in enumerate(artist_ids[:-1]):
        others = [g for g in guests if g != artist_id]
        tracks = 0
        for _ in range(gen.rng.randint(*release_groups_per_artist)):
            tracks += gen.release_group(artist_id, others, label_ids)
        while position == 0 and tracks <= TRACKS_PER_RELEASE_PAGE + 20:
            tracks += gen.release_group(artist_id, others, label_ids)
    gen.recording(gen.credit(artist_ids[0]), "")  # a recording on no release
    gen.corpus.artists[silent]["disambiguation"] = "no releases"
    gen.corpus.redirects["artist"][gen.mbid()] = artist_ids[0]
    gen.corpus.redirects["recording"][gen.mbid()] = next(iter(gen.corpus.recordings))
    return gen.corpus
