"""The `mbharvest` command line: click commands only.

Every setting option is accepted before and after the subcommand
(`mbharvest --db x.db stats` and `mbharvest stats --db x.db`); the one given
after the subcommand wins. Library errors become messages and exit codes here
and nowhere else.
"""

from __future__ import annotations

import functools
import logging
import sys
import time
from pathlib import Path

import click

from harvester import __version__
from harvester.dumps import BATCH_LINES, DumpResult, ImportOptions, Progress, check_paths, format_progress, import_dumps
from harvester.errors import HarvesterError
from harvester.normalize import ENTITY_TYPES
from harvester.settings import resolve_settings
from harvester.store import open_db

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

_SETTING_OPTIONS = [
    click.option("--config", type=click.Path(dir_okay=False), default=None,
                 help="Config file (TOML). Env MBHARVEST_CONFIG; default config/mbharvest.toml when it exists."),
    click.option("--db", type=click.Path(dir_okay=False), default=None,
                 help="SQLite database. Env MBHARVEST_DB; default data/musicbrainz.db."),
    click.option("--server", default=None, metavar="URL",
                 help="WS/2 server. Env MBHARVEST_SERVER; default https://musicbrainz.org."),
    click.option("--rate", type=float, default=None, metavar="REQ_PER_S",
                 help="Requests per second, shared by every process on this machine. Env MBHARVEST_RATE; "
                      "default 1.0; 0 = unlimited (mirrors only; musicbrainz.org never above 1.0)."),
    click.option("--contact", default=None, metavar="EMAIL_OR_URL",
                 help="Your contact, sent in the User-Agent as MusicBrainz requires. Env MBHARVEST_CONTACT. "
                      "Network commands refuse to run without it."),
    click.option("--max-requests", type=int, default=None, metavar="N",
                 help="Stop cleanly after N requests (state saved; rerun continues). Env MBHARVEST_MAX_REQUESTS."),
    click.option("--max-runtime", type=float, default=None, metavar="SECONDS",
                 help="Stop cleanly after this many seconds. Env MBHARVEST_MAX_RUNTIME."),
    click.option("--connect-timeout", type=float, default=None, metavar="SECONDS",
                 help="Connect timeout per request (default 10)."),
    click.option("--read-timeout", type=float, default=None, metavar="SECONDS",
                 help="Read timeout per request (default 45)."),
    click.option("--include-supplementary/--cc0-only", default=None,
                 help="Also keep tags, genres, ratings and annotations (CC BY-NC-SA 3.0), marked with "
                      "their licence. Default: CC0 core data only."),
    click.option("-v", "--verbose", count=True, default=None,
                 help="More output: a final summary line (-v), progress details (-vv)."),
    click.option("--log-file", type=click.Path(dir_okay=False), default=None,
                 help="Also append log messages to this file."),
]
_SETTING_NAMES = (
    "config", "db", "server", "rate", "contact", "max_requests", "max_runtime",
    "connect_timeout", "read_timeout", "include_supplementary", "verbose", "log_file",
)


def _given(name: str, value) -> bool:
    """Whether an option was given: click reports an unused -v count as 0."""
    return value is not None and not (name == "verbose" and value == 0)


def setting_options(fn):
    for option in reversed(_SETTING_OPTIONS):
        fn = option(fn)
    return fn


class CliError(click.ClickException):
    def __init__(self, message: str, exit_code: int):
        super().__init__(message)
        self.exit_code = exit_code


def _configure_logging(verbose: int, log_file: str | None) -> None:
    root = logging.getLogger("harvester")
    root.handlers.clear()
    root.setLevel(logging.DEBUG)
    console = logging.StreamHandler(sys.stderr)
    console.setLevel(logging.WARNING if verbose < 2 else logging.INFO)
    console.setFormatter(logging.Formatter("%(message)s"))
    root.addHandler(console)
    if log_file:
        Path(log_file).parent.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(log_file, encoding="utf-8")
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(message)s"))
        root.addHandler(handler)


