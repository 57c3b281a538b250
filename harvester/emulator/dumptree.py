"""A local JSON-dump server: the tree data.metabrainz.org publishes, built from a corpus.

As musicbrainz-notes.md ("Bulk data") describes it: `LATEST` (the newest
folder's name and a newline), an empty `latest-is-<name>`, and one folder per
dump, `<YYYYMMDD-HHMMSS>/`, holding `<entity>.tar.xz`, `SHA256SUMS` and
`MD5SUMS` (`<hex digest> *<file name>`). Each archive holds, in this order,
`TIMESTAMP`, `COPYING`, `README`, `REPLICATION_SEQUENCE`, `SCHEMA_SEQUENCE`,
`mbdump/<entity>` (JSON Lines in no MBID order, keys in no fixed order,
compact separators, no newline after the last line) and
`JSON_DUMPS_SCHEMA_NUMBER`. The recording dump holds only recordings on no
release; the others sit inside the release lines. Only the two newest dumps
stay published. There are no tombstones: `evolve` makes the next dump's
corpus with entities deleted, merged away, changed and added, and they
simply stop appearing.

`answer` serves the tree (HTTP `Range` honoured: 206, or 416 past the
end); `DumpTree.app` is the same as an application the WS/2 emulator can
mount beside /ws/2/ (`Emulator(corpus, apps={ROOT + "/": tree.app})`).
`DumpServer` is a server of its own for download tests: it can ignore
`Range`, send slowly (so a test can kill a client mid-file), drop a
connection mid-body, and logs every request with the `Range` header it
carried and the body bytes it wrote. Run it in-process (`with
DumpServer(tree) as server: server.url`) or as its own process: `python -m
harvester.emulator.dumptree` (the URL is the first stdout line).
"""

from __future__ import annotations

import argparse
import copy
import hashlib
import io
import json
import random
import re
import socket
import sys
import tarfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler
from typing import Any, Iterator, Mapping
from urllib.parse import parse_qs, unquote, urlsplit

from harvester.emulator.corpus import ENTITIES, Corpus, Doc, credited_artists, medium_tracks, ref
from harvester.emulator.exchange import Headers, Reply, Request
from harvester.emulator.generate import generate_corpus
from harvester.emulator.render import Renderer
from harvester.emulator.serving import LocalServer, send_head, serve_until_stopped

ROOT = "/pub/musicbrainz/data/json-dumps"
# The eleven archives of a dump, in the order the server lists them. A corpus
# holds artists, labels, recordings, releases and release groups only: the
# other archives are served empty.
DUMP_ENTITIES = ("area", "artist", "event", "instrument", "label", "place", "recording", "release",
                 "release-group", "series", "work")
PUBLISHED_KEPT = 2
FULL_RELEASE = ("artist-credits", "labels", "recordings", "release-groups", "media", "isrcs")
RATED = frozenset({"artist", "label", "recording", "release-group"})
COPYING = (b"Creative Commons CC0 1.0 Universal (the core data of MusicBrainz; "
           b"https://creativecommons.org/publicdomain/zero/1.0/)\n")
README = b"The MusicBrainz JSON data dump (served by the mbharvest emulator).\n"
SCHEMA_SEQUENCE = b"30\n"
JSON_DUMPS_SCHEMA_NUMBER = b"1\n"
SEND_CHUNK = 16 << 10
RANGE_RE = re.compile(r"^bytes=(\d+)-(\d*)$")
SERVER = "nginx"


def dump_name_of(timestamp: str) -> str:
    """`2025-11-22 00:00:52.535446+00` -> `20251122-000052` (folder names are the dump's UTC time)."""
    digits = re.sub(r"\D", "", timestamp)
    return f"{digits[:8]}-{digits[8:14]}"


# ---- dump lines ---------------------------------------------------------------


