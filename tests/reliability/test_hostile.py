"""Hostile input: malformed keys, a bad config, a file that is not SQLite, a
read-only place, a full disk. Each gives one clear line and the documented
exit code, never a traceback, and rows committed before are kept."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
from pathlib import Path
from typing import Iterator

from click.testing import CliRunner

from harvester.cli import cli
from harvester.emulator import Emulator, generate_corpus
from tests.reliability.support import CONTACT, content, integrity, mbharvest

HOSTILE_MBIDS = ["x" * 10_000, "5b11f4ce-a62d-471e-81fc-a69a8278c7dä", "'; DROP TABLE recording; --",
                 "5b11f4ce-a62d-471e-81fc-a69a8278c7da' OR '1'='1", "../../etc/passwd", "%00", "\u202e\u0000",
                 "5b11f4ce-a62d-471e-81fc-a69a8278c7da5b11f4ce"]
HOSTILE_ISRCS = ["GB" + "A" * 5000, "ÜSRC12345678", "'); DELETE FROM recording_isrc; --", "US-AB1-23-456789",
                 "\u0660\u0661\u0662ABC1234567"]


def invoke(*args: str):
    return CliRunner().invoke(cli, list(args))


def one_clean_line(output: str) -> bool:
    lines = [line for line in output.strip().splitlines() if not line.startswith("skipped: ")]
    return len(lines) == 1 and "Traceback" not in output


def seeded_db(emu: Emulator, path: Path, recordings: list[str]) -> dict:
    result = invoke("harvest", "recording", *recordings, "--server", emu.url, "--rate", "0", "--db", str(path),
                    "--contact", CONTACT)
    assert result.exit_code == 0, result.output
    return content(path)


def test_malformed_keys_are_refused_before_any_request(corpus, tmp_path, tally):
    path = tmp_path / "keys.db"
    recordings = list(corpus.recordings)[:2]
    with Emulator(corpus) as emu:
        before = seeded_db(emu, path, recordings)
        sent = len(emu.requests)
        results = [invoke("harvest", target, *keys, "--server", emu.url, "--rate", "0", "--db", str(path),
                          "--contact", CONTACT)
                   for target, keys in (("recording", HOSTILE_MBIDS), ("artist", HOSTILE_MBIDS),
                                        ("isrc", HOSTILE_ISRCS))]
        requests = len(emu.requests) - sent
    failures = [result.output for result in results
                if result.exit_code != 2 or not one_clean_line(result.output) or not isinstance(result.exception,
                                                                                               SystemExit)]
    skipped = sum(result.output.count("skipped: invalid") for result in results)
    checks = {"exit 2, one line each": not failures, "every key reported": skipped == 2 * len(HOSTILE_MBIDS)
              + len(HOSTILE_ISRCS), "no request sent": requests == 0, "rows kept": content(path) == before}
    tally.record("hostile input: malformed MBIDs and ISRCs (long, unicode, SQL)", runs=skipped,
                 failures=sum(not ok for ok in checks.values()))
    assert all(checks.values()), (checks, failures)


def test_a_config_with_wrong_types_exits_2_naming_the_key(tmp_path, tally):
    cases = {
        'rate = "fast"': ("[client]\nrate = \"fast\"\n", "rate"),
        "artists = a string": ("[watch]\nartists = \"5b11f4ce-a62d-471e-81fc-a69a8278c7da\"\n", "artists"),
        "max_requests = 1.5": ("[refresh]\nmax_requests = 1.5\n", "max_requests"),
        "not TOML": ("[client\nrate = 1\n", "mbharvest.toml"),
        "unknown key": ("[client]\nspeed = 3\n", "speed"),
    }
    failures = []
    for name, (text, key) in cases.items():
        config = tmp_path / "mbharvest.toml"
        config.write_text(text, encoding="utf-8")
        result = invoke("harvest", "recording", "5b11f4ce-a62d-471e-81fc-a69a8278c7da", "--config", str(config),
                        "--db", str(tmp_path / "c.db"), "--contact", CONTACT)
        if result.exit_code != 2 or not one_clean_line(result.output) or key not in result.output:
            failures.append((name, result.exit_code, result.output))
    tally.record("hostile input: config files with wrong types or syntax", runs=len(cases), failures=len(failures))
    assert not failures
    assert not (tmp_path / "c.db").exists()


def test_a_file_that_is_not_sqlite_is_refused_and_left_alone(corpus, tmp_path, tally):
    failures = []
    for name, data in (("text", b"hello, not a database\n" * 100), ("random", bytes(range(256)) * 64),
                       ("empty-header", b"SQLite format 3\x00" + b"\xff" * 4000)):
        path = tmp_path / f"{name}.db"
        path.write_bytes(data)
        with Emulator(corpus) as emu:
            result = invoke("harvest", "recording", next(iter(corpus.recordings)), "--server", emu.url,
                            "--rate", "0", "--db", str(path), "--contact", CONTACT)
            sent = len(emu.requests)
        if not (result.exit_code == 2 and one_clean_line(result.output) and "not an SQLite database" in result.output
                and path.read_bytes() == data and sent == 0):
            failures.append((name, result.exit_code, result.output, sent))
        for command in (["stats"], ["runs"]):
            other = invoke(*command, "--db", str(path))
            if other.exit_code != 2 or not one_clean_line(other.output):
                failures.append((name, command, other.exit_code, other.output))
    tally.record("hostile input: a database file that is not SQLite", runs=9, failures=len(failures))
    assert not failures, failures


@contextlib.contextmanager
def tiny_filesystem(where: Path, size: str) -> Iterator[bool]:
    """A tmpfs of `size` mounted at `where` (True), or False where mounting is not permitted."""
    where.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(where)],
                             capture_output=True).returncode == 0
    try:
        yield mounted
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], check=True)


def test_a_read_only_place_gives_one_line_and_exit_1(corpus, tmp_path, tally):
    failures = []
    blocker = tmp_path / "a-file"
    blocker.write_text("I am a file, not a folder\n", encoding="utf-8")
    result = invoke("harvest", "recording", next(iter(corpus.recordings)), "--server", "http://127.0.0.1:9",
                    "--rate", "0", "--db", str(blocker / "x.db"), "--contact", CONTACT)
    if result.exit_code != 1 or not one_clean_line(result.output) or "x.db" not in result.output:
        failures.append(("parent is a file", result.output))
    runs, mode = 1, "parent is a regular file"
    with tiny_filesystem(tmp_path / "ro", "4m") as mounted, Emulator(corpus) as emu:
        if mounted:
            path = tmp_path / "ro" / "kept.db"
            before = seeded_db(emu, path, list(corpus.recordings)[:2])
            subprocess.run(["mount", "-o", "remount,ro", str(tmp_path / "ro")], check=True)
            sent = len(emu.requests)
            process = mbharvest("harvest", "recording", *list(corpus.recordings)[2:4], server=emu.url, db=path)
            _, stderr = process.communicate(timeout=60)
            shutil.copy(path, tmp_path / "copy.db")  # WAL mode cannot be read in place on a read-only mount
            if process.returncode != 1 or not one_clean_line(stderr) or content(tmp_path / "copy.db") != before \
                    or len(emu.requests) != sent:
                failures.append(("read-only mount", process.returncode, stderr))
            runs, mode = 2, "parent is a regular file; a read-only tmpfs mount"
    tally.record("hostile input: a read-only database place", runs=runs, failures=len(failures), how=mode)
    assert not failures, failures


def test_a_full_disk_fails_cleanly_and_keeps_what_was_committed(tmp_path, monkeypatch, tally):
    corpus = generate_corpus(seed=51, artists=16)
    recordings = list(corpus.recordings)[:3]
    with tiny_filesystem(tmp_path / "tiny", "2m") as mounted, Emulator(corpus) as emu:
        if mounted:
            how = "a 2 MiB tmpfs filled by the harvest"
            path = tmp_path / "tiny" / "full.db"
            before = seeded_db(emu, path, recordings)
            process = mbharvest("harvest", "artist", *corpus.artists, server=emu.url, db=path)
            _, output = process.communicate(timeout=120)
            exit_code = process.returncode
        else:
            # no mount here: SQLite's max_page_count gives the same SQLITE_FULL error path
            how = "PRAGMA max_page_count (mounting not permitted)"
            from harvester import store

            path = tmp_path / "full.db"
            before = seeded_db(emu, path, recordings)
            opened = store.open_db

            def capped(db_path):
                db = opened(db_path)
                db.execute("PRAGMA max_page_count = 400")
                return db

            monkeypatch.setattr(store, "open_db", capped)
            result = invoke("harvest", "artist", *corpus.artists, "--server", emu.url, "--rate", "0",
                            "--db", str(path), "--contact", CONTACT)
            output, exit_code = result.output, result.exit_code
        kept, state = content(path), integrity(path)
    checks = {"exit 1": exit_code == 1, "one line, no traceback": one_clean_line(output),
              "says the disk is full": "disk is full" in output, "integrity ok": state == "ok",
              "rows from before kept": all(set(before[table]) <= set(kept[table])
                                           for table in ("recording", "recording_isrc", "artist_credit_name"))}
    failures = [name for name, ok in checks.items() if not ok]
    tally.record("hostile input: the disk fills up during a harvest", runs=1, failures=len(failures), how=how)
    assert not failures, (failures, output)
    assert before["recording"]
