"""`import-dump --processes N`: ranges of lines staged by other processes
give the database one process gives (the truth tests run both ways:
test_dump_semantics.py; kill -9: tests/reliability/test_dump_import.py)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from harvester.cli import cli
from harvester.dumps import parallel
from harvester.dumps.manifest import table_keys
from harvester.dumps.staging import ColumnSets
from tests.reliability.support import ROOT, content

T1 = "2025-11-22T00:00:52Z"


def mbid(n: int) -> str:
    return f"00000000-0000-4000-8000-{n:012d}"


def varied_releases(count: int) -> list[bytes]:
    """Release lines whose optional fields come and go: each range meets its own column sets, in its own order."""
    lines = []
    for n in range(count):
        artist = {"id": mbid(900 + n % 4), "name": f"Artist {n % 4}"}
        if n % 3:
            artist["sort-name"] = f"{n % 4}, Artist"
        doc = {"id": mbid(n), "title": f"Release {n}",
               "artist-credit": [{"name": artist["name"], "joinphrase": "", "artist": artist}],
               "media": [{"position": 1, "tracks": [
                   {"id": mbid(10_000 + n), "position": 1, "number": "1", "title": "A",
                    "recording": {"id": mbid(20_000 + n % 7), "title": "A", "isrcs": [f"GBAAA{n % 7:07d}"]}}]}]}
        if n % 2:
            doc["barcode"] = f"{n:012d}"
        if n % 5 == 4:
            doc["media"][0]["format"] = "CD"
            doc["status"] = "Official"
        lines.append(json.dumps(doc).encode() + b"\n")
    return lines


def import_lines(tmp_path: Path, name: str, lines: list[bytes], *options: str):
    path = tmp_path / f"{name}.jsonl"
    path.write_bytes(b"".join(lines))
    return CliRunner().invoke(cli, ["import-dump", "--db", str(tmp_path / f"{name}.db"), "--entity", "release",
                                    "--timestamp", T1, str(path), *options])


@pytest.fixture
def clean_env(monkeypatch):
    for var in [v for v in os.environ if v.startswith("MBHARVEST_")]:
        monkeypatch.delenv(var)


def test_ranges_that_number_column_sets_differently_are_staged_again(tmp_path, clean_env, monkeypatch):
    restaged = []
    resend = parallel.StagingProcesses.resend
    monkeypatch.setattr(parallel.StagingProcesses, "resend",
                        lambda self, slot, *rest: (restaged.append(slot), resend(self, slot, *rest)))
    lines = varied_releases(40)
    assert import_lines(tmp_path, "one", lines).exit_code == 0
    result = import_lines(tmp_path, "two", lines, "--processes", "2", "--batch-size", "1")
    assert result.exit_code == 0, result.output
    assert restaged  # the second range met the sets of its line before the first range's were taken
    assert content(tmp_path / "two.db") == content(tmp_path / "one.db")
    assert len(content(tmp_path / "two.db")["release"]) == 40


def test_a_bad_line_stops_the_import_after_merging_the_lines_before_it(tmp_path, clean_env):
    lines = varied_releases(12)
    lines[6] = b'{"id": "' + mbid(6).encode() + b'", "title": \n'  # line 7: not JSON
    serial = import_lines(tmp_path, "one", lines, "--batch-size", "2")
    staged = import_lines(tmp_path, "two", lines, "--processes", "2", "--batch-size", "2")
    assert serial.exit_code == staged.exit_code == 1
    assert "line 7: not valid JSON" in staged.output and "line 7: not valid JSON" in serial.output
    assert content(tmp_path / "two.db") == content(tmp_path / "one.db")
    assert len(content(tmp_path / "two.db")["release"]) == 6
    # a rerun passing over bad lines continues after line 6, on processes too
    again = import_lines(tmp_path, "two", lines, "--processes", "2", "--batch-size", "2", "--skip-bad-lines")
    assert again.exit_code == 0, again.output
    assert len(content(tmp_path / "two.db")["release"]) == 11


def test_skipped_bad_lines_are_counted_and_listed_in_line_order(tmp_path, clean_env):
    lines = varied_releases(20)
    for number in (3, 8, 9, 17):
        lines[number - 1] = b"[not json\n"
    result = import_lines(tmp_path, "two", lines, "--processes", "2", "--batch-size", "3", "--skip-bad-lines")
    assert result.exit_code == 0, result.output
    assert "4 bad lines skipped (first: line 3, 8, 9, 17)" in result.output
    assert len(content(tmp_path / "two.db")["release"]) == 16


def test_column_sets_are_taken_only_where_the_numbers_agree():
    keys = table_keys()
    mine, theirs = ColumnSets(keys), ColumnSets(keys)
    mine.lookup("release", ("id", "title"))
    theirs.lookup("release", ("id", "title"))
    theirs.lookup("release", ("id", "title", "barcode"))
    theirs.lookup("medium", ("release_id", "position"))
    assert mine.adopt(theirs.as_json(), theirs.key_types())
    assert mine.sets == {"release": [("id", "title"), ("id", "title", "barcode")],
                         "medium": [("release_id", "position")]}
    other = ColumnSets(keys)
    other.lookup("release", ("id", "status"))  # number 0 here, ("id", "title") there
    assert not mine.adopt(other.as_json(), other.key_types())
    assert len(mine.sets["release"]) == 2  # nothing taken


def children_of(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(child) for child in (task / "children").read_text().split()]
    return found


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc; the kill is Linux's PDEATHSIG")
def test_staging_processes_do_not_outlive_an_importer_killed_with_9(tmp_path):
    fifo = tmp_path / "release.fifo"
    os.mkfifo(fifo)
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("MBHARVEST_")}, "PYTHONPATH": str(ROOT)}
    importer = subprocess.Popen([sys.executable, "-m", "harvester", "import-dump", str(fifo), "--entity", "release",
                                 "--timestamp", T1, "--processes", "2", "--batch-size", "5",
                                 "--db", str(tmp_path / "mb.db")], env=env, stderr=subprocess.DEVNULL)
    with open(fifo, "wb") as writer:
        writer.write(b"".join(varied_releases(30)))  # ranges sent; the stream stays open
        writer.flush()
        deadline = time.monotonic() + 30
        while len(children_of(importer.pid)) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        staging = children_of(importer.pid)
        assert len(staging) == 2
        importer.send_signal(signal.SIGKILL)
        importer.wait(timeout=10)
    deadline = time.monotonic() + 10
    while any(Path(f"/proc/{pid}").exists() and "Z" not in stat_of(pid) for pid in staging) \
            and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not [pid for pid in staging if Path(f"/proc/{pid}").exists() and "Z" not in stat_of(pid)]


def stat_of(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return "Z"


def test_the_default_stages_on_two_processes_once_a_dump_outgrows_one_range(tmp_path, clean_env):
    """By default (two cores or more) a dump is staged on two processes, unless
    it ends before its first range closes (here at 4 lines, --batch-size): a dump that
    small is staged in the importer's own process. The database is the same."""
    lines = varied_releases(12)
    logs = {}
    for name, count in (("small", 3), ("large", 12)):
        log = tmp_path / f"{name}.log"
        result = import_lines(tmp_path, name, lines[:count], "--batch-size", "4", "--log-file", str(log))
        assert result.exit_code == 0, result.output
        logs[name] = log.read_text()
    serial = import_lines(tmp_path, "serial", lines, "--processes", "1")
    assert serial.exit_code == 0, serial.output
    assert " staging on " not in logs["small"]
    if (os.cpu_count() or 1) >= 2:
        assert " INFO release staging on 2 processes, ranges of up to " in logs["large"]
    else:
        assert " staging on " not in logs["large"]
    assert content(tmp_path / "large.db") == content(tmp_path / "serial.db")
    small = content(tmp_path / "small.db")
    assert sorted(row[0] for row in small["release"]) == sorted(json.loads(line)["id"] for line in lines[:3])
