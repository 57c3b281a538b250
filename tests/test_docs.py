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