def _with_dump_extras(entity: str, body: Doc, rng: random.Random) -> Doc:
    """What every dump line carries beyond a plain lookup (aliases,
    annotation, tags, genres, relations; ratings for some types), keys shuffled."""
    body = dict(body)
    body.update({"aliases": [], "annotation": rng.choice([None, "", "Imported from an old catalogue."]),
                 "tags": [{"name": rng.choice(["rock", "jazz", "electronic"]), "count": rng.randint(1, 9)}]
                 if rng.random() < 0.3 else [],
                 "genres": [], "relations": []})
    if entity in RATED:
        body["rating"] = {"value": rng.choice([None, 3.5, 4.0]), "votes-count": rng.randint(0, 5)}
    items = list(body.items())
    rng.shuffle(items)
    return dict(items)


def standalone_recordings(corpus: Corpus) -> list[str]:
    """Recordings on no release's tracklist: the only ones the recording dump holds."""
    on_releases = corpus.index.releases_by_recording
    return [rid for rid in corpus.recordings if rid not in on_releases]


def dump_lines(corpus: Corpus, entity: str, seed: int = 0) -> list[bytes]:
    """One compact JSON document per entity, in shuffled order."""
    if entity not in ENTITIES:
        return []
    rng = random.Random(f"{seed}:{entity}")
    renderer = Renderer(corpus, FULL_RELEASE)
    ids = standalone_recordings(corpus) if entity == "recording" else list(corpus.table(entity))
    rng.shuffle(ids)
    return [json.dumps(_with_dump_extras(entity, renderer.entity(entity, entity_id), rng), ensure_ascii=False,
                       separators=(",", ":")).encode("utf-8") for entity_id in ids]


def build_archive(entity: str, lines: list[bytes], timestamp: str, replication_sequence: int) -> bytes:
    """`<entity>.tar.xz` with the seven members in the published order; no newline after the last line."""
    members = [
        ("TIMESTAMP", timestamp.encode() + b"\n"),
        ("COPYING", COPYING),
        ("README", README),
        ("REPLICATION_SEQUENCE", f"{replication_sequence}\n".encode()),
        ("SCHEMA_SEQUENCE", SCHEMA_SEQUENCE),
        (f"mbdump/{entity}", b"\n".join(lines)),
        ("JSON_DUMPS_SCHEMA_NUMBER", JSON_DUMPS_SCHEMA_NUMBER),
    ]
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:xz", preset=1) as tar:
        for name, data in members:
            info = tarfile.TarInfo(name)
            info.size, info.mtime, info.mode = len(data), 1_700_000_000, 0o644
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def sums_file(files: Mapping[str, bytes], algorithm: str) -> bytes:
    return "".join(f"{hashlib.new(algorithm, data).hexdigest()} *{name}\n"
                   for name, data in sorted(files.items())).encode()


def build_folder(corpus: Corpus, timestamp: str, *, entities: tuple[str, ...] = DUMP_ENTITIES,
                 replication_sequence: int = 170_000, seed: int = 0) -> dict[str, bytes]:
    """A dump folder's files: the archives, SHA256SUMS and MD5SUMS."""
    archives = {f"{entity}.tar.xz": build_archive(entity, dump_lines(corpus, entity, seed), timestamp,
                                                  replication_sequence) for entity in entities}
    return {**archives, "SHA256SUMS": sums_file(archives, "sha256"), "MD5SUMS": sums_file(archives, "md5")}


# ---- the next dump: deletions, merges, changes ----------------------------------


@dataclass
class Changes:
    """What `evolve` did, per entity type (for tests to check the scenario is not empty)."""

    deleted: dict[str, list[str]] = field(default_factory=dict)
    merged: dict[str, dict[str, str]] = field(default_factory=dict)  # old id -> survivor
    changed: dict[str, list[str]] = field(default_factory=dict)
    added: dict[str, list[str]] = field(default_factory=dict)

    def note(self, kind: str, entity: str, entity_id: str, survivor: str | None = None) -> None:
        if kind == "merged":
            self.merged.setdefault(entity, {})[entity_id] = survivor or ""
        else:
            getattr(self, kind).setdefault(entity, []).append(entity_id)


