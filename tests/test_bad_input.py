"""What a user gets wrong, and what they get back: one line naming the file,
line, option or setting, and the documented exit code; never a traceback,
never a request or a ledger row for a command refused."""

from __future__ import annotations

import json
import sqlite3

import pytest
from click.testing import CliRunner

import harvester.cli
from harvester.cli import cli
from tests.conftest import CONTACT
from tests.test_read_only import old_release_copy, run_read_only

pytestmark = pytest.mark.usefixtures("isolated")


def isrcs_of(corpus, n: int) -> list[str]:
    codes = sorted({code for recording in corpus.recordings.values() for code in recording["isrcs"]})
    assert len(codes) >= n
    return codes[:n]


def invoke(*args: str, input: bytes | None = None):
    return CliRunner().invoke(cli, list(args), input=input)


def network(emulator) -> list[str]:
    return ["--server", emulator.url, "--rate", "0", "--contact", CONTACT]


def errors(result) -> list[str]:
    assert "Traceback" not in result.output
    return result.stderr.splitlines()


def requested_isrcs(emulator) -> list[str]:
    return [r["path"].split("/ws/2/isrc/")[1].split("?")[0] for r in emulator.requests if "/ws/2/isrc/" in r["path"]]


# -- key files --

def test_a_key_file_not_in_utf8_names_the_line_and_the_good_keys_are_harvested(tmp_path, emulator, corpus):
    good, other = isrcs_of(corpus, 2)
    path = tmp_path / "latin1.txt"
    path.write_bytes(f"{good}\n\xe9t\xe9\n# a comment\n{other}\n".encode("utf-8").replace(b"\xc3\xa9", b"\xe9"))
    result = invoke("harvest", "isrc", "--from-file", str(path), "--db", str(tmp_path / "k.db"), *network(emulator))
    assert result.exit_code == 2
    assert errors(result) == [f"skipped: {path} line 2: not UTF-8 text (b'\\xe9t\\xe9'); save the file as UTF-8",
                              "Error: 1 malformed key skipped"]
    assert requested_isrcs(emulator) == [good, other]