def with_settings(fn):
    """Give a command the setting options and call it as fn(settings, **rest).

    Options given after the subcommand override those given before it; the
    result goes through resolve_settings (option > env > config > default).
    Typed library errors leave as one-line messages with their exit codes."""

    @setting_options
    @click.pass_context
    @functools.wraps(fn)
    def wrapper(ctx: click.Context, **kwargs):
        merged = dict((ctx.find_root().obj or {}).get("setting_options", {}))
        for name in _SETTING_NAMES:
            value = kwargs.pop(name)
            if _given(name, value):
                merged[name] = value
        verbose = merged.pop("verbose", 0) or 0
        log_file = merged.pop("log_file", None)
        try:
            _configure_logging(verbose, log_file)
            settings = resolve_settings(merged)
            return fn(settings, verbose=verbose, **kwargs)
        except HarvesterError as exc:
            logging.getLogger("harvester").info("error: %s", exc)
            raise CliError(str(exc), exc.exit_code) from None

    return wrapper


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="mbharvest")
@setting_options
@click.pass_context
def cli(ctx: click.Context, **setting_values):
    """Harvest open MusicBrainz metadata (CC0) into SQLite, politely.

    Start with `mbharvest demo` (offline, on bundled real data). Against the
    real service, identify yourself first:

        export MBHARVEST_CONTACT=you@example.org

    Setting options may be given before or after the subcommand.
    Exit codes: 0 finished (or stopped cleanly at a budget), 1 failed,
    2 bad usage or input, 75 another run holds the database's lock.
    """
    ctx.ensure_object(dict)
    ctx.obj["setting_options"] = {name: value for name, value in setting_values.items() if _given(name, value)}


@cli.command("import-dump")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--entity", "entity_type", type=click.Choice(ENTITY_TYPES), default=None,
              help="Entity type of a bare JSON Lines file (else taken from mbdump/<entity>).")
@click.option("--timestamp", default=None, metavar="DATETIME",
              help="The dump's time for a bare file (default: the file's mtime; archives use their TIMESTAMP).")
@click.option("--keep-documents/--no-keep-documents", default=False,
              help="Also keep each line's raw JSON in the document table (off: it doubles the database).")
@click.option("--skip-bad-lines", is_flag=True,
              help="Pass over malformed lines (reported with their numbers) instead of stopping.")
@click.option("--batch-size", type=click.IntRange(min=1), default=BATCH_LINES, show_default=True,
              help="Lines per transaction (a batch also closes after about a second).")
@with_settings
def import_dump_command(settings, verbose, paths, entity_type, timestamp, keep_documents, skip_bad_lines,
                        batch_size):
    """Import MusicBrainz JSON dumps: <entity>.tar.xz as published, an
    extracted mbdump/<entity> file, or --entity TYPE FILE.jsonl.

    Streamed (never unpacked), committed in batches, resumable: run the same
    command again after an interruption and it continues. A dump already
    imported is left as it is."""
    options = ImportOptions(entity_type=entity_type, timestamp=timestamp,
                            supplementary=settings.include_supplementary, keep_documents=keep_documents,
                            skip_bad_lines=skip_bad_lines, batch_lines=batch_size)
    check_paths([Path(p) for p in paths], options)
    show_progress = sys.stderr.isatty()
    last_shown = [0.0]

    def progress(state: Progress) -> None:
        if show_progress and time.monotonic() - last_shown[0] >= 0.5:
            last_shown[0] = time.monotonic()
            click.echo("\r" + format_progress(state) + "\033[K", nl=False, err=True)

    def on_result(result: DumpResult) -> None:
        if show_progress:
            click.echo("\r\033[K", nl=False, err=True)
        if result.status == "already-imported":
            click.echo(f"{result.path}: {result.entity_type} {result.source} already imported "
                       f"({result.lines_read:,} lines); nothing changed", err=True)
        elif result.status == "partial":
            click.echo(f"{result.path}: stopped at --max-runtime after line {result.lines_read:,}; "
                       f"run again to continue", err=True)
        if result.bad_lines:
            click.echo(f"{result.path}: {result.skipped_text()}", err=True)
        if verbose:
            click.echo(result.summary())

    db = open_db(settings.db)
    import_dumps(db, [Path(p) for p in paths], options, max_runtime=settings.max_runtime,
                 progress=progress, on_result=on_result)