def _tracks(corpus: Corpus) -> Iterator[tuple[str, Doc]]:
    for release_id, release in corpus.releases.items():
        for medium in release.get("media") or ():
            for track in medium_tracks(medium):
                yield release_id, track


def _credits(corpus: Corpus) -> list[list[Doc]]:
    """Every artist credit (of recordings, release groups, releases and tracks), to read or rewrite in place."""
    docs = [doc for table in (corpus.recordings, corpus.release_groups, corpus.releases) for doc in table.values()]
    docs += [track for _, track in _tracks(corpus)]
    return [doc["artist-credit"] for doc in docs if isinstance(doc.get("artist-credit"), list)]


def evolve(corpus: Corpus, seed: int = 1) -> tuple[Corpus, Changes]:
    """The corpus a later dump is made from (the given one is left as it is).

    Deleted: a release (its recordings on no other release become standalone
    and move to the recording dump), a standalone recording, a label (gone
    from the releases' label-info), an artist on no credit. Merged (the old
    MBID gone, the survivor kept and pointed at): two artists, two release
    groups, two recordings (tracks and ISRCs move to the survivor). Changed:
    a release title, a recording length and ISRCs, an artist name, a release
    group type. Added: an artist and a label."""
    rng = random.Random(seed)
    new = Corpus(artists=copy.deepcopy(corpus.artists), labels=copy.deepcopy(corpus.labels),
                 release_groups=copy.deepcopy(corpus.release_groups), releases=copy.deepcopy(corpus.releases),
                 recordings=copy.deepcopy(corpus.recordings), redirects=copy.deepcopy(corpus.redirects),
                 whole=set(corpus.whole))
    changes = Changes()
    touched: set[str] = set()

    def pick(ids) -> str:
        choices = sorted(set(ids) - touched)
        chosen = rng.choice(choices)
        touched.add(chosen)
        return chosen

    def recordings_on_releases() -> set[str]:
        return {ref(track.get("recording")) for _, track in _tracks(new)} - {None}

    # deletions
    standalone = [rid for rid in new.recordings if rid not in recordings_on_releases()]
    release_id = pick(new.releases)
    del new.releases[release_id]
    changes.note("deleted", "release", release_id)
    if standalone:
        recording_id = pick(standalone)
        del new.recordings[recording_id]
        changes.note("deleted", "recording", recording_id)
    label_id = pick(new.labels)
    del new.labels[label_id]
    for release in new.releases.values():
        release["label-info"] = [info for info in release.get("label-info") or ()
                                 if ref(info.get("label")) != label_id]
    changes.note("deleted", "label", label_id)
    credited = {artist for credit in _credits(new) for artist in credited_artists(credit)}
    uncredited = set(new.artists) - credited
    if uncredited:
        artist_id = pick(uncredited)
        del new.artists[artist_id]
        changes.note("deleted", "artist", artist_id)

    # merges
    old, survivor = pick(credited), pick(credited)
    for credit in _credits(new):
        for part in credit:
            if ref(part.get("artist")) == old:
                part["artist"] = survivor
    del new.artists[old]
    new.redirects["artist"][old] = survivor
    changes.note("merged", "artist", old, survivor)

    grouped = {ref(release.get("release-group")) for release in new.releases.values()} - {None}
    old, survivor = pick(grouped), pick(grouped)
    for release in new.releases.values():
        if ref(release.get("release-group")) == old:
            release["release-group"] = survivor
    del new.release_groups[old]
    new.redirects["release-group"][old] = survivor
    changes.note("merged", "release-group", old, survivor)

    on_releases = recordings_on_releases()
    old, survivor = pick(on_releases), pick(on_releases)
    for _, track in _tracks(new):
        if ref(track.get("recording")) == old:
            track["recording"] = survivor
    kept = new.recordings[survivor]
    kept["isrcs"] = sorted(set(kept.get("isrcs") or ()) | set(new.recordings[old].get("isrcs") or ()))
    del new.recordings[old]
    new.redirects["recording"][old] = survivor
    changes.note("merged", "recording", old, survivor)

    # changes
    release_id = pick(new.releases)
    new.releases[release_id]["title"] += " (Remastered)"
    changes.note("changed", "release", release_id)
    recording_id = pick(recordings_on_releases())
    recording = new.recordings[recording_id]
    recording["length"] = (recording.get("length") or 200_000) + 1_000
    recording["isrcs"] = sorted(set(recording.get("isrcs") or ()) | {"GBZZZ2600001"})
    changes.note("changed", "recording", recording_id)
    artist_id = pick(set(new.artists) & credited)
    new.artists[artist_id]["name"] += " (renamed)"
    changes.note("changed", "artist", artist_id)
    group_id = pick(new.release_groups)
    new.release_groups[group_id]["primary-type"] = "EP" if new.release_groups[group_id].get(
        "primary-type") != "EP" else "Album"
    changes.note("changed", "release-group", group_id)

    # additions
    artist_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    new.artists[artist_id] = {"id": artist_id, "name": "Newly Added", "sort-name": "Added, Newly", "type": "Person",
                              "country": "SE", "disambiguation": ""}
    changes.note("added", "artist", artist_id)
    label_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
    new.labels[label_id] = {"id": label_id, "name": "Fresh Records", "sort-name": "Fresh Records", "type": "Imprint",
                            "country": "SE", "disambiguation": "", "label-code": None}
    changes.note("added", "label", label_id)
    return new, changes