def test_binary_data_on_standard_input_is_refused_in_one_line(tmp_path, emulator):
    result = invoke("harvest", "isrc", "--from-file", "-", "--db", str(tmp_path / "k.db"), *network(emulator),
                    input=b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR\x00\x00" + bytes(range(256)) * 8)
    assert result.exit_code == 2
    assert errors(result) == ["skipped: standard input: binary data, not a text file of keys",
                              "Error: nothing to do: every key was malformed"]
    assert emulator.requests == [] and not (tmp_path / "k.db").exists()


def test_a_byte_order_mark_does_not_spoil_the_first_key_and_bad_lines_have_numbers(tmp_path, emulator, corpus):
    first, second = isrcs_of(corpus, 2)
    path = tmp_path / "bom.txt"
    path.write_bytes(b"\xef\xbb\xbf" + f"{first}\n\nnot-an-isrc\n{second}  # trailing comment\n".encode())
    result = invoke("harvest", "isrc", "--from-file", str(path), "--db", str(tmp_path / "k.db"), *network(emulator))
    assert result.exit_code == 2
    assert errors(result)[0] == (f"skipped: {path} line 3: invalid ISRC 'not-an-isrc': expected CC-XXX-YY-NNNNN "
                                 "(2 letters, 3 letters or digits, 7 digits)")
    assert requested_isrcs(emulator) == [first, second]


def test_a_watched_isrc_file_not_in_utf8_is_one_line_naming_it(tmp_path, emulator):
    keys = tmp_path / "watched.txt"
    keys.write_bytes(b"GBAHS1100095\n\xff\xfeUS\n")
    config = tmp_path / "c.toml"
    config.write_text(f'[watch]\nisrc_files = ["{keys}"]\n', encoding="utf-8")
    result = invoke("refresh", "--config", str(config), "--db", str(tmp_path / "w.db"), *network(emulator))
    assert result.exit_code == 2
    assert errors(result) == [f"Error: {config}: [watch] isrc_files: {keys} line 2: not UTF-8 text "
                              "(b'\\xff\\xfeUS'); save the file as UTF-8"]
    assert emulator.requests == [] and not (tmp_path / "w.db").exists()


def test_a_pasted_musicbrainz_address_is_understood(tmp_path, emulator, corpus):
    artist = sorted(corpus.artists)[0]
    (isrc,) = isrcs_of(corpus, 1)
    db = tmp_path / "u.db"
    result = invoke("harvest", "artist", f"https://musicbrainz.org/artist/{artist.upper()}/releases?page=2",
                    "--db", str(db), *network(emulator))
    assert result.exit_code == 0, result.output
    assert sqlite3.connect(db).execute("SELECT id FROM artist WHERE id = ?", [artist]).fetchone() == (artist,)
    result = invoke("harvest", "isrc", f"https://beta.musicbrainz.org/isrc/{isrc}", "--db", str(db),
                    *network(emulator))
    assert result.exit_code == 0, result.output
    assert requested_isrcs(emulator) == [isrc]


def test_an_address_of_another_kind_of_page_is_refused_with_the_command_to_use(tmp_path, emulator, corpus):
    release = sorted(corpus.releases)[0]
    result = invoke("harvest", "artist", f"https://musicbrainz.org/release/{release}", "--db", str(tmp_path / "x.db"),
                    *network(emulator))
    assert result.exit_code == 2
    assert errors(result)[0] == (f"skipped: 'https://musicbrainz.org/release/{release}' is the address of a "
                                 "MusicBrainz release page, not of an artist; use the `release` command")
    assert emulator.requests == []


# -- the config file and the settings --

def test_a_config_file_not_in_utf8_is_exit_2_in_one_line(tmp_path):
    config = tmp_path / "c.toml"
    config.write_bytes(b"\xff\xfe[client]\n")
    result = invoke("--config", str(config), "stats", "--db", str(tmp_path / "x.db"))
    assert result.exit_code == 2
    assert errors(result) == [f"Error: {config}: not UTF-8 text (byte 0xff on line 1); "
                              "TOML files must be saved as UTF-8"]


def test_a_config_file_with_a_byte_order_mark_is_read(tmp_path):
    config = tmp_path / "c.toml"
    config.write_bytes(b'\xef\xbb\xbf[database]\npath = "from-bom-config.db"\n')
    path = old_release_copy(tmp_path / "db")
    path.rename(tmp_path / "from-bom-config.db")
    result = invoke("stats", "--json", "--config", str(config))
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["recordings"] > 0


@pytest.mark.parametrize("given, where", [
    (["--read-timeout", "-3"], "--read-timeout must be more than 0 seconds, not -3.0"),
    (["--connect-timeout", "0"], "--connect-timeout must be more than 0 seconds, not 0.0"),
    (["--rate", "nan"], "--rate must be 0 (unlimited) or more requests per second, not nan"),
    (["--max-runtime", "-1"], "--max-runtime must be 0 or more seconds, not -1.0"),
    ("[client]\nread_timeout = -1\n", "[client] read_timeout must be more than 0 seconds, not -1.0"),
    ("[refresh]\nolder_than = -5\n", "[refresh] older_than must be 0 or more days, not -5.0"),
    ('[watch]\nsearches = [{ entity = "recording", query = "x", max_results = 0 }]\n',
     "[watch] searches[0].max_results must be 1 or more, not 0"),
], ids=["read-timeout", "connect-timeout", "rate-nan", "max-runtime", "config-read-timeout", "older-than",
        "max-results"])
def test_a_setting_out_of_range_is_refused_before_anything_runs(tmp_path, emulator, corpus, given, where):
    options = list(given) if isinstance(given, list) else ["--config", str(tmp_path / "c.toml")]
    if isinstance(given, str):
        (tmp_path / "c.toml").write_text(given, encoding="utf-8")
    recording = sorted(corpus.recordings)[0]
    db = tmp_path / "s.db"
    for command in (["harvest", "recording", recording], ["refresh"]):
        result = invoke(*command, "--db", str(db), "--server", emulator.url, "--contact", CONTACT, *options)
        assert result.exit_code == 2
        (line,) = errors(result)
        assert line.startswith("Error: ") and line.endswith(where), line
    assert emulator.requests == [] and not db.exists()  # no request, no ledger row left running


def test_an_environment_setting_out_of_range_names_the_variable(tmp_path, monkeypatch):
    monkeypatch.setenv("MBHARVEST_CONNECT_TIMEOUT", "0")
    result = invoke("plan", "recording", "5b11f4ce-a62d-471e-81fc-a69a8278c7da", "--contact", CONTACT)
    assert result.exit_code == 2
    assert errors(result) == ["Error: MBHARVEST_CONNECT_TIMEOUT must be more than 0 seconds, not 0.0"]


def test_a_log_file_that_cannot_be_opened_is_exit_2(tmp_path):
    (tmp_path / "afile").write_text("")
    path = old_release_copy(tmp_path / "db")
    result = invoke("stats", "--db", str(path), "--log-file", str(tmp_path / "afile" / "x.log"))
    assert result.exit_code == 2
    assert errors(result) == [f"Error: --log-file {tmp_path / 'afile' / 'x.log'}: cannot create it: a file is in "
                              "the way of its folder"]


# -- where the report goes --

def test_a_report_folder_that_cannot_be_made_is_one_line(tmp_path):
    path = old_release_copy(tmp_path / "db")
    (tmp_path / "afile").write_text("")
    result = invoke("report", "--db", str(path), "--out", str(tmp_path / "afile" / "sub"))
    assert result.exit_code == 2
    assert errors(result) == [f"Error: {tmp_path / 'afile' / 'sub'}: cannot create the output folder (Not a directory)"]


def test_a_report_into_a_read_only_place_is_one_line(tmp_path):
    path = old_release_copy(tmp_path / "db")
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    try:
        result = run_read_only("report", "--db", str(path), "--out", str(locked / "report"))
    finally:
        locked.chmod(0o755)
    assert result.returncode == 2
    assert result.stderr.splitlines() == [f"Error: {locked / 'report'}: cannot create the output folder "
                                          "(Permission denied)"]


# -- anything else --

def test_an_unexpected_error_is_one_line_and_its_traceback_comes_with_vv(tmp_path, monkeypatch):
    path = old_release_copy(tmp_path / "db")

    def broken(db):
        raise ValueError("a bug")

    monkeypatch.setattr(harvester.cli, "compute_stats", broken)
    log = tmp_path / "mbharvest.log"
    result = invoke("stats", "--db", str(path), "--log-file", str(log))
    assert result.exit_code == 1
    assert errors(result) == ["Error: internal error (ValueError: a bug): a bug in mbharvest; please report it with "
                              "the output of the same command run with -vv"]
    assert "Traceback" in log.read_text(encoding="utf-8") and "ValueError: a bug" in log.read_text(encoding="utf-8")
    verbose = invoke("stats", "--db", str(path), "-vv")
    assert isinstance(verbose.exception, ValueError)
