import csv
import json
from pathlib import Path

import pytest
import sqlite_utils

from harvester.store import ensure_db_shape

FIXTURES = Path(__file__).parent / "fixtures"
WS2 = FIXTURES / "ws2"


def load_ws2(path: str):
    """A real MusicBrainz response body from tests/fixtures/ws2 (CC0)."""
    return json.loads((WS2 / path).read_text(encoding="utf-8"))


def ws2_index() -> list[dict]:
    with open(WS2 / "INDEX.tsv", encoding="utf-8") as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


@pytest.fixture
def db():
    """An in-memory database at the current shape."""
    database = sqlite_utils.Database(memory=True)
    ensure_db_shape(database)
    return database
