"""The `mbharvest` command line: click commands only.

Every setting option is accepted before and after the subcommand
(`mbharvest --db x.db stats` and `mbharvest stats --db x.db`); the one given
after the subcommand wins. Library errors become messages and exit codes here
and nowhere else.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import sys
from pathlib import Path
from typing import Iterator

import click

from harvester import __version__
from harvester.client import WS2Client
from harvester.demo import DEFAULT_OUT as DEFAULT_DEMO_OUT
from harvester.demo import next_steps, run_demo, where_things_are
from harvester.dumps import DumpResult, ImportOptions, check_paths, format_progress, import_dumps
from harvester.dumpsync import ALREADY_IMPORTED, format_sync_progress, sync_with_settings
from harvester.errors import HarvesterError, UsageError, as_interrupted
from harvester.export import Archive, Selection, export_bagit, export_csv, export_parquet, write_datasette_metadata
from harvester.harvest import (
    SEARCH_ENTITIES,
    check_keys,
    estimate,
    harvest_with_settings,
    plan_for,
    read_key_file,
)
from harvester.ledger import list_runs, run_lock
from harvester.normalize import DUMP_ENTITY_TYPES
from harvester.progress import ProgressLine, format_duration, plural
from harvester.refresh import refresh_plans
from harvester.report import write_report
from harvester.settings import resolve_settings
from harvester.signals import stop_on_signals
from harvester.stats import compute_stats, format_table, stats_json
from harvester.store import open_db, pending_migrations, reading, utc_now

CONTEXT_SETTINGS = {"help_option_names": ["-h", "--help"], "max_content_width": 100}

# Every setting as an option, in the order --help lists them.
_SETTING_OPTIONS = {
    "config": click.option(
        "--config", type=click.Path(dir_okay=False), default=None,
        help="Config file (TOML). Env MBHARVEST_CONFIG; default config/mbharvest.toml when it exists."),
    "db": click.option("--db", type=click.Path(dir_okay=False), default=None,
                       help="SQLite database. Env MBHARVEST_DB; default data/musicbrainz.db."),
    "server": click.option("--server", default=None, metavar="URL",
                           help="WS/2 server. Env MBHARVEST_SERVER; default https://musicbrainz.org."),
    "rate": click.option(
        "--rate", type=float, default=None, metavar="REQ_PER_S",
        help="Requests per second, shared by every process on this machine. Env MBHARVEST_RATE; "
             "default 1.0; 0 = unlimited (mirrors only; musicbrainz.org never above 1.0)."),
    "contact": click.option(
        "--contact", default=None, metavar="EMAIL_OR_URL",
        help="Your contact, sent in the User-Agent as MusicBrainz requires. Env MBHARVEST_CONTACT. "
             "Network commands refuse to run without it."),
    "max_requests": click.option(
        "--max-requests", type=int, default=None, metavar="N",
        help="Stop cleanly after N requests (state saved; rerun continues). Env MBHARVEST_MAX_REQUESTS."),
    "max_runtime": click.option(
        "--max-runtime", type=float, default=None, metavar="SECONDS",
        help="Stop cleanly after this many seconds (state saved; rerun continues). Env MBHARVEST_MAX_RUNTIME."),
    "connect_timeout": click.option(
        "--connect-timeout", type=float, default=None, metavar="SECONDS",
        help="Connect timeout per request (default 10). Env MBHARVEST_CONNECT_TIMEOUT."),
    "read_timeout": click.option(
        "--read-timeout", type=float, default=None, metavar="SECONDS",
        help="Read timeout per request (default 45). Env MBHARVEST_READ_TIMEOUT."),
    "include_supplementary": click.option(
        "--include-supplementary/--cc0-only", default=None,
        help="Also keep tags, genres, ratings and annotations (CC BY-NC-SA 3.0), marked with "
             "their licence. Default: CC0 core data only."),
    "verbose": click.option("-v", "--verbose", count=True, default=None,
                            help="More output: a final summary line (-v), progress details (-vv)."),
    "log_file": click.option("--log-file", type=click.Path(dir_okay=False), default=None,
                             help="Also append log messages to this file."),
    "dump_server": click.option(
        "--dump-server", default=None, metavar="URL",
        help="The json-dumps folder of a dump server. Env MBHARVEST_DUMP_SERVER, [dumps] server; default "
             "https://data.metabrainz.org/pub/musicbrainz/data/json-dumps."),
    "dump_dir": click.option(
        "--dump-dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
        help="Where archives are downloaded, one folder per dump. Env MBHARVEST_DUMP_DIR, [dumps] dir; "
             "default data/dumps."),
    "dump_keep": click.option(
        "--keep", "dump_keep", type=click.IntRange(min=0), default=None, metavar="N",
        help="Downloaded dumps kept on disk after a complete import (0: none). Env MBHARVEST_DUMP_KEEP, "
             "[dumps] keep; default 1."),
}
# The settings each kind of command takes (its --help lists only these). plan
# takes harvest's, so that a harvest command line can be planned as it is.
READING = ("config", "db", "verbose", "log_file")
_CLIENT = ("server", "rate", "contact", "connect_timeout", "read_timeout")
HARVESTING = ("config", "db", *_CLIENT, "max_requests", "max_runtime", "include_supplementary", "verbose",
              "log_file")
IMPORTING = ("config", "db", "max_runtime", "include_supplementary", "verbose", "log_file")
SYNCING = ("config", "db", "dump_server", "dump_dir", "dump_keep", "contact", "connect_timeout", "read_timeout",
           "max_runtime", "include_supplementary", "verbose", "log_file")


def _given(name: str, value) -> bool:
    """Whether an option was given: click reports an unused -v count as 0."""
    return value is not None and not (name == "verbose" and value == 0)


def setting_options(names: tuple[str, ...]):
    def add(fn):
        for name in reversed([name for name in _SETTING_OPTIONS if name in names]):
            fn = _SETTING_OPTIONS[name](fn)
        return fn
    return add


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
    # the final error is printed by click: on the console once, in the log file too;
    # retry notices show on a terminal (or with -v), not in cron's mail
    show_retries = verbose >= 1 or sys.stderr.isatty()
    console.addFilter(lambda record: not getattr(record, "log_file_only", False)
                      and (show_retries or not getattr(record, "retry", False)))
    root.addHandler(console)
    if log_file:
        try:
            Path(log_file).parent.mkdir(parents=True, exist_ok=True)
            handler = logging.FileHandler(log_file, encoding="utf-8")
        except (FileExistsError, NotADirectoryError):
            raise UsageError(f"--log-file {log_file}: cannot create it: a file is in the way of its folder") from None
        except OSError as exc:
            raise UsageError(f"--log-file {log_file}: cannot open it for writing ({exc.strerror})") from None
        handler.setLevel(logging.INFO)
        handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(message)s"))
        root.addHandler(handler)


@contextlib.contextmanager
def _cli_edge(verbose: int, rerun: str = "everything committed so far is kept; run the same command again "
                                         "to continue") -> Iterator[None]:
    """Where everything that stops a command becomes one line and an exit
    code: typed library errors their own, Ctrl-C and stop signals 1 (state
    saved), and anything unexpected (a bug) 1, with its traceback
    under -vv and in the --log-file."""
    log = logging.getLogger("harvester")
    try:
        with stop_on_signals():
            yield
    except HarvesterError as exc:
        log.info("error: %s", exc, extra={"log_file_only": True})  # click prints it on the console
        raise CliError(str(exc), exc.exit_code) from None
    except KeyboardInterrupt as exc:
        stop = as_interrupted(exc)
        log.info("interrupted by %s", stop.signal_name, extra={"log_file_only": True})
        raise CliError(f"interrupted by {stop.signal_name}: {rerun}", stop.exit_code) from None
    except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort, BrokenPipeError):
        raise  # click's own, and a closed stdout (click exits quietly)
    except Exception as exc:
        if verbose >= 2:
            raise
        log.error("internal error", exc_info=True, extra={"log_file_only": True})
        raise CliError(f"internal error ({type(exc).__name__}: {exc}): a bug in mbharvest; please report it "
                       "with the output of the same command run with -vv", 1) from None


def with_settings(names: tuple[str, ...]):
    """Give a command the setting options `names` and call it as
    fn(settings, verbose=..., **rest).

    Options given after the subcommand override those given before it; the
    result goes through resolve_settings (option > env > config > default).
    Whatever stops it leaves as one line with its exit code (_cli_edge)."""

    def decorate(fn):
        @setting_options(names)
        @click.pass_context
        @functools.wraps(fn)
        def wrapper(ctx: click.Context, **kwargs):
            merged = dict((ctx.find_root().obj or {}).get("setting_options", {}))
            for name in names:
                value = kwargs.pop(name)
                if _given(name, value):
                    merged[name] = value
            verbose = merged.pop("verbose", 0) or 0
            log_file = merged.pop("log_file", None)
            with _cli_edge(verbose):
                _configure_logging(verbose, log_file)
                return fn(resolve_settings(merged), verbose=verbose, **kwargs)

        return wrapper

    return decorate


@click.group(context_settings=CONTEXT_SETTINGS)
@click.version_option(__version__, "--version", prog_name="mbharvest")
@setting_options(tuple(_SETTING_OPTIONS))
@click.pass_context
def cli(ctx: click.Context, **setting_values):
    """Harvest open MusicBrainz metadata (CC0) into SQLite, politely.

    \b
    Start with `mbharvest demo` (offline, on bundled real data). Against the
    real service, identify yourself first:
        export MBHARVEST_CONTACT=you@example.org

    \b
    Setting options may be given before or after the subcommand.
    Exit codes: 0 finished (or stopped cleanly at a budget), 1 failed,
    2 bad usage or input, 75 another run holds the database's lock.
    Ctrl-C, SIGTERM and SIGHUP stop a run with its state saved (exit 1,
    ledger `interrupted`); the same command again continues.
    """
    ctx.ensure_object(dict)
    ctx.obj["setting_options"] = {name: value for name, value in setting_values.items() if _given(name, value)}


# -- harvest and plan ---------------------------------------------------------

# target -> (metavar, what a harvest brings, the same in a few words for command lists)
_KEY_HELP = {
    "artist": ("MBID...", "the artist, its release groups, its releases with media, tracks, labels and release "
                          "groups, and its recordings (also featured ones and ones on no release) with ISRCs "
                          "and artist credits", "an artist, its releases, recordings and ISRCs"),
    "label": ("MBID...", "the label and its releases with tracks, recordings and ISRCs",
              "a label and its releases"),
    "release-group": ("MBID...", "the release group and its releases with tracks, recordings and ISRCs",
                      "a release group and its releases"),
    "release": ("MBID...", "the release with its media, tracks, recordings, ISRCs, labels and release group",
                "a release with its tracks, recordings and ISRCs"),
    "recording": ("MBID...", "the recording with its ISRCs and artist credit", "a recording with its ISRCs"),
    "isrc": ("CODE...", "every recording carrying each ISRC; invalid codes are reported, never sent",
             "the recordings carrying each ISRC"),
}



def _collect_keys(target: str, keys: tuple[str, ...], from_file) -> tuple[list[str], list[str]]:
    raw, unreadable = list(keys), []
    if from_file is not None:
        name = getattr(from_file, "name", "-")
        from_lines, unreadable = read_key_file(from_file, "standard input" if name in ("-", "<stdin>") else name)
        raw += from_lines
    if not raw and not unreadable:
        raise CliError(f"give at least one {_KEY_HELP[target][0].rstrip('.')}"
                       + (" or --from-file" if target == "isrc" else ""), 2)
    valid, problems = check_keys(target, raw)
    problems = unreadable + problems
    for problem in problems:
        click.echo(f"skipped: {problem}", err=True)
    if not valid:
        raise CliError("nothing to do: every key was malformed", 2)
    return valid, problems


def _summary(verbose: int, line: str) -> None:
    """The one-line summary on stdout: with -v, or when stdout is a terminal
    (cron and pipes get nothing unless asked)."""
    if verbose or sys.stdout.isatty():
        click.echo(line)


def _report_outcome(name: str, outcome, problems: list[str], verbose: int, *, quiet_gone: bool = False) -> None:
    """Summary, then the exit code the contract gives this outcome. With
    quiet_gone (refresh), keys gone upstream are logged and in the ledger,
    not on stderr: cron mails any output, and a deletion is not a fault."""
    for key in outcome.gone_keys:
        message = f"gone: {key} (404: deleted upstream or never existed; marked, not deleted)"
        if quiet_gone:
            logging.getLogger("harvester").info(message)
        else:
            click.echo(message, err=True)
    for failure in outcome.failed_keys:
        click.echo(f"failed: {failure}", err=True)
    _summary(verbose, f"{name}: {outcome.status}, {plural(outcome.requests, 'request')}, "
                      f"{plural(outcome.pages, 'page')}, {plural(outcome.entities_written, 'entity', 'entities')} "
                      f"written, {len(outcome.gone_keys):,} gone"
                      + (f", {plural(outcome.invalid_isrcs, 'invalid ISRC')} left out" if outcome.invalid_isrcs
                         else "")
                      + (f" ({outcome.stop_reason}; run it again to continue)" if outcome.stop_reason else "")
                      + f" [run {outcome.run_id}]")
    if outcome.failed_keys:
        raise CliError(f"{plural(len(outcome.failed_keys), 'key')} failed", 1)
    if outcome.gone_keys and not outcome.done_keys and outcome.status == "complete" and not quiet_gone:
        raise CliError("nothing harvested: every key is gone", 1)
    if problems:
        raise CliError(f"{plural(len(problems), 'malformed key')} skipped", 2)


def _run(settings, target: str, plans: list, args: dict, problems: list[str], verbose: int) -> None:
    with ProgressLine() as progress:
        outcome = harvest_with_settings(settings, plans, command=f"harvest {target}", args=args,
                                        on_progress=progress)
    _report_outcome(f"harvest {target}", outcome, problems, verbose)


def _show_plan(settings, plans: list) -> None:
    client = WS2Client.from_settings(settings)
    estimates = estimate(client, plans)
    for item in estimates:
        step = item.step
        what = f"{step.kind} {step.entity}" + (f" by {step.linked}" if step.linked else "")
        items = "" if item.items is None else f"{plural(item.items, 'item')}, "
        click.echo(f"{item.plan}  {what}: {items}{plural(item.requests, 'request')}")
    total = sum(item.requests for item in estimates)
    seconds = total / settings.rate if settings.rate else 0.0
    pace = (f"about {format_duration(seconds)} at {settings.rate:g} req/s" if settings.rate
            else "no rate limit (--rate 0): as fast as the server answers")
    click.echo(f"total: {plural(total, 'request')}, {pace} "
               f"(the estimate itself used {plural(client.requests_made, 'request')})")
    if seconds > 86400:
        click.echo("This needs more than a day of requests: import the JSON dumps instead "
                   "(mbharvest import-dump; https://data.metabrainz.org/pub/musicbrainz/data/json-dumps/).")


@cli.group(context_settings=CONTEXT_SETTINGS, short_help="Pull a slice of MusicBrainz in, resumably.")
def harvest():
    """Pull a slice of MusicBrainz into the database, resumably.

    \b
    Each page commits with its bookmark: kill it at any moment and run the
    same command again to continue. --max-requests/--max-runtime stop cleanly
    between pages (exit 0, ledger says partial).

    \b
    Examples:
      mbharvest harvest artist 5b11f4ce-a62d-471e-81fc-a69a8278c7da
      mbharvest harvest isrc GBAHS1100095 USGF19942501
      mbharvest harvest isrc --from-file isrcs.txt
      mbharvest harvest search recording 'isrc:GBAHS11*' --max-results 300
    """


@cli.group(context_settings=CONTEXT_SETTINGS, short_help="Requests and time a harvest would take.")
def plan():
    """Requests and time a harvest would take, from a few cheap count probes.

    Takes the same arguments as `mbharvest harvest`, e.g.
    `mbharvest plan artist 5b11f4ce-a62d-471e-81fc-a69a8278c7da`.
    """


_FROM_FILE = click.option("--from-file", type=click.File("rb"), default=None,
                          help="Also read ISRCs from FILE (UTF-8, one per line, # comments), or - for standard "
                               "input.")


def _key_command(group: click.Group, target: str, run: bool) -> None:
    metavar, collects, briefly = _KEY_HELP[target]
    verb = "Harvest" if run else "Estimate the requests to harvest"

    def command(settings, verbose, keys, from_file=None):
        valid, problems = _collect_keys(target, keys, from_file)
        plans = [plan_for(target, key) for key in valid]
        if run:
            _run(settings, target, plans, {"keys": valid}, problems, verbose)
        else:
            _show_plan(settings, plans)
            if problems:
                raise CliError(f"{plural(len(problems), 'malformed key')} skipped", 2)

    command = with_settings(HARVESTING)(command)
    if target == "isrc":
        command = _FROM_FILE(command)
    command = click.argument("keys", nargs=-1, metavar=metavar)(command)
    keys_are = ("Codes with or without hyphens, or MusicBrainz ISRC page addresses "
                "(https://musicbrainz.org/isrc/<code>)." if target == "isrc" else
                f"MBIDs, or MusicBrainz page addresses pasted from a browser (https://musicbrainz.org/{target}/<mbid>).")
    group.command(target, help=f"{verb} {collects}.\n\n{keys_are}", context_settings=CONTEXT_SETTINGS,
                  short_help=(briefly[0].upper() + briefly[1:] if run else f"Requests for {briefly}")
                  + ".")(command)


def _search_command(group: click.Group, run: bool) -> None:
    @group.command("search", context_settings=CONTEXT_SETTINGS,
                   short_help="Every page of a search." if run else "Requests for every page of a search.")
    @click.argument("entity", type=click.Choice(SEARCH_ENTITIES))
    @click.argument("query")
    @click.option("--max-results", type=click.IntRange(min=1), default=None,
                  help="Stop after N results (default: every page).")
    @with_settings(HARVESTING)
    def command(settings, verbose, entity, query, max_results):
        """Every page of a search (Lucene syntax, e.g. 'isrc:GBAHS1100095' or 'artist:Nirvana')."""
        plans = [plan_for("search", query, max_results=max_results, search_entity=entity)]
        if run:
            _run(settings, "search", plans, {"entity": entity, "query": query, "max_results": max_results},
                 [], verbose)
        else:
            _show_plan(settings, plans)


for _target in _KEY_HELP:
    _key_command(harvest, _target, run=True)
    _key_command(plan, _target, run=False)
_search_command(harvest, run=True)
_search_command(plan, run=False)


# -- refresh ------------------------------------------------------------------

@cli.command(context_settings=CONTEXT_SETTINGS, short_help="Keep the database current: the cron job.")
@with_settings(HARVESTING)
def refresh(settings, verbose):
    """Keep the database current: the cron entry point.

    \b
    In order, within --max-requests / --max-runtime (or [refresh] in the
    config): finish harvests left unfinished, re-harvest the [watch] list,
    then re-fetch entities older than [refresh] older_than days, oldest first.
    Quiet unless -v or something is wrong; one run at a time per database
    (a second exits 75 at once). See README, "Running on a schedule".
    """
    with ProgressLine() as progress:
        outcome = harvest_with_settings(settings, refresh_plans(settings), command="refresh",
                                        args={"older_than_days": settings.older_than_days}, on_progress=progress)
    _report_outcome("refresh", outcome, [], verbose, quiet_gone=True)


# -- the run ledger -----------------------------------------------------------

@cli.command(context_settings=CONTEXT_SETTINGS, short_help="The run ledger.")
@click.option("--json", "as_json", is_flag=True, help="One JSON array of runs.")
@click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True, help="Newest N runs.")
@with_settings(READING)
def runs(settings, verbose, as_json, limit):
    """The run ledger: every harvest, refresh and import with its status and counts."""
    with reading(settings.db) as db:
        rows = list_runs(db, limit)
    if as_json:
        click.echo(json.dumps(rows, indent=2, ensure_ascii=False))
        return
    if not rows:
        click.echo("no runs yet")
    for row in rows:
        click.echo(f"{row['id']:>5}  {row['started_at'] or '':20}  {row['status'] or '':11} "
                   f"{row['requests'] or 0:>7} req  {row['entities_written'] or 0:>9,} entities  {row['command']}"
                   + (f"  ({row['error']})" if row['error'] else ""))


def _export_progress() -> ProgressLine:
    return ProgressLine(lambda table, rows: f"{table}: {rows:,} rows")


def _report_export(verbose: int, what: str, rows: int, tables: int, out: Path, left_out: dict[str, int],
                   stripped_documents: int, removed: list[Path]) -> None:
    """Say what was left out (always: it is a licence matter) and, with -v or on
    a terminal, a one-line summary on stdout."""
    if left_out:
        click.echo("left out supplementary data (CC BY-NC-SA 3.0): "
                   + ", ".join(f"{table} ({n:,} rows)" for table, n in left_out.items())
                   + "; add --include-supplementary-data to export it", err=True)
    if stripped_documents:
        click.echo(f"{stripped_documents:,} raw documents exported without their supplementary fields", err=True)
    for path in removed:
        click.echo(f"removed {path} (from an earlier export; not part of this one)", err=True)
    _summary(verbose, f"{what}: {plural(rows, 'row')} in {plural(tables, 'table')} -> {out}")


_OUT_DIR = click.option("--out", required=True, type=click.Path(file_okay=False), metavar="DIR",
                        help="Output folder (created if missing; existing files of the same name are replaced).")
_DOCUMENTS = click.option("--documents", is_flag=True,
                          help="Also export the document table (the raw JSON of every entity; large).")
_SUPPLEMENTARY_DATA = click.option(
    "--include-supplementary-data", is_flag=True,
    help="Also export tags, ratings and annotations and the full raw documents: CC BY-NC-SA 3.0, "
         "NonCommercial. Default: CC0 core data only.")


@cli.group(context_settings=CONTEXT_SETTINGS, short_help="CSV, Parquet, Datasette metadata, BagIt.")
def export():
    """Export the database: CSV, Parquet, Datasette metadata, BagIt package.

    Core data (CC0) only, unless --include-supplementary-data is given.
    Exit codes: 0 done, 1 failed (also: pyarrow missing for parquet),
    2 no such database or output folder not writable.
    """


@export.command("csv", short_help="One UTF-8 CSV per table.")
@_OUT_DIR
@_DOCUMENTS
@_SUPPLEMENTARY_DATA
@with_settings(READING)
def export_csv_command(settings, verbose, out, documents, include_supplementary_data):
    """One UTF-8 CSV per table, with a header row, streamed, and a
    datapackage.json (Frictionless) declaring every column's type.

    NULL is an empty unquoted field, an empty string is written "";
    booleans are true/false, timestamps ISO 8601 UTC.
    """
    with _export_progress() as progress:
        result = export_csv(settings.db, out, Selection(documents, include_supplementary_data), progress)
    _report_export(verbose, "csv", result.rows, len(result.row_counts), result.out, result.left_out,
                   result.stripped_documents, result.removed)


@export.command("parquet", short_help="One Parquet file per table (needs pyarrow).")
@_OUT_DIR
@_DOCUMENTS
@_SUPPLEMENTARY_DATA
@with_settings(READING)
def export_parquet_command(settings, verbose, out, documents, include_supplementary_data):
    """One Parquet file per table, typed by the data dictionary
    (timestamps UTC, booleans, codes as text), in row groups, and a
    datapackage.json describing the dataset. Needs the 'parquet' extra
    (pyarrow).
    """
    with _export_progress() as progress:
        result = export_parquet(settings.db, out, Selection(documents, include_supplementary_data), progress)
    _report_export(verbose, "parquet", result.rows, len(result.row_counts), result.out, result.left_out,
                   result.stripped_documents, result.removed)


@export.command("datasette-metadata", short_help="Titles, descriptions and licences for Datasette.")
@click.option("--out", type=click.Path(dir_okay=False), default=None, metavar="FILE",
              help="Where to write (default: metadata.json next to the database).")
@with_settings(READING)
def export_datasette_metadata_command(settings, verbose, out):
    """Datasette metadata: descriptions of every table, view and column,
    internal tables hidden, facets, licence per table, source, and canned
    queries for the claims C1-C8 and common questions.

    Then: datasette data/musicbrainz.db -m data/metadata.json --setting suggest_facets off
    """
    path = write_datasette_metadata(settings.db, out or settings.db.parent / "metadata.json")
    _summary(verbose, f"wrote {path}; run: datasette {settings.db} -m {path} --setting suggest_facets off")


@export.command("bagit", short_help="A BagIt package with SHA-256 manifests.")
@click.option("--out", required=True, type=click.Path(file_okay=False), metavar="DIR",
              help="Folder for the bag: must not exist yet, or be empty (built beside it, then renamed into place).")
@click.option("--format", "payload_format", type=click.Choice(["sqlite", "csv"]), default="sqlite",
              show_default=True, help="Payload: a consistent copy of the database, or one CSV per table.")
@_DOCUMENTS
@_SUPPLEMENTARY_DATA
@click.option("--organization", default=None, metavar="NAME",
              help="Your archive, for bag-info's Source-Organization (default: [archive] organization).")
@click.option("--contact-name", default=None, metavar="NAME", help="Default: [archive] contact_name.")
@click.option("--contact-email", default=None, metavar="EMAIL", help="Default: [archive] contact_email.")
@with_settings(READING)
def export_bagit_command(settings, verbose, out, payload_format, documents, include_supplementary_data,
                         organization, contact_name, contact_email):
    """A BagIt 1.0 package: the data, a README data card with the full
    provenance, a data dictionary, SHA-256 manifests.

    DIR must not exist (or be empty). Check it any time with:
    python -m bagit --validate DIR. --documents applies to --format csv (a
    database copy always holds its documents). Name your archive in the
    config's [archive] section (organization, contact_name, contact_email)
    or with the options.
    """
    archive = Archive(organization=organization or settings.archive.get("organization"),
                      contact_name=contact_name or settings.archive.get("contact_name"),
                      contact_email=contact_email or settings.archive.get("contact_email"))
    with _export_progress() as progress:
        result = export_bagit(settings.db, out, payload_format=payload_format,
                              selection=Selection(documents, include_supplementary_data), on_progress=progress,
                              archive=archive)
    _report_export(verbose, f"bagit ({payload_format})", sum(result.row_counts.values()), len(result.row_counts),
                   result.out, result.left_out, result.stripped_documents, [])


# -- statistics and the report ------------------------------------------------

@cli.command(context_settings=CONTEXT_SETTINGS, short_help="Catalogue figures: counts, ISRCs, lengths, years.")
@click.option("--json", "as_json", is_flag=True, help="One JSON object (the keys are in the README).")
@with_settings(READING)
def stats(settings, verbose, as_json):
    """Catalogue figures: counts, ISRCs, lengths, releases per year.

    Rows marked gone are left out. The database must exist (exit 2 if not)."""
    with reading(settings.db) as db:
        figures = compute_stats(db)
    click.echo(stats_json(figures) if as_json else format_table(figures))


@cli.command(context_settings=CONTEXT_SETTINGS, short_help="Markdown + HTML report with plots, against the claims.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None, metavar="DIR",
              help="Folder for report.md, report.html and the PNG plots (default: report/ beside the database).")
@with_settings(READING)
def report(settings, verbose, out_dir):
    """Markdown + HTML report with PNG plots, side by side with the published claims.

    The database must exist (exit 2 if not)."""
    target = Path(out_dir) if out_dir else Path(settings.db).parent / "report"
    with reading(settings.db) as db, ProgressLine(lambda step: f"{step}...") as progress:
        written = write_report(db, target, progress=progress)
    _summary(verbose, f"report: {len(written)} files in {target} ({', '.join(p.name for p in written)})")


@cli.command(context_settings=CONTEXT_SETTINGS, short_help="Bring an older database to this release's shape.")
@with_settings(READING)
def upgrade(settings, verbose):
    """Bring a database made by an earlier mbharvest to this release's shape.

    Applies the migrations it lacks (converting values whose format changed)
    under the run lock. Commands that write (harvest, refresh, import-dump)
    do this by themselves; commands that only read (stats, report, runs,
    export) never change a database, and say when they need this.
    """
    pending = pending_migrations(settings.db)  # a missing or foreign file is refused here, before the lock
    if not pending:
        click.echo(f"upgrade: {settings.db} already has this release's shape; nothing changed")
        return
    with run_lock(settings.db, "upgrade", utc_now()):
        open_db(settings.db).close()
    click.echo(f"upgrade: applied {', '.join(pending)} to {settings.db}")


# -- the offline demo ---------------------------------------------------------

@cli.command(context_settings=CONTEXT_SETTINGS, short_help="The whole cycle offline, on bundled real data.")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=str(DEFAULT_DEMO_OUT), show_default=True,
              metavar="DIR", help="Folder for demo.db and demo-report/ (an earlier demo.db there is replaced).")
def demo(out_dir):
    """The whole cycle offline, in seconds: harvest, statistics, report.

    \b
    Serves real MusicBrainz lookup bodies (CC0, bundled with mbharvest) from
    a local WS/2 emulator on 127.0.0.1 and harvests them through the normal
    code path (client, rate limiter, run lock, ledger): artists, releases,
    recordings and ISRCs. Then prints the statistics and writes the report.
    Needs no network and no contact; setting options do not apply to it.
    """
    with _cli_edge(0, rerun="run mbharvest demo again to start afresh"):
        result = run_demo(out_dir, say=click.echo)
    click.echo("")
    click.echo(format_table(result.stats))
    click.echo("")
    click.echo(where_things_are(result))
    click.echo("")
    click.echo(next_steps())


@cli.command("import-dump", short_help="Import MusicBrainz JSON dumps, resumably.")
@click.argument("paths", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--entity", "entity_type", type=click.Choice(DUMP_ENTITY_TYPES), default=None,
              help="Entity type of a bare JSON Lines file or stream (else taken from mbdump/<entity>).")
@click.option("--timestamp", default=None, metavar="DATETIME",
              help="The dump's time for a bare file (default: the file's mtime; archives use their TIMESTAMP; "
                   "a stream of JSON lines needs it).")
@click.option("--keep-documents/--no-keep-documents", default=False,
              help="Also keep each line's raw JSON in the document table (off: it doubles the database).")
@click.option("--skip-bad-lines", is_flag=True,
              help="Pass over malformed lines (reported with their numbers) instead of stopping.")
@click.option("--memory", "memory_mb", type=click.IntRange(min=64), default=None, metavar="MB",
              help="Memory the import may use (peak resident). Env MBHARVEST_IMPORT_MEMORY_MB, config "
                   "[import] memory_mb; default 2048.")
@click.option("--temp-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where staged rows wait for the merge (about a quarter of the dump's uncompressed size). Env "
                   "MBHARVEST_IMPORT_TEMP_DIR, config [import] temp_dir; default <database>.import/ beside it.")
@click.option("--batch-size", type=click.IntRange(min=1), default=None, metavar="LINES",
              help="Lines per staged chunk at most (default: as many as --memory allows, or 30 seconds' worth).")
@click.option("--processes", type=click.IntRange(min=1), default=None, metavar="N",
              help="Processes that parse and stage the lines, each a range of them; from 2, a second process "
                   "also builds tables during the merge. "
                   "Env MBHARVEST_IMPORT_PROCESSES, config [import] processes; default 2 (1 on one core).")
@with_settings(IMPORTING)
def import_dump_command(settings, verbose, paths, entity_type, timestamp, keep_documents, skip_bad_lines,
                        memory_mb, temp_dir, batch_size, processes):
    """Import MusicBrainz JSON dumps: <entity>.tar.xz as published, an
    extracted mbdump/<entity> file, --entity TYPE FILE.jsonl, or a FIFO or
    `-` (standard input) carrying either.

    \b
    Streamed (never unpacked). The lines' rows are staged in sorted runs
    beside the database, then merged into it in one transaction: readers see
    the database as it was until the merge commits. Resumable: run the same
    command again after an interruption and it continues after the last
    staged chunk. A dump already imported is left as it is."""
    options = ImportOptions(entity_type=entity_type, timestamp=timestamp,
                            supplementary=settings.include_supplementary, keep_documents=keep_documents,
                            skip_bad_lines=skip_bad_lines, batch_lines=batch_size,
                            memory_mb=memory_mb or settings.import_memory_mb,
                            temp_dir=temp_dir or settings.import_temp_dir,
                            processes=processes or settings.import_processes)
    check_paths([Path(p) for p in paths], options)
    progress = ProgressLine(format_progress)

    def on_result(result: DumpResult) -> None:
        progress.close()
        if result.status == "already-imported":
            click.echo(f"{result.path}: {result.entity_type} {result.source} already imported "
                       f"({result.lines_read:,} lines); nothing changed", err=True)
        elif result.status == "partial":
            click.echo(f"{result.path}: stopped at --max-runtime after line {result.lines_read:,} "
                       f"(staged, not merged yet); run again to continue", err=True)
        if result.bad_lines:
            click.echo(f"{result.path}: {result.skipped_text()}", err=True)
        if verbose:
            click.echo(result.summary())

    with run_lock(settings.db, "import-dump", utc_now()), progress:
        db = open_db(settings.db)
        try:
            import_dumps(db, [Path(p) for p in paths], options, max_runtime=settings.max_runtime,
                         progress=progress, on_result=on_result)
        finally:
            db.close()


# -- sync-dumps -----------------------------------------------------------------

@cli.command("sync-dumps", context_settings=CONTEXT_SETTINGS,
             short_help="Keep a full copy current from the JSON dumps: their cron job.")
@click.argument("entity_types", nargs=-1, type=click.Choice(DUMP_ENTITY_TYPES), metavar="[ENTITY]...")
@with_settings(SYNCING)
def sync_dumps_command(settings, verbose, entity_types):
    """Keep a full copy current from the official JSON dumps: the cron job
    for a whole catalogue (new dumps appear Wednesdays and Saturdays).

    \b
    Reads LATEST on the dump server; if that dump is imported, exits 0
    after that one request. Otherwise: downloads each archive (ENTITY...:
    default all eleven: area, artist, event, instrument, label, place,
    recording, release, release-group, series, work) into DIR/<dump>/,
    resuming a partial download with a Range request, checks its SHA-256
    against SHA256SUMS (a mismatch deletes it and exits 1, nothing imported
    from it), imports them (referenced types first: area ... work,
    release-group, recording, release), then marks gone every row of a
    type the dump covers completely whose
    source is an older dump and which the dump no longer carries (the dumps
    have no tombstones; recordings need both recording and release).
    Interrupted or stopped at --max-runtime, the next run continues.
    Quiet unless -v or something is wrong. See README, "Keeping a full copy
    current from the dumps".
    """
    progress = ProgressLine(format_sync_progress)

    def on_result(result: DumpResult) -> None:
        progress.close()
        if verbose:
            click.echo(result.summary())

    with progress:
        outcome = sync_with_settings(settings, entity_types or DUMP_ENTITY_TYPES, progress=progress,
                                     on_result=on_result)
    if outcome.status != ALREADY_IMPORTED or verbose:
        _summary(verbose, outcome.summary())
