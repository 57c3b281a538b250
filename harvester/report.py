"""The report: the statistics side by side with the published claims (C1-C8),
as Markdown with PNG plots and as one self-contained HTML file.

The report is built once as a list of blocks (headings, paragraphs, tables,
images, lists) and rendered twice, so the Markdown and the HTML can never
say different things. Plots are drawn with matplotlib's Agg canvas on
Figure objects (no pyplot global state).
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

import sqlite_utils

from harvester.claims import CLAIM_ISRCS, CLAIM_LENGTH_MINUTES, CLAIM_MB_ENTRIES, CLAIM_TRACKS, CLAIM_YEAR
from harvester.errors import HarvesterError
from harvester.export.source import prepare_out_dir
from harvester.stats import (KNOWN_TOTALS, KNOWN_TOTALS_AS_OF, LENGTH_BIN_MS, STREAMING_ENTITIES, compute_stats,
                             format_length, percent, smooth)

TOP_COUNTRIES = 20
LENGTH_PLOT_LIMIT_MS = 15 * 60_000
PLOT_SIZE_INCHES = (10, 5)
PLOT_DPI = 100

_KNOWN_LABELS = {"artists": "artists", "release_groups": "release groups", "releases": "releases",
                 "recordings": "recordings"}


@dataclass
class Plot:
    name: str
    title: str
    png: bytes


@dataclass
class Table:
    headers: list[str]
    rows: list[list[str]]


@dataclass
class Report:
    """Blocks in order: ("h1"|"h2"|"p", text), ("ul", [text]), Table, Plot."""

    blocks: list[Any] = field(default_factory=list)

    def add(self, *blocks: Any) -> None:
        self.blocks.extend(blocks)


def _n(value: int | float) -> str:
    return f"{value:,}"


def _millions(value: float) -> str:
    return f"{value / 1e6:.2f} M"


# -- plots --

def _figure():
    from matplotlib.figure import Figure

    figure = Figure(figsize=PLOT_SIZE_INCHES, dpi=PLOT_DPI, layout="constrained")
    return figure, figure.add_subplot()


def _png(figure) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=PLOT_DPI)
    return buffer.getvalue()


def _empty_plot(title: str, message: str):
    figure, axes = _figure()
    axes.set_title(title)
    axes.text(0.5, 0.5, message, ha="center", va="center", fontsize=14, transform=axes.transAxes)
    axes.set_xticks([])
    axes.set_yticks([])
    return figure


def tick_label(value: float, _position: Any = None) -> str:
    """A tick's label says exactly its value: 35,000 with a thousands
    separator, 2.5 as 2.5 (never rounded to 2 or 3)."""
    if value == int(value):
        return f"{int(value):,}"
    return f"{value:,.6f}".rstrip("0")


def _count_axis(axis) -> None:
    """A linear axis of counts: whole-number ticks, labelled exactly."""
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axis.set_major_locator(MaxNLocator(integer=True))
    axis.set_major_formatter(FuncFormatter(tick_label))


def _log_axis(axes) -> None:
    """Log scale of counts with 1-2-5 ticks labelled exactly (10, 20, 50,
    1,000); counts start at 1, so the axis does too (no 0.1, 0.2, 0.5)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    axes.set_yscale("log")
    axes.set_ylim(bottom=0.8)
    axes.yaxis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0)))
    axes.yaxis.set_major_formatter(FuncFormatter(tick_label))
    axes.yaxis.set_minor_formatter(NullFormatter())


def _year_axis(axes) -> None:
    from matplotlib.ticker import FuncFormatter, MaxNLocator

    axes.xaxis.set_major_locator(MaxNLocator(integer=True, nbins=12))
    axes.xaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.0f}"))
    axes.set_xlabel("Year")
    axes.grid(axis="y", alpha=0.3)


def _mark_claim_year(axes, text: str) -> None:
    axes.axvline(CLAIM_YEAR, color="#c44e52", linestyle="--", linewidth=1.2, label=text)


