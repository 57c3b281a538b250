"""Seeded synthetic MusicBrainz recording dump lines, shaped like real ones.

Each line has what a line of the published `mbdump/recording` carries: id,
title, length, video, disambiguation, first-release-date, 0-3 ISRCs, an
artist credit of 1-3 artists with aliases, and the padding fields real lines
carry (aliases, tags, genres, rating, relations, annotation). Artists are
drawn from a shared pool, as in the real catalogue where most artists credit
many recordings. Used by the benchmark and by the interruption test.
"""

from __future__ import annotations

import io
import json
import random
import re
import tarfile
import time
import uuid
from pathlib import Path
from typing import Iterator

WORDS = ("love night heart dream fire rain blue song light time road home dance gold river star "
         "wild shadow ocean summer winter city ghost echo silver paper glass stone").split()
COUNTRIES = ("GB", "US", "DE", "FR", "JP", "SE", "NL", "BR", "CA", "AU")
TIMESTAMP = "2025-11-22 00:00:52.535446+00"


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _title(rng: random.Random, words: int) -> str:
    return " ".join(rng.choice(WORDS) for _ in range(words)).title()


def _artist(rng: random.Random) -> dict:
    name = _title(rng, rng.randint(1, 3))
    return {
        "id": _uuid(rng), "name": name, "sort-name": name, "type": rng.choice(("Person", "Group")),
        "type-id": "b6e035f4-3ce9-331c-97df-83397230b0df", "disambiguation": "",
        "country": rng.choice(COUNTRIES),
        "aliases": [{"name": _title(rng, 2), "sort-name": _title(rng, 2), "locale": None, "type": "Search hint",
                     "type-id": "1937e404-b981-3cb7-8151-4c86ebfc8d8e", "primary": None, "begin": None,
                     "end": None, "ended": False} for _ in range(rng.randint(0, 3))],
        "tags": [], "genres": [],
    }


def recording_line(rng: random.Random, artists: list[dict]) -> dict:
    """One recording as a dump line (a WS/2 lookup with the dump's includes)."""
    credit = []
    chosen = rng.sample(artists, rng.randint(1, 3))
    for position, artist in enumerate(chosen):
        join = "" if position == len(chosen) - 1 else rng.choice((" & ", " feat. ", ", "))
        credit.append({"name": artist["name"], "joinphrase": join, "artist": artist})
    year = rng.randint(1950, 2025)
    return {
        "id": _uuid(rng),
        "title": _title(rng, rng.randint(1, 5)),
        "length": rng.choice((None, rng.randint(30_000, 600_000))),
        "video": rng.random() < 0.02,
        "disambiguation": rng.choice(("", "", "", "live", "radio edit")),
        "first-release-date": rng.choice(("", f"{year}", f"{year}-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}")),
        "isrcs": [f"{rng.choice(COUNTRIES)}{rng.choice(('ABC', 'UM7', 'AYE'))}{rng.randint(0, 99):02d}"
                  f"{rng.randint(0, 99999):05d}" for _ in range(rng.randint(0, 3))],
        "artist-credit": credit,
        "aliases": [],
        "annotation": None,
        "tags": [{"name": rng.choice(WORDS), "count": rng.randint(1, 5)} for _ in range(rng.randint(0, 3))],
        "genres": [{"name": rng.choice(("rock", "pop", "jazz")), "count": 1, "id": _uuid(rng),
                    "disambiguation": ""} for _ in range(rng.randint(0, 1))],
        "rating": {"value": rng.choice((None, 4.5)), "votes-count": rng.randint(0, 3)},
        "relations": [{"type": "performance", "type-id": "a3005666-a872-32c3-ad06-98af558e99b0",
                       "direction": "forward", "target-type": "work", "attributes": [], "attribute-ids": {},
                       "attribute-values": {}, "begin": None, "end": None, "ended": False,
                       "source-credit": "", "target-credit": "",
                       "work": {"id": _uuid(rng), "title": _title(rng, 3), "type": "Song", "language": "eng",
                                "languages": ["eng"], "iswcs": [], "disambiguation": "", "attributes": [],
                                "type-id": "f061270a-2fd6-32f1-a641-f0f8676d14e6"}}
                      for _ in range(rng.randint(0, 2))],
    }


def recording_lines(count: int, seed: int = 2025) -> Iterator[dict]:
    rng = random.Random(seed)
    artists = [_artist(rng) for _ in range(max(10, count // 8))]
    for _ in range(count):
        yield recording_line(rng, artists)


def write_recording_dump(path: Path, count: int, seed: int = 2025, timestamp: str = TIMESTAMP,
                         preset: int = 1) -> None:
    """`recording.tar.xz` as published: TIMESTAMP, COPYING, then mbdump/recording.

    The JSON Lines go through a temporary file next to the archive so that
    memory stays flat for large counts."""
    path = Path(path)
    lines_path = path.with_name(path.name + ".lines.tmp")
    with open(lines_path, "w", encoding="utf-8") as out:
        for doc in recording_lines(count, seed):
            out.write(json.dumps(doc, ensure_ascii=False, separators=(",", ":")) + "\n")
    mode = {".xz": "w:xz", ".gz": "w:gz"}.get(path.suffix, "w")
    options = {"preset": preset} if mode == "w:xz" else {}
    with tarfile.open(path, mode, **options) as tar:
        for name, text in (("TIMESTAMP", timestamp + "\n"), ("COPYING", "CC0 1.0 (core data)\n")):
            data = text.encode()
            info = tarfile.TarInfo(name)
            info.size, info.mtime = len(data), int(time.time())
            tar.addfile(info, io.BytesIO(data))
        tar.add(lines_path, arcname="mbdump/recording")
    lines_path.unlink()


_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def copies_with_fresh_ids(texts: list[str], count: int, seed: int = 2025) -> Iterator[str]:
    """`count` JSON lines cycling through real bodies, each copy with every
    MBID replaced (consistently within the copy), so each is a new entity
    with new tracks, recordings and credits: heavier than real data, where
    artists and labels recur."""
    rng = random.Random(seed)
    for index in range(count):
        fresh: dict[str, str] = {}
        yield _UUID.sub(lambda m: fresh.setdefault(m.group(0), _uuid(rng)), texts[index % len(texts)])


def write_lines_dump(path: Path, entity: str, lines: Iterator[str], timestamp: str = TIMESTAMP,
                     preset: int = 1) -> None:
    """`<entity>.tar.xz` with TIMESTAMP and mbdump/<entity> from JSON lines."""
    path = Path(path)
    lines_path = path.with_name(path.name + ".lines.tmp")
    with open(lines_path, "w", encoding="utf-8") as out:
        for line in lines:
            out.write(line + "\n")
    with tarfile.open(path, "w:xz", preset=preset) as tar:
        data = (timestamp + "\n").encode()
        info = tarfile.TarInfo("TIMESTAMP")
        info.size, info.mtime = len(data), int(time.time())
        tar.addfile(info, io.BytesIO(data))
        tar.add(lines_path, arcname=f"mbdump/{entity}")
    lines_path.unlink()
