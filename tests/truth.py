"""What a harvest must store, computed straight from the emulator's corpus
(not through the harvester, the normalizer or the emulator's renderer), and
the fewest requests a perfect client needs for it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

PAGE = 100
TRACK_BUDGET = 500


def credited(entity: dict) -> set[str]:
    return {part["artist"] for part in entity.get("artist-credit") or ()}


def pages(count: int) -> int:
    return max(1, math.ceil(count / PAGE))


def release_pages(corpus, release_ids: list[str]) -> int:
    """Pages of a release browse with recordings: 100 releases, cut at 500 tracks."""
    if not release_ids:
        return 1
    count, offset = 0, 0
    while offset < len(release_ids):
        tracks, taken = 0, 0
        for release_id in release_ids[offset:offset + PAGE]:
            tracks += sum(len(m["tracks"]) for m in corpus.releases[release_id]["media"])
            if taken and tracks > TRACK_BUDGET:
                break
            taken += 1
        offset += taken
        count += 1
    return count


@dataclass
class Truth:
    artists: set[str] = field(default_factory=set)
    labels: set[str] = field(default_factory=set)
    release_groups: set[str] = field(default_factory=set)
    releases: set[str] = field(default_factory=set)
    recordings: set[str] = field(default_factory=set)
    tracks: set[str] = field(default_factory=set)
    isrc_pairs: set[tuple[str, str]] = field(default_factory=set)
    credit_names: set[tuple[str, str, int, str]] = field(default_factory=set)
    floor: int = 0

    def add_release(self, corpus, release_id: str) -> None:
        release = corpus.releases[release_id]
        self.releases.add(release_id)
        self._credit("release", release_id, release)
        if release.get("release-group"):
            self.add_release_group(corpus, release["release-group"])
        for info in release["label-info"]:
            if info["label"]:
                self.labels.add(info["label"])
        for medium in release["media"]:
            for track in medium["tracks"]:
                self.tracks.add(track["id"])
                self.add_recording(corpus, track["recording"])

    def add_release_group(self, corpus, group_id: str) -> None:
        self.release_groups.add(group_id)
        self._credit("release_group", group_id, corpus.release_groups[group_id])

    def add_recording(self, corpus, recording_id: str) -> None:
        recording = corpus.recordings[recording_id]
        self.recordings.add(recording_id)
        self._credit("recording", recording_id, recording)
        self.isrc_pairs |= {(recording_id, code) for code in recording.get("isrcs") or ()}

    def _credit(self, entity_type: str, entity_id: str, entity: dict) -> None:
        for position, part in enumerate(entity.get("artist-credit") or ()):
            self.artists.add(part["artist"])
            self.credit_names.add((entity_type, entity_id, position, part["artist"]))


def artist_truth(corpus, artist_id: str) -> Truth:
    truth = Truth(artists={artist_id})
    group_ids = [g for g, group in corpus.release_groups.items() if artist_id in credited(group)]
    release_ids = [r for r, release in corpus.releases.items() if artist_id in credited(release)]
    recording_ids = [r for r, recording in corpus.recordings.items() if artist_id in credited(recording)]
    for group_id in group_ids:
        truth.add_release_group(corpus, group_id)
    for release_id in release_ids:
        truth.add_release(corpus, release_id)
    for recording_id in recording_ids:
        truth.add_recording(corpus, recording_id)
    truth.floor = 1 + pages(len(group_ids)) + release_pages(corpus, release_ids) + pages(len(recording_ids))
    return truth


def label_truth(corpus, label_id: str) -> Truth:
    truth = Truth(labels={label_id})
    release_ids = [r for r, release in corpus.releases.items()
                   if label_id in {info["label"] for info in release["label-info"]}]
    for release_id in release_ids:
        truth.add_release(corpus, release_id)
    truth.floor = 1 + release_pages(corpus, release_ids)
    return truth


def release_group_truth(corpus, group_id: str) -> Truth:
    truth = Truth()
    truth.add_release_group(corpus, group_id)
    release_ids = [r for r, release in corpus.releases.items() if release.get("release-group") == group_id]
    for release_id in release_ids:
        truth.add_release(corpus, release_id)
    truth.floor = 1 + release_pages(corpus, release_ids)
    return truth


def isrc_truth(corpus, codes: list[str]) -> Truth:
    truth = Truth()
    for recording_id, recording in corpus.recordings.items():
        if set(recording.get("isrcs") or ()) & set(codes):
            truth.add_recording(corpus, recording_id)
    truth.floor = len(codes)
    return truth


def stored(db) -> Truth:
    """The same sets, read from a database."""
    def ids(table: str) -> set[str]:
        return {row[0] for row in db.execute(f"SELECT id FROM [{table}]")}

    return Truth(
        artists=ids("artist"), labels=ids("label"), release_groups=ids("release_group"), releases=ids("release"),
        recordings=ids("recording"), tracks=ids("track"),
        isrc_pairs={tuple(row) for row in db.execute("SELECT recording_id, isrc FROM recording_isrc")},
        credit_names={tuple(row) for row in db.execute(
            "SELECT entity_type, entity_id, position, artist_id FROM artist_credit_name WHERE entity_type != 'track'")},
    )