def draw_lengths(stats: dict[str, Any]):
    title = "Recording lengths (5-second bins)"
    bins = [b for b in stats["length_histogram"] if b["start_ms"] < LENGTH_PLOT_LIMIT_MS]
    if not bins:
        return _empty_plot(title, "No recordings with a known length")
    figure, axes = _figure()
    minutes = [b["start_ms"] / 60_000 for b in bins]
    counts = [b["count"] for b in bins]
    axes.bar(minutes, counts, width=LENGTH_BIN_MS / 60_000, align="edge", color="#4c72b0", alpha=0.75,
             label="recordings per 5-second bin")
    centres = [m + LENGTH_BIN_MS / 120_000 for m in minutes]
    axes.plot(centres, smooth(counts), color="#333333", linewidth=1, label="lightly smoothed (1-2-1)")
    for index, minute in enumerate(CLAIM_LENGTH_MINUTES):
        axes.axvline(minute, color="#c44e52", linestyle="--", linewidth=1.2,
                     label="published claim (C6): clusters at 2, 3 and 4 minutes" if index == 0 else None)
    for peak in stats["length_peaks"]:
        if peak["start_ms"] < LENGTH_PLOT_LIMIT_MS:
            x = (peak["start_ms"] + LENGTH_BIN_MS / 2) / 60_000
            axes.plot([x], [peak["count"]], marker="v", color="#c44e52", markersize=9, linestyle="none")
            axes.annotate(peak["centre"], (x, peak["count"]), textcoords="offset points", xytext=(0, 8),
                          ha="center", color="#c44e52", fontsize=10, fontweight="bold")
    longer = stats["recordings_with_length"] - sum(counts)
    axes.set_title(f"{title}, detected peaks marked\n{_n(stats['recordings_with_length'])} recordings with a "
                   "known length" + (f"; {_n(longer)} of 15 minutes or longer not shown" if longer else ""))
    axes.set_xlabel("Recording length (minutes)")
    axes.set_ylabel("Recordings per 5-second bin")
    _count_axis(axes.yaxis)
    axes.set_xlim(0, max(minutes[-1] + LENGTH_BIN_MS / 60_000, max(CLAIM_LENGTH_MINUTES) + 1))
    axes.set_ylim(0, max(counts) * 1.25)  # room for the peak labels and the legend
    axes.set_xticks(range(0, int(axes.get_xlim()[1]) + 1))
    axes.grid(axis="y", alpha=0.3)
    axes.legend(loc="upper right")
    return figure


def _years(per_year: dict[str, int]) -> tuple[list[int], list[int]]:
    known = sorted((int(y), n) for y, n in per_year.items() if y != "unknown")
    return [y for y, _ in known], [n for _, n in known]


def draw_releases_per_year(stats: dict[str, Any]):
    title = "Releases per year (release date; log scale)"
    years, counts = _years(stats["releases_per_year"])
    if not years:
        return _empty_plot(title, "No releases with a date")
    figure, axes = _figure()
    axes.bar(years, counts, width=0.85, color="#55a868", label="releases")
    _log_axis(axes)
    _mark_claim_year(axes, f"published claim (C7): over 10 million albums dated {CLAIM_YEAR}")
    unknown = stats["releases_per_year"].get("unknown", 0)
    axes.set_title(f"{title}; {_n(unknown)} without a date not shown")
    axes.set_ylabel("Releases (log scale)")
    _year_axis(axes)
    axes.set_xlim(min(years[0], CLAIM_YEAR) - 1, max(years[-1], CLAIM_YEAR) + 1)
    axes.legend(loc="upper left")
    return figure


