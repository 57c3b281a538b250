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


def test_while_keys_remain_unbegun_the_pages_are_open_ended_and_the_eta_comes_from_the_keys():
    discovering = ProgressEvent(pages_done=19, pages_known=19, entities_written=1234, requests=20, elapsed=10.0,
                                keys_done=4, keys_started=5, keys_total=20)
    assert describe(discovering) == "keys 4/20  pages 19/19+  entities 1,234  2.00 req/s  ETA ~0:40"
    nothing_done_yet = ProgressEvent(3, 3, 10, 3, 1.0, keys_done=0, keys_started=1, keys_total=20)
    assert describe(nothing_done_yet).endswith("pages 3/3+  entities 10  3.00 req/s  ETA -")
    all_begun = ProgressEvent(30, 40, 99, 30, 10.0, keys_done=19, keys_started=20, keys_total=20)
    assert describe(all_begun) == "keys 19/20  pages 30/40  entities 99  3.00 req/s  ETA 0:03"
    refresh = ProgressEvent(5, 5, 50, 5, 5.0, keys_done=5, keys_started=5, keys_total=None)
    assert describe(refresh) == "keys 5  pages 5/5+  entities 50  1.00 req/s  ETA -"


def test_a_multi_key_harvest_reports_unbegun_keys_until_the_last_is_begun(tmp_path):
    from harvester.emulator import Emulator, generate_corpus
    from harvester.harvest import harvest_with_settings, plan_for
    from harvester.settings import Settings

    corpus = generate_corpus(seed=2, artists=4)
    keys = sorted(corpus.artists)
    events = []
    with Emulator(corpus) as emu:
        settings = Settings(db=tmp_path / "p.db", server=emu.url, rate=0, contact="tests@example.org")
        harvest_with_settings(settings, [plan_for("artist", key) for key in keys], command="harvest artist",
                              args={"keys": keys}, on_progress=events.append)
    lines = [describe(event) for event in events]
    begun_all = next(n for n, event in enumerate(events) if event.keys_started == len(keys))
    assert all("+" in line for line in lines[:begun_all]) and lines[0].startswith(f"keys 0/{len(keys)}")
    assert not any("+" in line for line in lines[begun_all:])
    assert lines[-1].startswith(f"keys {len(keys)}/{len(keys)}  pages {events[-1].pages_done}/{events[-1].pages_done}")


def test_plan_without_a_rate_limit_says_so_and_counts_in_words(emulator, corpus):
    recording = sorted(corpus.recordings)[0]
    result = CliRunner().invoke(cli, ["plan", "recording", recording, "--server", emulator.url, "--rate", "0",
                                      "--contact", "tests@example.org"])
    assert result.exit_code == 0, result.output
    assert result.output.splitlines() == [
        f"recording:{recording}  lookup recording: 1 item, 1 request",
        "total: 1 request, no rate limit (--rate 0): as fast as the server answers "
        "(the estimate itself used 0 requests)"]


def test_a_one_request_harvest_says_1_request(emulator, corpus, tmp_path):
    recording = sorted(corpus.recordings)[0]
    result = CliRunner().invoke(cli, ["harvest", "recording", recording, "--server", emulator.url, "--rate", "0",
                                      "--contact", "tests@example.org", "--db", str(tmp_path / "o.db"), "-v"])
    assert result.exit_code == 0, result.output
    assert result.output.startswith("harvest recording: complete, 1 request, 1 page, ")
