"""Reliability suite fixtures: an isolated environment and the tally of runs.

Every scenario records how often it ran and how often a check failed; with
MBHARVEST_RELIABILITY_REPORT=FILE the tallies are written to FILE (JSON) at
the end of the session, and `python -m tests.reliability.render FILE`
turns them into docs/reliability.md."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from tests.reliability.support import Tally


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """No config from the repository, a private rate-limit record."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MBHARVEST_CACHE_DIR", str(tmp_path / "cache"))
    for name in ("MBHARVEST_CONTACT", "MBHARVEST_SERVER", "MBHARVEST_RATE", "MBHARVEST_DB", "MBHARVEST_CONFIG",
                 "MBHARVEST_MAX_REQUESTS", "MBHARVEST_MAX_RUNTIME", "MBHARVEST_READ_TIMEOUT"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="session")
def tally():
    counts = Tally()
    yield counts
    target = os.environ.get("MBHARVEST_RELIABILITY_REPORT")
    if target:
        Path(target).write_text(json.dumps(counts.scenarios, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