def draw_release_groups_by_type(stats: dict[str, Any]):
    title = "Release groups per year by primary type (first release date; log scale)"
    by_type = {t: _years(per_year) for t, per_year in stats["release_groups_per_year_by_type"].items()}
    by_type = {t: data for t, data in by_type.items() if data[0]}
    if not by_type:
        return _empty_plot(title, "No release groups with a first release date")
    figure, axes = _figure()
    ordered = sorted(by_type, key=lambda t: -sum(by_type[t][1]))
    first = min(data[0][0] for data in by_type.values())
    last = max(data[0][-1] for data in by_type.values())
    span = list(range(first, last + 1))
    for primary_type in ordered:
        per_year = dict(zip(*by_type[primary_type]))
        # years without any are gaps in the line (log scale has no zero)
        axes.plot(span, [per_year.get(year, math.nan) for year in span], marker="o", markersize=3,
                  linewidth=1.5, label=primary_type)
    _log_axis(axes)
    _mark_claim_year(axes, f"claim (C7): {CLAIM_YEAR}")
    axes.set_title(title)
    axes.set_ylabel("Release groups (log scale)")
    _year_axis(axes)
    axes.set_xlim(min(first, CLAIM_YEAR) - 1, max(last, CLAIM_YEAR) + 1)
    axes.legend(title="Primary type", loc="upper left")
    return figure


def draw_isrc_countries(stats: dict[str, Any]):
    title = f"Distinct ISRCs by country code (top {TOP_COUNTRIES})"
    countries = list(stats["isrc_countries"].items())
    if not countries:
        return _empty_plot(title, "No ISRCs")
    top = countries[:TOP_COUNTRIES]
    rest = sum(n for _, n in countries[TOP_COUNTRIES:])
    figure, axes = _figure()
    labels = [c for c, _ in top][::-1]
    values = [n for _, n in top][::-1]
    axes.barh(labels, values, color="#8172b2")
    for y, value in enumerate(values):
        axes.annotate(_n(value), (value, y), textcoords="offset points", xytext=(4, 0), va="center", fontsize=8)
    axes.set_title(title + (f"; {_n(rest)} more in {len(countries) - TOP_COUNTRIES} other countries" if rest else ""))
    axes.set_xlabel("Distinct ISRCs")
    axes.set_ylabel("Country code (ISRC characters 1-2)")
    axes.margins(x=0.12)
    _count_axis(axes.xaxis)
    axes.grid(axis="x", alpha=0.3)
    return figure


def draw_isrc_years(stats: dict[str, Any]):
    title = "Distinct ISRCs by year of reference (ISRC characters 6-7)"
    years, counts = _years(stats["isrc_reference_years"])
    if not years:
        return _empty_plot(title, "No ISRCs")
    figure, axes = _figure()
    axes.bar(years, counts, width=0.85, color="#dd8452")
    axes.set_title(title)
    axes.set_ylabel("Distinct ISRCs")
    _count_axis(axes.yaxis)
    _year_axis(axes)
    return figure


def linked_services(stats: dict[str, Any]) -> list[tuple[str, dict[str, int]]]:
    """The streaming services this database links to, most linked recordings first."""
    linked = [(service, counts) for service, counts in stats["streaming_links"].items() if any(counts.values())]
    return sorted(linked, key=lambda item: (-item[1]["recordings"], -item[1]["releases"], -item[1]["artists"],
                                            item[0]))


