"""Settings precedence (option > environment > config > default), config
validation, and setting options accepted before and after a subcommand."""

import os
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from harvester.cli import HARVESTING, cli, with_settings
from harvester.errors import ConfigError, UsageError
from harvester.settings import DEFAULT_DB, resolve_settings

CONFIG = """
[client]
contact = "config@example.org"
rate = 0.5
server = "http://localhost:5000/"
[database]
path = "from-config.db"
[watch]
artists = ["5b11f4ce-a62d-471e-81fc-a69a8278c7da"]
searches = [{ entity = "recording", query = "isrc:GBAHS1100095", max_results = 10 }]
[refresh]
older_than = 7
max_requests = 100
[licence]
include_supplementary = true
"""


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "mbharvest.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults_without_any_config(tmp_path):
    settings = resolve_settings({}, environ={}, cwd=tmp_path)
    assert settings.db == DEFAULT_DB and settings.rate == 1.0 and settings.contact is None
    assert settings.server == "https://musicbrainz.org" and settings.config_path is None
    assert settings.include_supplementary is False and settings.watch.is_empty()
    # import-dump: a 2 GB budget and two staging processes where there are two cores
    assert settings.import_memory_mb == 2048 and settings.import_temp_dir is None
    assert settings.import_processes == min(2, os.cpu_count() or 1)


def test_config_values_are_read(tmp_path):
    settings = resolve_settings({"config": str(write(tmp_path, CONFIG))}, environ={}, cwd=tmp_path)
    assert settings.contact == "config@example.org" and settings.rate == 0.5
    assert settings.server == "http://localhost:5000" and settings.db == Path("from-config.db")
    assert settings.watch.artists == ("5b11f4ce-a62d-471e-81fc-a69a8278c7da",)
    assert settings.watch.searches[0].query == "isrc:GBAHS1100095" and settings.watch.searches[0].max_results == 10
    assert settings.older_than_days == 7 and settings.max_requests == 100 and settings.include_supplementary


def test_environment_beats_config_and_option_beats_environment(tmp_path):
    config = str(write(tmp_path, CONFIG))
    env = {"MBHARVEST_CONTACT": "env@example.org", "MBHARVEST_RATE": "0.25", "MBHARVEST_DB": "env.db"}
    settings = resolve_settings({"config": config}, environ=env, cwd=tmp_path)
    assert (settings.contact, settings.rate, settings.db) == ("env@example.org", 0.25, Path("env.db"))
    settings = resolve_settings({"config": config, "contact": "opt@example.org", "rate": 0.0}, environ=env,
                                cwd=tmp_path)
    assert (settings.contact, settings.rate) == ("opt@example.org", 0.0)


def test_default_config_file_is_found_in_the_working_directory(tmp_path):
    (tmp_path / "config").mkdir()
    (tmp_path / "config" / "mbharvest.toml").write_text('[client]\ncontact = "here@example.org"\n')
    assert resolve_settings({}, environ={}, cwd=tmp_path).contact == "here@example.org"


def test_config_from_environment_variable(tmp_path):
    path = write(tmp_path, '[client]\ncontact = "envconfig@example.org"\n')
    settings = resolve_settings({}, environ={"MBHARVEST_CONFIG": str(path)}, cwd=tmp_path)
    assert settings.contact == "envconfig@example.org"


@pytest.mark.parametrize("text,message", [
    ("[client]\nrate = \"fast\"\n", "client.rate must be a number, not str 'fast'"),
    ("[client]\ncontakt = \"x\"\n", "unknown key client.contakt"),
    ("[clients]\n", "unknown section [clients]"),
    ("[watch]\nartists = \"one\"\n", "watch.artists must be a list of strings"),
    ("[refresh]\nmax_requests = 1.5\n", "refresh.max_requests must be an integer"),
    ("[licence]\ninclude_supplementary = \"yes\"\n", "licence.include_supplementary must be a boolean"),
    ("[watch]\nsearches = [{ entity = \"recording\" }]\n", "watch.searches[0] needs a query"),
    ("[watch]\nsearches = [{ entity = \"recording\", query = \"x\", limit = 3 }]\n", "unknown key watch.searches[0].limit"),
    ("[client\n", "not valid TOML"),
])
def test_malformed_config_names_file_key_and_type(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        resolve_settings({"config": str(path)}, environ={}, cwd=tmp_path)
    assert message in str(caught.value) and str(path) in str(caught.value)
    assert caught.value.exit_code == 2


def test_missing_explicit_config_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        resolve_settings({"config": str(tmp_path / "nope.toml")}, environ={}, cwd=tmp_path)


def test_bad_environment_values_are_usage_errors(tmp_path):
    with pytest.raises(UsageError, match="MBHARVEST_RATE='fast'"):
        resolve_settings({}, environ={"MBHARVEST_RATE": "fast"}, cwd=tmp_path)
    with pytest.raises(UsageError, match="--rate must be 0"):
        resolve_settings({"rate": -1.0}, environ={}, cwd=tmp_path)


@pytest.fixture
def probe_command():
    """A throwaway subcommand that prints the settings it was given."""
    @cli.command("settings-probe")
    @with_settings(HARVESTING)
    def probe(settings, verbose):
        click.echo(f"{settings.db}|{settings.rate}|{settings.contact}|{verbose}")

    yield
    del cli.commands["settings-probe"]


def test_options_before_and_after_the_subcommand(probe_command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    runner = CliRunner()
    before = runner.invoke(cli, ["--db", "a.db", "--rate", "0", "settings-probe"], env={})
    after = runner.invoke(cli, ["settings-probe", "--db", "a.db", "--rate", "0"], env={})
    assert before.output == after.output == "a.db|0.0|None|0\n"
    both = runner.invoke(cli, ["--db", "a.db", "-v", "settings-probe", "--db", "b.db"], env={})
    assert both.output == "b.db|1.0|None|1\n"


def test_malformed_config_exits_2_with_one_line(probe_command, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    path = write(tmp_path, "[client]\nrate = \"fast\"\n")
    result = CliRunner().invoke(cli, ["settings-probe", "--config", str(path)], env={})
    assert result.exit_code == 2
    assert result.output.strip().count("\n") == 0 and "client.rate must be a number" in result.output
    assert not (tmp_path / "data").exists()
