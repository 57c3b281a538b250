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
from pathlib import Path

import click

from harvester import __version__
from harvester.errors import HarvesterError
from harvester.export import Selection, export_bagit, export_csv, export_parquet, write_datasette_metadata
from harvester.settings import resolve_settings

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


def _progress():
    """A progress callback drawing one line on a terminal's stderr; None elsewhere."""
    if not sys.stderr.isatty():
        return None

    def show(table: str, rows: int) -> None:
        click.echo(f"\r{table}: {rows:,} rows\033[K", nl=False, err=True)

    return show


def _report_export(verbose: int, what: str, rows: int, tables: int, out: Path, left_out: dict[str, int],
                   stripped_documents: int, removed: list[Path]) -> None:
    """Say what was left out (always: it is a licence matter) and, with -v or on
    a terminal, a one-line summary on stdout."""
    if sys.stderr.isatty():
        click.echo("\r\033[K", nl=False, err=True)
    if left_out:
        click.echo("left out supplementary data (CC BY-NC-SA 3.0): "
                   + ", ".join(f"{table} ({n:,} rows)" for table, n in left_out.items())
                   + "; add --include-supplementary-data to export it", err=True)
    if stripped_documents:
        click.echo(f"{stripped_documents:,} raw documents exported without their supplementary fields", err=True)
    for path in removed:
        click.echo(f"removed {path} (from an earlier export; not part of this one)", err=True)
    if verbose or sys.stdout.isatty():
        click.echo(f"{what}: {rows:,} rows in {tables} tables -> {out}")


_OUT_DIR = click.option("--out", required=True, type=click.Path(file_okay=False), metavar="DIR",
                        help="Output folder (created if missing; existing files of the same name are replaced).")
_DOCUMENTS = click.option("--documents", is_flag=True,
                          help="Also export the document table (the raw JSON of every entity; large).")
_SUPPLEMENTARY_DATA = click.option(
    "--include-supplementary-data", is_flag=True,
    help="Also export tags, ratings and annotations and the full raw documents: CC BY-NC-SA 3.0, "
         "NonCommercial. Default: CC0 core data only.")


@cli.group(context_settings=CONTEXT_SETTINGS)
def export():
    """Export the database: CSV, Parquet, Datasette metadata, BagIt package.

    Core data (CC0) only, unless --include-supplementary-data is given.
    Exit codes: 0 done, 1 failed (also: pyarrow missing for parquet),
    2 no such database or output folder not writable.
    """


@export.command("csv")
@_OUT_DIR
@_DOCUMENTS
@_SUPPLEMENTARY_DATA
@with_settings
def export_csv_command(settings, verbose, out, documents, include_supplementary_data):
    """One UTF-8 CSV per table, with a header row, streamed."""
    result = export_csv(settings.db, out, Selection(documents, include_supplementary_data), _progress())
    _report_export(verbose, "csv", result.rows, len(result.files), result.out, result.left_out,
                   result.stripped_documents, result.removed)


@export.command("parquet")
@_OUT_DIR
@_DOCUMENTS
@_SUPPLEMENTARY_DATA
@with_settings
def export_parquet_command(settings, verbose, out, documents, include_supplementary_data):
    """One Parquet file per table, typed from the schema (needs the 'parquet' extra: pyarrow)."""
    result = export_parquet(settings.db, out, Selection(documents, include_supplementary_data), _progress())
    _report_export(verbose, "parquet", result.rows, len(result.files), result.out, result.left_out,
                   result.stripped_documents, result.removed)


@export.command("datasette-metadata")
@click.option("--out", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Where to write (default: metadata.json next to the database).")
@with_settings
def export_datasette_metadata_command(settings, verbose, out):
    """Datasette metadata: titles, descriptions, column descriptions, source and licence.

    Then: datasette data/musicbrainz.db -m data/metadata.json
    """
    path = write_datasette_metadata(settings.db, out or settings.db.parent / "metadata.json")
    if verbose or sys.stdout.isatty():
        click.echo(f"wrote {path}; run: datasette {settings.db} -m {path}")


@export.command("bagit")
@_OUT_DIR
@click.option("--format", "payload_format", type=click.Choice(["sqlite", "csv"]), default="sqlite",
              show_default=True, help="Payload: a consistent copy of the database, or one CSV per table.")
@_DOCUMENTS
@_SUPPLEMENTARY_DATA
@with_settings
def export_bagit_command(settings, verbose, out, payload_format, documents, include_supplementary_data):
    """A BagIt package: the data, a README data card, SHA-256 manifests.

    DIR must not exist (or be empty). Check it any time with:
    python -m bagit --validate DIR. --documents applies to --format csv (a
    database copy always holds its documents).
    """
    result = export_bagit(settings.db, out, payload_format=payload_format,
                          selection=Selection(documents, include_supplementary_data), on_progress=_progress())
    _report_export(verbose, f"bagit ({payload_format})", sum(result.row_counts.values()), len(result.row_counts),
                   result.out, result.left_out, result.stripped_documents, [])