def draw_streaming_links(stats: dict[str, Any]):
    title = "Links to streaming services (MusicBrainz URL relationships; log scale)"
    linked = linked_services(stats)
    if not linked:
        return _empty_plot(title, "No links to streaming services in this database"
                           if stats["open_data_tables"] else "This database predates relationships: "
                                                             "`mbharvest upgrade`, then harvest or import")
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    figure, axes = _figure()
    names = [service for service, _ in linked][::-1]
    height = 0.8 / len(STREAMING_ENTITIES)
    colours = {"artists": "#4c72b0", "releases": "#55a868", "recordings": "#c44e52"}
    for index, (key, _) in enumerate(STREAMING_ENTITIES):
        values = [counts[key] for _, counts in linked][::-1]
        positions = [y - 0.4 + height * (index + 0.5) for y in range(len(names))]
        axes.barh(positions, [v if v else math.nan for v in values], height=height, color=colours[key],
                  label=f"{key} with a link")
        for y, value in zip(positions, values):
            if value:
                axes.annotate(_n(value), (value, y), textcoords="offset points", xytext=(3, 0), va="center",
                              fontsize=7)
    axes.axvline(CLAIM_TRACKS, color="#333333", linestyle="--", linewidth=1.2,
                 label=f"the articles' Spotify tracks (C1): {_millions(CLAIM_TRACKS)}")
    axes.axvline(CLAIM_ISRCS, color="#8172b2", linestyle=":", linewidth=1.5,
                 label=f"the articles' unique ISRCs (C2): {_millions(CLAIM_ISRCS)}")
    axes.set_yticks(range(len(names)), names)
    axes.set_xscale("log")
    axes.set_xlim(0.8, CLAIM_TRACKS * 2)
    axes.xaxis.set_major_locator(LogLocator(base=10, subs=(1.0,)))
    axes.xaxis.set_major_formatter(FuncFormatter(tick_label))
    axes.xaxis.set_minor_formatter(NullFormatter())
    axes.set_xlabel("Distinct entities with at least one link (log scale)")
    axes.set_title(title)
    axes.grid(axis="x", alpha=0.3)
    axes.legend(loc="lower right", fontsize=8)
    return figure


PLOTS: list[tuple[str, str, Callable[[dict[str, Any]], Any]]] = [
    ("length_histogram.png", "Recording lengths with detected peaks and the claimed 2, 3 and 4 minutes",
     draw_lengths),
    ("releases_per_year.png", "Releases per year, the claimed year 2023 marked", draw_releases_per_year),
    ("release_groups_per_year_by_type.png", "Release groups per year by primary type", draw_release_groups_by_type),
    ("isrc_countries.png", "Distinct ISRCs by country", draw_isrc_countries),
    ("isrc_reference_years.png", "Distinct ISRCs by year of reference", draw_isrc_years),
    ("streaming_links.png", "Artists, releases and recordings linked to each streaming service, beside the "
                            "articles' 256 M tracks and 186 M ISRCs", draw_streaming_links),
]


# -- the claims --

def nearest_to_five_million(stats: dict[str, Any]) -> list[dict[str, Any]]:
    """Each MusicBrainz number that could be the articles' '~5 M entries',
    nearest first, with 186 M divided by it."""
    candidates = [(f"MusicBrainz {label} ({KNOWN_TOTALS_AS_OF})", KNOWN_TOTALS[key])
                  for key, label in _KNOWN_LABELS.items()]
    candidates.append(("distinct ISRCs in this database", stats["isrcs_unique"]))
    rows = [{"number": label, "value": value, "ratio": CLAIM_ISRCS / value if value else None,
             "distance": abs(math.log(value / CLAIM_MB_ENTRIES)) if value else math.inf}
            for label, value in candidates]
    return sorted(rows, key=lambda row: row["distance"])


def _year_count(per_year: dict[str, int], year: int) -> int:
    return per_year.get(str(year), 0)