# ---- the published tree -----------------------------------------------------------


class DumpTree:
    """The published files, by path under the json-dumps folder.

    `publish` adds a dump folder and points `LATEST` at it; only the two
    newest folders stay, as on the real server. `corrupt` spoils an archive
    after its digests were written (a bad mirror, a broken disk)."""

    def __init__(self) -> None:
        self.files: dict[str, bytes] = {}
        self.names: list[str] = []
        self.lock = threading.Lock()

    def publish(self, corpus: Corpus, timestamp: str, *, name: str | None = None,
                entities: tuple[str, ...] = DUMP_ENTITIES, replication_sequence: int = 170_000,
                seed: int = 0) -> str:
        """Publish a dump of `corpus` (folder `name`, default from the TIMESTAMP); returns the folder name."""
        name = name or dump_name_of(timestamp)
        self.install(name, build_folder(corpus, timestamp, entities=entities,
                                        replication_sequence=replication_sequence, seed=seed))
        return name

    def install(self, name: str, folder: Mapping[str, bytes]) -> None:
        """Put a built folder (file name -> bytes) online as `name` and point LATEST at the newest."""
        with self.lock:
            for old in self.names:
                self.files.pop(f"latest-is-{old}", None)
            self.names = sorted({*self.names, name})
            for gone in self.names[:-PUBLISHED_KEPT]:
                for path in [p for p in self.files if p.startswith(f"{gone}/")]:
                    del self.files[path]
            self.names = self.names[-PUBLISHED_KEPT:]
            self.files.update({f"{name}/{file}": data for file, data in folder.items()})
            self.files["LATEST"] = f"{self.names[-1]}\n".encode()
            self.files[f"latest-is-{self.names[-1]}"] = b""

    def app(self, request: Request) -> Reply:
        """The tree as an application the WS/2 emulator can mount (see `answer`)."""
        return answer(self, request)

    def corrupt(self, name: str, file: str) -> None:
        with self.lock:
            data = bytearray(self.files[f"{name}/{file}"])
            middle = len(data) // 2
            data[middle] ^= 0xFF
            self.files[f"{name}/{file}"] = bytes(data)

    def get(self, path: str) -> bytes | None:
        with self.lock:
            return self.files.get(path)

    def listing(self, folder: str) -> list[str] | None:
        """Names directly inside a folder ('' = the top), or None if there is no such folder."""
        prefix = f"{folder}/" if folder else ""
        with self.lock:
            names = sorted({path[len(prefix):].split("/")[0] + ("/" if "/" in path[len(prefix):] else "")
                            for path in self.files if path.startswith(prefix)})
        return names or None


