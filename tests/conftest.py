"""Shared fixtures: a small generated corpus, an emulator factory, fake time."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import pytest

from harvester.emulator import Corpus, Emulator, generate_corpus

FIXTURES = Path(__file__).parent / "fixtures" / "ws2"
CONTACT = "tests@example.org"


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
    docs = [json.loads(path.read_text(encoding="utf-8")) for path in sorted(FIXTURES.glob("*.json"))]
    return Corpus.from_documents(doc for doc in docs if "id" in doc)


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def emulator(corpus: Corpus) -> Iterator[Emulator]:
    with Emulator(corpus) as emu:
        yield emu