def claim_rows(stats: dict[str, Any]) -> list[list[str]]:
    """C1-C8: the claim as published, this database's figure, how measured, caveat."""
    recordings, tracks = stats["recordings"], stats["tracks"]
    sample = stats["origin"]["kind"] != "dump import"
    scope = "this harvested sample" if sample else "this dump import"
    nearest = nearest_to_five_million(stats)[0]
    albums = stats["release_groups_per_year_by_type"].get("Album", {})
    releases_2015 = _year_count(stats["releases_per_year"], 2015)
    releases_2023 = _year_count(stats["releases_per_year"], 2023)
    growth = f"{releases_2023 / releases_2015:.2f}x from 2015" if releases_2015 else "no releases dated 2015"
    peaks = ", ".join(p["centre"] for p in stats["length_peaks"]) or "none"
    return [
        ["C1", "~256 million tracks of metadata",
         f"{_n(recordings)} recordings; {_n(tracks)} tracks on releases",
         "count of `recording` and of `track` rows (tracks of releases not marked gone)",
         "a recording is one sound recording, a track its appearance on a release; MusicBrainz has "
         f"~{_millions(KNOWN_TOTALS['recordings'])} recordings ({KNOWN_TOTALS_AS_OF}): 256 M is "
         f"{CLAIM_TRACKS / KNOWN_TOTALS['recordings']:.1f}x that"],
        ["C2", "~186 million unique ISRCs",
         f"{_n(stats['isrcs_unique'])} distinct ISRCs; {_n(stats['recording_isrc_pairs'])} recording-ISRC pairs; "
         f"{percent(stats['recordings_with_isrc'], recordings)} of recordings have at least one",
         "`count(DISTINCT isrc)` over `recording_isrc` of recordings not marked gone",
         "ISRCs in MusicBrainz are added by editors and many recordings have none; "
         f"{_n(stats['isrcs_on_multiple_recordings'])} ISRCs sit on several recordings"],
        ["C3", "86 million audio files (~300 TB), ~99.6% of listens",
         "not applicable", "nothing: the harvester never fetches audio",
         "mbharvest harvests metadata only (no audio, ever); listening data is not in MusicBrainz"],
        ["C4", "\"MusicBrainz has only about 5 million entries\"; the scrape \"37 times larger\"",
         f"nearest MusicBrainz number to 5 M: {nearest['number']} = {_n(nearest['value'])}; "
         f"186 M / that = {nearest['ratio']:.1f}x" if nearest["ratio"] else "no number near 5 M",
         "known MusicBrainz totals and this database's distinct ISRCs, nearest to 5 M on a log scale "
         "(all candidates in the table below)",
         "MusicBrainz has far more than 5 M entries (~37 M recordings); secondary sources suggest the 5 M was "
         "its distinct ISRCs; the claim's ratio fits 186 M divided by a number near 5 M"],
        ["C5", "over 70% of tracks have popularity 0; ~210,000 (0.1%) above 50",
         "not available", "nothing: popularity is not in MusicBrainz core data",
         "no proxy is invented (ratings are sparse, supplementary and licensed CC BY-NC-SA)"],
        ["C6", "track lengths cluster at 2, 3 and 4 minutes",
         f"peaks at {peaks} ({_n(stats['recordings_with_length'])} recordings with a known length)",
         "5-second histogram of `recording.length_ms`, 1-2-1 smoothed; local maxima with prominence "
         ">= 2% of the highest bin and >= 3x Poisson noise",
         f"{_n(stats['recordings_without_length'])} recordings have no known length; a small sample gives "
         "few or noisy peaks"],
        ["C7", "album releases grew exponentially since 2015; over 10 million albums dated 2023",
         f"releases dated 2023: {_n(releases_2023)} ({growth}); release groups of type Album first released "
         f"in 2023: {_n(_year_count(albums, 2023))}",
         "releases by the year of `release.date`, release groups by `first_release_date` and `primary_type`; "
         "partial dates count for their year",
         f"{_n(stats['releases_per_year'].get('unknown', 0))} releases have no date; all of MusicBrainz has "
         f"~{_millions(KNOWN_TOTALS['releases'])} releases of all years; editors add recent releases with a lag"],
        ["C8", "99% of 256 M tracks' metadata captured",
         f"{percent(recordings, KNOWN_TOTALS['recordings'])} of MusicBrainz's recordings "
         f"({_n(recordings)} of ~{_millions(KNOWN_TOTALS['recordings'])})",
         "local counts / known MusicBrainz totals (coverage table above)",
         f"{scope}: " + ("a harvest of a few seeds is a sample, not the catalogue" if sample
                         else "a full dump import is the whole catalogue as of its dump date")],
    ]


# -- the document --

def _format_args(args: Any, shown: int = 10) -> str:
    """A run's arguments as a reader wants them: the ledger keeps JSON
    ({"keys": [...]} for a harvest, options for an import or a refresh)."""
    try:
        value = json.loads(args) if isinstance(args, str) else args
    except ValueError:
        return str(args)
    if isinstance(value, dict) and set(value) == {"keys"}:
        value = value["keys"]
    if isinstance(value, list):
        more = f" and {len(value) - shown} more" if len(value) > shown else ""
        return " ".join(str(item) for item in value[:shown]) + more
    if isinstance(value, dict):
        return " ".join(f"{key}={item}" for key, item in value.items())
    return "" if value is None else str(value)