# ---- the HTTP side ------------------------------------------------------------------


def _listing_page(folder: str, names: list[str]) -> bytes:
    links = "".join(f'<a href="{name}">{name}</a>\n' for name in names)
    return (f"<html><head><title>Index of {ROOT}/{folder}</title></head><body><h1>Index of {ROOT}/{folder}</h1>"
            f"<hr><pre><a href=\"../\">../</a>\n{links}</pre><hr></body></html>").encode()


def _plain(status: int, text: str, headers: Headers = ()) -> Reply:
    return Reply(status, text.encode(), "text/plain", headers, SERVER)


def answer(tree: DumpTree, request: Request, *, ignore_range: bool = False) -> Reply:
    """A GET or HEAD of the tree: a file (a `Range: bytes=N-` or `N-M` gives 206, or 416 past the end,
    unless ignore_range), a folder listing, or 404. The WS/2 emulator can mount it:
    `Emulator(corpus, apps={ROOT + "/": tree.app})`."""
    path = unquote(request.path)
    if not (path == ROOT or path.startswith(ROOT + "/")):
        return _plain(404, "Not Found")
    relative = path[len(ROOT):].strip("/")
    data = tree.get(relative)
    if data is None:
        names = tree.listing(relative)
        if names is None:
            return _plain(404, "Not Found")
        return Reply(200, _listing_page(relative, names), "text/html", (), SERVER)
    kind = "application/x-xz" if relative.endswith(".xz") else "text/plain"
    wanted = RANGE_RE.match(request.headers.get("Range") or "")
    if wanted is None or ignore_range:
        return Reply(200, data, kind, (("Accept-Ranges", "bytes"),), SERVER)
    start = int(wanted.group(1))
    end = min(int(wanted.group(2)), len(data) - 1) if wanted.group(2) else len(data) - 1
    if start >= len(data) or end < start:
        return Reply(416, b"", kind, (("Content-Range", f"bytes */{len(data)}"),), SERVER)
    return Reply(206, data[start:end + 1], kind,
                 (("Accept-Ranges", "bytes"), ("Content-Range", f"bytes {start}-{end}/{len(data)}")), SERVER)


class DumpServer(LocalServer):
    """Serves a DumpTree at `<url>` (= http://host:port/pub/musicbrainz/data/json-dumps)
    with what a test of downloads needs beyond `answer`: bodies sent at a set
    pace, connections dropped mid-body, and a log of each request's Range
    header and of the body bytes written.

    rate_bytes: bytes per second per response (None = as fast as possible);
    ignore_range: answer 200 with the whole file whatever Range says (some
    proxies do); faults: `{request_number: kind}`, kind `503:N` (Retry-After
    N), `500`, or `drop` (the headers and half the body, then the connection
    closes). Settings may be changed while it runs."""

    thread_name = "dump-server"

    def __init__(self, tree: DumpTree, *, rate_bytes: float | None = None, ignore_range: bool = False,
                 faults: Mapping[int, str] | None = None, host: str = "127.0.0.1", port: int = 0):
        self.tree = tree
        self.rate_bytes = rate_bytes
        self.ignore_range = ignore_range
        self.faults = dict(faults or {})
        self.log: list[dict[str, Any]] = []
        self.lock = threading.Lock()
        self.active = 0
        self.most_active = 0
        self.listen(_handler(self), host, port)

    @property
    def url(self) -> str:
        return self.base_url + ROOT

    @property
    def requests(self) -> list[dict[str, Any]]:
        """A copy of the log: n, method, path (under the root), range, user_agent, status, bytes (body sent)."""
        with self.lock:
            return [dict(entry) for entry in self.log]

    def reply(self, number: int, request: Request) -> Reply:
        fault = self.faults.get(number, "")
        if fault.startswith("503"):
            return _plain(503, "Service Temporarily Unavailable", (("Retry-After", fault.partition(":")[2] or "1"),))
        if fault == "500":
            return _plain(500, "Internal Server Error")
        return answer(self.tree, request, ignore_range=self.ignore_range)

    def _enter(self, entry: dict[str, Any]) -> None:
        with self.lock:
            entry["n"] = len(self.log) + 1
            self.log.append(entry)
            entry["active"] = True
            self.active += 1
            self.most_active = max(self.most_active, self.active)

    def _leave(self, entry: dict[str, Any]) -> None:
        """The request no longer counts as active (once, whichever comes first:
        just before its last bytes go out, or the handler's end)."""
        with self.lock:
            if entry.pop("active", False):
                self.active -= 1


