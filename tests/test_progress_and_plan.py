"""The progress line (terminal only) and the plan command's advice."""

import io

import pytest
from click.testing import CliRunner

from harvester.cli import cli
from harvester.harvest import ProgressEvent
from harvester.progress import ProgressLine, describe, format_duration

pytestmark = pytest.mark.usefixtures("isolated")


def test_progress_describes_pages_entities_rate_and_eta():
    event = ProgressEvent(pages_done=10, pages_known=40, entities_written=12345, requests=11, elapsed=10.0)
    assert describe(event) == "pages 10/40  entities 12,345  1.10 req/s  ETA 0:30"
    assert format_duration(3725) == "1:02:05"


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_draws_only_on_a_terminal():
    event = ProgressEvent(1, 2, 3, 1, 1.0)
    quiet = io.StringIO()
    ProgressLine(stream=quiet)(event)
    assert quiet.getvalue() == ""
    screen = Terminal()
    line = ProgressLine(stream=screen, clock=lambda: 100.0)
    line(event)
    line.close()
    assert screen.getvalue().startswith("\rpages 1/2") and screen.getvalue().endswith("\r")


class HugeCatalogueClient:
    """Answers every probe with a catalogue far beyond a day of requests."""

    requests_made = 0

    def browse(self, entity, linked, key, includes=(), limit=100, offset=0):
        self.requests_made += 1
        plural = {"release-group": "release-groups", "release": "releases", "recording": "recordings"}[entity]
        items = [{"id": "x", "media": [{"track-count": 12}]}] if entity == "release" else []
        return {f"{entity}-count": 3_000_000, f"{entity}-offset": 0, plural: items * min(limit, 100)}


def test_plan_advises_the_dumps_beyond_a_day(monkeypatch):
    import harvester.client

    monkeypatch.setattr(harvester.client.WS2Client, "from_settings", classmethod(lambda cls, s: HugeCatalogueClient()))
    result = CliRunner().invoke(cli, ["plan", "artist", "5b11f4ce-a62d-471e-81fc-a69a8278c7da",
                                      "--contact", "tests@example.org"])
    assert result.exit_code == 0, result.output
    # 1 lookup + 30,000 release-group pages + 72,000 cut release pages + 30,000 recording pages
    assert "total: 132,001 requests" in result.output
    assert "import the JSON dumps" in result.output


def test_the_same_line_serves_dump_imports_with_their_own_wording():
    from pathlib import Path

    from harvester.dumps import Progress, format_progress

    state = Progress(path=Path("recording.tar.xz"), entity_type="recording", bytes_read=50_000_000,
                     bytes_total=100_000_000, lines=400_000, lines_this_run=400_000, seconds=20.0)
    screen = Terminal()
    line = ProgressLine(format_progress, stream=screen, clock=lambda: 100.0)
    line(state)
    assert screen.getvalue() == "\r" + format_progress(state)
    assert "recording.tar.xz: 50.0/100.0 MB (50%)" in screen.getvalue() and "ETA 0:00:20" in screen.getvalue()
    line.close()
    line.close()  # a second close writes nothing more
    assert screen.getvalue().count("\r") == 3


def test_the_line_passes_any_arguments_to_its_formatter_and_clears_on_exit():
    screen = Terminal()
    with ProgressLine(lambda table, rows: f"{table}: {rows:,} rows", stream=screen, clock=lambda: 100.0) as line:
        line("recording", 10000)
    assert screen.getvalue() == "\rrecording: 10,000 rows" + "\r" + " " * 22 + "\r"
