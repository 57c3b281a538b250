"""Shared fixtures: real MusicBrainz bodies, an in-memory database, a small
generated corpus, an emulator factory, fake time."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
from pathlib import Path
from typing import Iterator

import pytest
import sqlite_utils

from harvester.emulator import Corpus, Emulator, generate_corpus
from harvester.store import ensure_db_shape

FIXTURES = Path(__file__).parent / "fixtures"
WS2 = FIXTURES / "ws2"
CONTACT = "tests@example.org"
# Seconds a request may arrive after the moment its process took the shared
# limiter's slot (scheduling on a loaded 2-core CI machine: one CI run saw a
# request arrive > 0.05 s late and the next on time, and the emulator refused the
# next). The service limits an average rate, so tests of the shared budget give
# the emulator this tolerance; two processes NOT sharing it still fail them
# (gaps near 0, the run taking about half the time it must).
ARRIVAL_JITTER = 0.2
# real lookups (one of each entity type) that the emulator's real corpus is made of
REAL_CORPUS_BODIES = (
    "musicbrainz-android/artist_lookup.json", "musicbrainz-android/label_lookup.json",
    "sortipy/recordings-line1-ab80a174-1b7d-41c8-bddb-5edfd849d512.json",
    "musicbrainz-android/release_lookup.json", "musicbrainz-android/release-group_lookup.json",
    "picard/release.json", "sortipy/releases-line1-58558cec-d9f1-40e4-a857-f7af88883c12.json",
)


@pytest.fixture(autouse=True, scope="session")
def default_stop_signals() -> Iterator[None]:
    """The suite sends SIGINT and SIGHUP to mbharvest (in its own process and
    in children), and mbharvest rightly keeps a stop signal it inherits
    ignored (nohup, a job started with `&` by a script): the suite runs with
    the default dispositions, which its children inherit, wherever it was
    started from."""
    previous = {signal.SIGINT: signal.signal(signal.SIGINT, signal.default_int_handler),
                signal.SIGHUP: signal.signal(signal.SIGHUP, signal.SIG_DFL)}
    yield
    for signum, handler in previous.items():
        signal.signal(signum, handler)


@pytest.fixture(autouse=True, scope="session")
def children_dump_their_threads() -> Iterator[None]:
    """Every child the suite starts runs with faulthandler on, so that one
    that hangs can be made to show where (exit_code_of)."""
    previous = os.environ.get("PYTHONFAULTHANDLER")
    os.environ["PYTHONFAULTHANDLER"] = "1"
    yield
    if previous is None:
        del os.environ["PYTHONFAULTHANDLER"]
    else:
        os.environ["PYTHONFAULTHANDLER"] = previous


def exit_code_of(process: subprocess.Popen, timeout: float) -> int:
    """The child's exit code, its pipes drained meanwhile (a child never
    blocks on a full pipe). A child still running after `timeout` is sent
    SIGABRT and the test fails with every thread's traceback (its stderr)."""
    try:
        process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGABRT)
        _, stderr = process.communicate(timeout=30)
        pytest.fail(f"the child was still running {timeout} s on; its threads when stopped:\n{stderr}")
    return process.returncode


def load_ws2(path: str):
    """A real MusicBrainz response body from tests/fixtures/ws2 (CC0)."""
    return json.loads((WS2 / path).read_text(encoding="utf-8"))


def ws2_index() -> list[dict]:
    with open(WS2 / "INDEX.tsv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """A command-line run that sees no config from the repository, no
    MBHARVEST_* settings from the environment, and a private rate-limit record."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MBHARVEST_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("MBHARVEST_CONTACT", "MBHARVEST_SERVER", "MBHARVEST_RATE", "MBHARVEST_DB", "MBHARVEST_CONFIG",
                 "MBHARVEST_MAX_REQUESTS", "MBHARVEST_MAX_RUNTIME"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def db():
    """An in-memory database at the current shape."""
    database = sqlite_utils.Database(memory=True)
    ensure_db_shape(database)
    return database


class FakeTime:
    """A wall clock that only moves when someone sleeps on it; records every sleep."""

    def __init__(self, start: float = 1_700_000_000.0):
        self.now = start
        self.sleeps: list[float] = []

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


@pytest.fixture(scope="session")
def corpus() -> Corpus:
    return generate_corpus(1, artists=12)


@pytest.fixture(scope="session")
def real_corpus() -> Corpus:
    return Corpus.from_documents(load_ws2(path) for path in REAL_CORPUS_BODIES)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def emulator(corpus: Corpus) -> Iterator[Emulator]:
    with Emulator(corpus) as emu:
        yield emu