def _handler(server: DumpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

        def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the stdlib's name
            pass

        def version_string(self) -> str:
            return SERVER

        def do_HEAD(self) -> None:  # noqa: N802 - the stdlib's name
            self.handle_request()

        def do_GET(self) -> None:  # noqa: N802 - the stdlib's name
            self.handle_request()

        def handle_request(self) -> None:
            split = urlsplit(self.path)
            host = self.headers.get("Host") or "{}:{}".format(*self.server.server_address[:2])
            request = Request(self.command, split.path, parse_qs(split.query, keep_blank_values=True), split.query,
                              self.headers, f"http://{host}")
            path = unquote(split.path)
            entry = {"method": self.command, "path": path[len(ROOT):].strip("/") if path.startswith(ROOT) else path,
                     "range": self.headers.get("Range"), "user_agent": self.headers.get("User-Agent", ""),
                     "status": 0, "bytes": 0}
            server._enter(entry)
            try:
                reply = server.reply(entry["n"], request)
                entry["status"] = reply.status
                self.send(entry, reply, drop=server.faults.get(entry["n"]) == "drop")
            except (BrokenPipeError, ConnectionResetError):
                self.close_connection = True
            finally:
                server._leave(entry)

        def send(self, entry: dict[str, Any], reply: Reply, drop: bool) -> None:
            # A client that has a whole reply may open its next connection before
            # this thread runs again: the request stops counting as active just
            # before its last write (the headers, or the last chunk), so
            # `most_active` measures the client, not this thread's scheduling.
            if self.command == "HEAD" or len(reply.body) < (2 if drop else 1):  # the headers are all
                server._leave(entry)
            body = send_head(self, reply, cut=drop)
            if self.command == "HEAD":
                return
            for start in range(0, len(body), SEND_CHUNK):
                chunk = body[start:start + SEND_CHUNK]
                if start + SEND_CHUNK >= len(body):
                    server._leave(entry)
                self.wfile.write(chunk)
                self.wfile.flush()
                with server.lock:
                    entry["bytes"] += len(chunk)
                if server.rate_bytes:
                    time.sleep(len(chunk) / server.rate_bytes)

    return Handler


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m harvester.emulator.dumptree", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--artists", type=int, default=20)
    parser.add_argument("--timestamp", default="2025-11-22 00:00:52.535446+00", help="the first dump's TIMESTAMP")
    parser.add_argument("--second", default=None, metavar="TIMESTAMP",
                        help="also publish a later dump (deletions, merges, changes) with this TIMESTAMP")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--rate-bytes", type=float, default=None, help="bytes per second per response")
    parser.add_argument("--ignore-range", action="store_true")
    args = parser.parse_args(argv)
    corpus = generate_corpus(args.seed, artists=args.artists)
    tree = DumpTree()
    tree.publish(corpus, args.timestamp)
    if args.second:
        tree.publish(evolve(corpus, args.seed)[0], args.second)
    server = DumpServer(tree, rate_bytes=args.rate_bytes, ignore_range=args.ignore_range, host=args.host,
                        port=args.port)
    return serve_until_stopped(server, server.url)


if __name__ == "__main__":
    sys.exit(main())