def _describe_runs(runs: list[dict[str, Any]]) -> list[str]:
    described = []
    for run in runs:
        args = _format_args(run["args"])
        ended = f"finished {run['finished_at']}" if run["finished_at"] else "with no end recorded"
        described.append(f"`mbharvest {run['command'] or '?'}{' ' + args if args else ''}` "
                         f"started {run['started_at'] or '?'}, {ended} ({run['status'] or 'unknown status'})")
    return described


def build_report(stats: dict[str, Any], plots: list[Plot], *, database: str, generated_at: str) -> Report:
    report = Report()
    origin = stats["origin"]
    report.add(("h1", "mbharvest catalogue report"),
               ("p", f"Database `{database}`, report generated {generated_at}. MusicBrainz core data is CC0. "
                     "Rows marked gone are left out of every figure."))
    report.add(("h2", "Coverage"))
    if origin["kind"] == "empty":
        report.add(("p", "The database is empty: nothing has been harvested or imported yet, so every figure "
                         "below is zero. Run `mbharvest harvest ...` or `mbharvest import-dump ...` first."))
    elif origin["kind"] == "dump import":
        dumps = ", ".join(f"`{source}`" for source in origin["sources"] if source.startswith("dump"))
        report.add(("p", "This database is a dump import (MusicBrainz JSON data dumps"
                         + (f": {dumps}" if dumps else "") + "): it holds the catalogue as of the dump, "
                         "for the entity types imported."))
    else:
        report.add(("p", "This database is a harvested sample: it holds what the seeds below lead to, not the "
                         "whole catalogue. Its figures describe the sample only."))
    if origin["runs"]:
        report.add(("p", "Runs recorded in the ledger (`harvest_run`):"), ("ul", _describe_runs(origin["runs"])))
    if origin["sources"]:
        report.add(("p", "Entity rows by `source`:"),
                   ("ul", [f"`{source}`: {_n(n)}" for source, n in origin["sources"].items()]))
    report.add(Table(["", "this database", f"MusicBrainz ({KNOWN_TOTALS_AS_OF})", "share"],
                     [[label, _n(stats[key]), _n(KNOWN_TOTALS[key]), percent(stats[key], KNOWN_TOTALS[key])]
                      for key, label in _KNOWN_LABELS.items()]
                     + [["labels", _n(stats["labels"]), "", ""], ["tracks", _n(stats["tracks"]), "", ""]]))

    report.add(("h2", "The published claims side by side (C1-C8)"),
               ("p", "The claims are quoted as published figures only; no scraped data is used."),
               Table(["#", "claim as published", "this database", "how measured", "caveat"], claim_rows(stats)))
    report.add(("h2", "C4: which MusicBrainz number is near 5 million"),
               Table(["number", "value", "186 M / value"],
                     [[row["number"], _n(row["value"]), f"{row['ratio']:,.1f}x" if row["ratio"] else "n/a"]
                      for row in nearest_to_five_million(stats)]))

    by_name = {plot.name: plot for plot in plots}
    report.add(("h2", "Recording lengths (C6)"), by_name["length_histogram.png"])
    if stats["length_peaks"]:
        report.add(Table(["peak", "bin", "recordings in bin", "prominence (smoothed)"],
                         [[p["centre"], f"{format_length(p['start_ms'])}-{format_length(p['end_ms'])}",
                           _n(p["count"]), f"{p['prominence']:,.1f}"] for p in stats["length_peaks"]]))
    else:
        report.add(("p", "No peak stands out of the noise in this database."))
    report.add(("p", f"{_n(stats['recordings_with_length'])} recordings have a known length, "
                     f"{_n(stats['recordings_without_length'])} do not; "
                     f"{_n(stats['length_over_dense_limit']['count'])} are 30 minutes or longer "
                     f"(the longest: {format_length(stats['longest_recording_ms'])})."))
    report.add(("h2", "Releases per year (C7)"), by_name["releases_per_year.png"])
    if stats["releases_per_year"]:  # every year, none cut
        report.add(Table(["year", "releases"], [[year, _n(n)] for year, n in stats["releases_per_year"].items()]))
    report.add(("h2", "Release groups per year by primary type (C7)"), by_name["release_groups_per_year_by_type.png"])
    report.add(("h2", "ISRC countries (C2)"), by_name["isrc_countries.png"])
    report.add(("h2", "ISRC year of reference (C2)"), by_name["isrc_reference_years.png"],
               ("p", "The two digits YY (ISRC characters 6-7) are the year the code was assigned: YY no later than "
                     "the current year's two digits is 20YY, a larger YY is 19YY (ISRCs date from 1986)."))
    report.add(("h2", "Links to streaming services"), *streaming_blocks(stats), by_name["streaming_links.png"])
    report.add(("h2", "Works"),
               ("p", f"{_n(stats['works'])} works, {_n(stats['work_iswcs_unique'])} distinct ISWCs; "
                     f"{_n(stats['recordings_with_work'])} recordings "
                     f"({percent(stats['recordings_with_work'], stats['recordings'])}) perform a work "
                     "(recording -> work relationships, view `recording_work`)."))
    report.add(("h2", "Definitions"), ("ul", [
        "recordings, releases, release groups, artists, labels: rows not marked gone (`gone_at IS NULL`)",
        "tracks: `track` rows whose release is not marked gone",
        "ISRC figures: `recording_isrc` pairs whose recording is not marked gone; countries and years over "
        "distinct ISRCs",
        "known length: `length_ms > 0` (NULL and 0 are unknown)",
        "year of a date: its first four digits, also for partial dates (`YYYY`, `YYYY-MM`); no date is 'unknown'",
        "streaming links: distinct artists, releases and recordings (not marked gone) with at least one URL "
        "relationship whose URL's host is on the service (harvester/streaming.py lists the hosts)",
        f"MusicBrainz totals ({KNOWN_TOTALS_AS_OF}): "
        + ", ".join(f"~{_millions(v)} {_KNOWN_LABELS[k]}" for k, v in KNOWN_TOTALS.items()),
    ]))
    return report


