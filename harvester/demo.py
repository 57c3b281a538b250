"""The offline demo: the whole cycle on real MusicBrainz data, without a network.

Real WS/2 lookup bodies (CC0) ship inside the package (``harvester/data/demo``).
The demo serves them from the project's emulator on 127.0.0.1 and harvests
them through the normal code path (``harvest_with_settings``, ``WS2Client``,
the rate limiter, the run lock and the ledger), exactly as `mbharvest
harvest` would against a mirror; then it computes the statistics and writes
the report. What a newcomer sees is what the real thing does.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Callable

import requests

from harvester import ledger
from harvester.client import WS2Client
from harvester.emulator import Corpus, Emulator
from harvester.emulator.corpus import documents_in_folder
from harvester.errors import HarvesterError, UsageError
from harvester.harvest import Outcome, harvest_with_settings, plan_for
from harvester.report import write_report
from harvester.settings import Settings
from harvester.stats import compute_stats
from harvester.store import reading, utc_now

DEFAULT_OUT = Path("data")
DB_NAME = "demo.db"
REPORT_DIR_NAME = "demo-report"
# The demo only ever talks to its own emulator on 127.0.0.1, so a fixed
# contact that reaches nobody is acceptable here and nowhere else: the real
# service needs the user's own contact (see next_steps()).
DEMO_CONTACT = "mbharvest-demo@example.invalid"
# The emulator is a mirror, so the musicbrainz.org ceiling of 1 req/s does not
# apply; the limiter stays in the path all the same.
DEMO_RATE = 50.0
# What the demo harvests, in this order: (target, its keys' noun, what each key brings).
TARGETS = (
    ("artist", "artists", "with release groups, releases, recordings"),
    ("release", "releases", "with media, tracks, recordings, ISRCs, labels"),
    ("recording", "recordings", "with ISRCs and artist credits"),
    ("isrc", "ISRCs", "with the recordings carrying them"),
)
# For the "what next" text: Nirvana, the artist of the README's examples.
EXAMPLE_ARTIST = "5b11f4ce-a62d-471e-81fc-a69a8278c7da"

Document = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class DemoStep:
    target: str
    keys: tuple[str, ...]
    outcome: Outcome


@dataclass(frozen=True)
class DemoResult:
    db: Path
    report_dir: Path
    report_files: tuple[Path, ...]
    steps: tuple[DemoStep, ...]
    stats: dict[str, Any]
    seconds: float


def bundled_documents() -> list[Document]:
    """The bundled lookup bodies as (entity type, body), in path order.

    Read through importlib.resources, so an installed wheel (no source tree,
    no tests/fixtures) has them too."""
    folder = resources.files("harvester") / "data" / "demo"
    if not folder.is_dir():
        raise HarvesterError("the demo data is missing from this installation (harvester/data/demo); "
                             "reinstall mbharvest")
    return list(documents_in_folder(folder))


def demo_keys(documents: list[Document], corpus: Corpus) -> dict[str, tuple[str, ...]]:
    """The keys of each demo harvest: every artist with a release in the corpus,
    every bundled release and recording, every ISRC. Sorted, so runs repeat."""
    artists = sorted(a for a in corpus.artists if corpus.index.releases_by_artist.get(a))
    by_type = {target: sorted({body["id"] for entity, body in documents if entity == target})
               for target in ("release", "recording")}
    isrcs = sorted(corpus.index.recordings_by_isrc)
    return {"artist": tuple(artists), "release": tuple(by_type["release"]),
            "recording": tuple(by_type["recording"]), "isrc": tuple(isrcs)}


def remove_old_database(db_path: Path) -> None:
    """A rerun starts from nothing: delete the demo database of an earlier run
    (under its run lock, so a demo still running elsewhere is not pulled
    from under itself)."""
    with ledger.run_lock(db_path, "demo", utc_now()):
        for suffix in ("", "-wal", "-shm"):
            path = Path(f"{db_path}{suffix}")
            if path.exists():
                path.unlink()


def _no_proxy_session() -> requests.Session:
    """A session that ignores proxy settings: the emulator is on 127.0.0.1,
    and a proxy from the environment must not see (or break) the demo."""
    session = requests.Session()
    session.trust_env = False
    return session


def run_demo(out_dir: str | Path = DEFAULT_OUT, *, say: Callable[[str], None] = lambda _: None) -> DemoResult:
    """Harvest the bundled data from a local emulator into out_dir/demo.db,
    then write the report to out_dir/demo-report. `say` gets one line per step."""
    started = time.monotonic()
    out_dir = Path(out_dir)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise UsageError(f"cannot create the output folder {out_dir} ({exc.strerror})") from None
    db_path = out_dir / DB_NAME
    report_dir = out_dir / REPORT_DIR_NAME

    documents = bundled_documents()
    corpus = Corpus.from_documents(documents)
    releases = sum(1 for entity, _ in documents if entity == "release")
    say(f"Loaded {len(documents)} real MusicBrainz lookup bodies (CC0, bundled): {releases} releases and "
        f"{len(documents) - releases} recordings,")
    say(f"holding {len(corpus.recordings)} recordings, {len(corpus.artists)} artists and {len(corpus.labels)} labels.")
    remove_old_database(db_path)

    steps = []
    with tempfile.TemporaryDirectory(prefix="mbharvest-demo-") as cache_dir, Emulator(corpus) as emulator:
        say(f"Started the local WS/2 emulator at {emulator.url}: no network is used.")
        settings = Settings(db=db_path, server=emulator.url, rate=DEMO_RATE, contact=DEMO_CONTACT)
        # a private rate-limit record: the demo's server is its own, shared with no one
        with WS2Client.from_settings(settings, cache_dir=cache_dir, session=_no_proxy_session()) as client:
            keys_of = demo_keys(documents, corpus)
            for number, (target, noun, brings) in enumerate(TARGETS, start=1):
                keys = keys_of[target]
                say(f"[{number}/{len(TARGETS) + 1}] mbharvest harvest {target}: {len(keys)} {noun}, {brings}")
                outcome = harvest_with_settings(settings, [plan_for(target, key) for key in keys],
                                                command=f"harvest {target}", args={"keys": list(keys)},
                                                client=client)
                if outcome.status != ledger.COMPLETE or outcome.failed_keys or outcome.gone_keys:
                    raise HarvesterError(f"demo harvest {target} did not complete ({outcome.status}): "
                                         + "; ".join(outcome.failed_keys + outcome.gone_keys))
                say(f"      {outcome.requests} requests, {outcome.pages} pages, "
                    f"{outcome.entities_written:,} entities written [run {outcome.run_id}]")
                steps.append(DemoStep(target, keys, outcome))

    say(f"[{len(TARGETS) + 1}/{len(TARGETS) + 1}] mbharvest report: statistics, plots, report.md and .html")
    with reading(db_path) as db:
        stats = compute_stats(db)
        written = write_report(db, report_dir)
    return DemoResult(db_path, report_dir, tuple(written), tuple(steps), stats, time.monotonic() - started)


def where_things_are(result: DemoResult) -> str:
    plots = sum(1 for path in result.report_files if path.suffix == ".png")
    db = result.db
    return "\n".join([
        f"Done in {result.seconds:.1f} s, {sum(s.outcome.requests for s in result.steps)} requests to the emulator.",
        f"  database: {db}",
        f"  report:   {result.report_dir / 'report.html'} (open it in a browser; "
        f"also report.md and {plots} PNG plots there)",
        "Look around:",
        f"  mbharvest stats --db {db}",
        f"  mbharvest runs --db {db}",
        f"  sqlite3 -column {db} \"SELECT title, isrcs FROM recording_with_isrcs WHERE isrc_count > 0\"",
    ])


def next_steps() -> str:
    """What to run against the real service (identified, at 1 request per second)."""
    return "\n".join([
        "Next, against the real MusicBrainz (1 request per second; say who you are first):",
        "  export MBHARVEST_CONTACT=you@example.org",
        f"  mbharvest plan artist {EXAMPLE_ARTIST}      # what it would cost (a few probes)",
        f"  mbharvest harvest artist {EXAMPLE_ARTIST}   # into data/musicbrainz.db",
        "  mbharvest stats && mbharvest report",
        "For whole tables (more than a day of requests), import the JSON dumps instead:",
        "  README.md, \"Importing the JSON dumps\".",
    ])
