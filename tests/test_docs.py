"""Every command and subcommand is documented: it appears in the README and
has --help text."""

from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from harvester.cli import cli

README = (Path(__file__).parent.parent / "README.md").read_text(encoding="utf-8")


def command_paths(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = []
    for name, command in sorted(group.commands.items()):
        path = prefix + (name,)
        paths.append(path)
        if isinstance(command, click.Group):
            paths += command_paths(command, path)
    return paths


COMMANDS = command_paths(cli)


def test_the_command_tree_is_not_empty():
    assert ("harvest", "artist") in COMMANDS and ("refresh",) in COMMANDS


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_command_appears_in_the_readme(path):
    assert f"mbharvest {' '.join(path)}" in README


@pytest.mark.parametrize("path", COMMANDS, ids=" ".join)
def test_command_has_help_text(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    assert result.exit_code == 0
    body = result.output.split("Options:")[0]
    assert len(body.replace("Usage:", "").split()) > 6, result.output
    short = CliRunner().invoke(cli, [*path, "-h"])
    assert short.output == result.output


def test_readme_starts_with_the_two_commands():
    head = README.split("## ", 2)[1]
    assert "mbharvest demo" in head and "python -m pytest" in head


NETWORK_OPTIONS = {"--server", "--rate", "--contact", "--connect-timeout", "--read-timeout"}
BUDGET_OPTIONS = {"--max-requests", "--max-runtime"}
LICENCE_OPTIONS = {"--include-supplementary"}
FILE_OPTIONS = {"--config", "--db", "--log-file"}


def expected_settings(path: tuple[str, ...]) -> set[str]:
    """The setting options that apply to a command (the README's table, by command)."""
    if path[0] in ("harvest", "refresh", "plan"):  # plan takes a harvest's command line as it is
        return FILE_OPTIONS | NETWORK_OPTIONS | BUDGET_OPTIONS | LICENCE_OPTIONS
    if path[0] == "import-dump":  # no requests
        return FILE_OPTIONS | {"--max-runtime"} | LICENCE_OPTIONS
    if path[0] == "sync-dumps":  # requests to the dump server, not WS/2: no --server, --rate or --max-requests
        return FILE_OPTIONS | {"--contact", "--connect-timeout", "--read-timeout", "--max-runtime"} | LICENCE_OPTIONS
    if path[0] == "demo":  # its own server and database
        return set()
    return FILE_OPTIONS  # stats, report, runs, export ..., upgrade: they only read (or only migrate)


LEAF_COMMANDS = [path for path in COMMANDS if not isinstance(cli.get_command(None, path[0]), click.Group)
                 or len(path) > 1]


@pytest.mark.parametrize("path", LEAF_COMMANDS, ids=" ".join)
def test_help_lists_only_the_setting_options_that_apply(path):
    result = CliRunner().invoke(cli, [*path, "--help"])
    listed = {word.rstrip(",") for line in result.output.split("Options:")[1].splitlines()
              for word in line.split()[:2] if word.startswith("--")}
    every_setting = FILE_OPTIONS | NETWORK_OPTIONS | BUDGET_OPTIONS | LICENCE_OPTIONS
    assert listed & every_setting == expected_settings(path)


@pytest.mark.parametrize("path", [()] + [path for path in COMMANDS if isinstance(
    cli.get_command(None, path[0]), click.Group) and len(path) == 1], ids=lambda p: " ".join(p) or "mbharvest")
def test_command_lists_are_whole_sentences(path):
    result = CliRunner(env={"COLUMNS": "80"}).invoke(cli, [*path, "--help"])
    entries: list[str] = []
    for line in result.output.split("Commands:")[1].strip("\n").splitlines():
        if line[2] != " ":  # a command's name starts an entry; its text may wrap onto indented lines
            entries.append(line.strip())
        else:
            entries[-1] += " " + line.strip()
    assert len(entries) == len(cli.get_command(None, path[0]).commands if path else cli.commands)
    for entry in entries:
        assert entry.endswith(".") and not entry.endswith("..."), entry