def streaming_blocks(stats: dict[str, Any]) -> list[Any]:
    """How much of the streaming catalogues MusicBrainz links to: its own URL
    relationships, counted per service, beside what the articles counted."""
    if not stats["open_data_tables"]:
        return [("p", "This database was made before relationships were kept (migration 0011): run "
                      "`mbharvest upgrade`, then harvest or import again to fill them.")]
    linked = linked_services(stats)
    spotify = stats["streaming_links"].get("Spotify", {}).get("recordings", 0)
    blocks: list[Any] = [("p", "MusicBrainz links its artists, releases and recordings to pages on other sites "
                               "(URL relationships, CC0). Counting those whose host is a streaming service says, "
                               "lawfully and without touching any service, how much of the streaming catalogues "
                               "MusicBrainz points to. The articles counted ~256 M tracks (C1) and ~186 M unique "
                               "ISRCs (C2) on Spotify; this database has "
                               f"{_n(spotify)} recordings linked to Spotify "
                               f"({percent(spotify, CLAIM_TRACKS)} of 256 M) and {_n(stats['isrcs_unique'])} "
                               f"distinct ISRCs ({percent(stats['isrcs_unique'], CLAIM_ISRCS)} of 186 M).")]
    if not linked:
        return blocks + [("p", "No artist, release or recording here links to a streaming service.")]
    rows = [[service, *(_n(counts[key]) for key, _ in STREAMING_ENTITIES)] for service, counts in linked]
    rows.append(["any of them", *(_n(stats["streaming_links_any"][key]) for key, _ in STREAMING_ENTITIES)])
    rows.append(["this database, all", *(_n(stats[key]) for key, _ in STREAMING_ENTITIES)])
    rows.append(["the articles (Spotify)", "", "", f"{_millions(CLAIM_TRACKS)} tracks; {_millions(CLAIM_ISRCS)} ISRCs"])
    return blocks + [Table(["service", *(key for key, _ in STREAMING_ENTITIES)], rows)]


# -- rendering --

def _md_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def render_markdown(report: Report) -> str:
    out: list[str] = []
    for block in report.blocks:
        if isinstance(block, Table):
            out.append("| " + " | ".join(_md_cell(h) for h in block.headers) + " |")
            out.append("|" + "---|" * len(block.headers))
            out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in block.rows]
        elif isinstance(block, Plot):
            out.append(f"![{block.title}]({block.name})")
        elif block[0] == "ul":
            out += [f"- {item}" for item in block[1]]
        else:
            prefix = {"h1": "# ", "h2": "## ", "p": ""}[block[0]]
            out.append(prefix + block[1])
        out.append("")
    return "\n".join(out)


def _inline_html(text: str) -> str:
    return re.sub(r"`([^`]*)`", r"<code>\1</code>", html.escape(text, quote=False))


_CSS = """body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;padding:0 1em;color:#222}
table{border-collapse:collapse;margin:1em 0}th,td{border:1px solid #ccc;padding:.35em .6em;vertical-align:top;
text-align:left}th{background:#f3f3f3}img{max-width:100%;height:auto}code{background:#f3f3f3;padding:0 .2em}"""


def render_html(report: Report) -> str:
    out = ["<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">',
           "<title>mbharvest catalogue report</title>", f"<style>{_CSS}</style></head><body>"]
    for block in report.blocks:
        if isinstance(block, Table):
            out.append("<table><thead><tr>" + "".join(f"<th>{_inline_html(h)}</th>" for h in block.headers)
                       + "</tr></thead><tbody>")
            out += ["<tr>" + "".join(f"<td>{_inline_html(c)}</td>" for c in row) + "</tr>" for row in block.rows]
            out.append("</tbody></table>")
        elif isinstance(block, Plot):
            data = base64.b64encode(block.png).decode("ascii")
            out.append(f'<figure><img alt="{html.escape(block.title)}" src="data:image/png;base64,{data}">'
                       f"<figcaption>{html.escape(block.title)}</figcaption></figure>")
        elif block[0] == "ul":
            out.append("<ul>" + "".join(f"<li>{_inline_html(item)}</li>" for item in block[1]) + "</ul>")
        else:
            out.append(f"<{block[0]}>{_inline_html(block[1])}</{block[0]}>")
    out.append("</body></html>")
    return "\n".join(out)


def _database_name(db: sqlite_utils.Database) -> str:
    path = db.conn.execute("PRAGMA database_list").fetchone()[2]
    return Path(path).name if path else ":memory:"


def write_report(db: sqlite_utils.Database, out_dir: str | Path, *,
                 progress: Callable[[str], None] | None = None) -> list[Path]:
    """Compute the figures, draw the plots and write report.md, report.html
    and the PNGs into out_dir; returns the paths written."""
    step = progress or (lambda _: None)
    out_dir = prepare_out_dir(out_dir)  # a file in the way or no permission: one line, exit 2
    step("computing statistics")
    stats = compute_stats(db)
    plots = []
    for name, title, draw in PLOTS:
        step(f"drawing {name}")
        plots.append(Plot(name, title, _png(draw(stats))))
    generated_at = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    report = build_report(stats, plots, database=_database_name(db), generated_at=generated_at)
    files = {**{plot.name: plot.png for plot in plots}, "report.md": render_markdown(report).encode(),
             "report.html": render_html(report).encode()}
    for name, content in files.items():
        try:
            (out_dir / name).write_bytes(content)
        except OSError as exc:  # disk full, a folder of that name in the way
            raise HarvesterError(f"{out_dir / name}: cannot write ({exc.strerror or exc})") from None
    return [out_dir / name for name in files]
