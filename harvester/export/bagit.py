"""BagIt packages for archives: the database (or its tables as CSV), a data
card, and SHA-256 manifests, so fixity, licence and provenance travel with
the data."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bagit

from harvester import __version__
from harvester.errors import HarvesterError, UsageError
from harvester.export.csv import write_csv_table
from harvester.export.dictionary import (
    ATTRIBUTION, CC0_LICENSE, CC0_URL, CORE_TABLES, DOCUMENT_TABLE, ENTITY_TABLES, SOURCE, SOURCE_URL,
    SUPPLEMENTARY_LICENSE, SUPPLEMENTARY_MARK, SUPPLEMENTARY_TABLES, SUPPLEMENTARY_URL, TABLE_DESCRIPTIONS,
)
from harvester.export.source import (
    ProgressCallback, Selection, export_tables, left_out_counts, cc0_document_json, count_rows,
    count_supplementary_documents, existing_tables, open_source, prepare_out_dir, read_snapshot,
)
from harvester.normalize import CC0

BAG_FORMATS = ("sqlite", "csv")
_RUNS_LISTED = 50


@dataclass
class Provenance:
    """What the data card and bag-info say about where the data came from."""

    exported_at: str
    row_counts: dict[str, int]
    sources: dict[str, int]  # source column value -> entity rows
    runs: list[dict[str, Any]]
    dump_timestamps: list[str]
    supplementary: bool
    left_out: dict[str, int]
    stripped_documents: int
    payload_format: str
    payload_files: list[str]


def read_provenance(conn: sqlite3.Connection, *, row_counts: dict[str, int], selection: Selection,
                    left_out: dict[str, int], stripped_documents: int, payload_format: str,
                    payload_files: list[str]) -> Provenance:
    existing = existing_tables(conn)
    sources: dict[str, int] = {}
    for table in ENTITY_TABLES:
        if table in existing:
            for source, n in conn.execute(f"SELECT coalesce(source, '(unknown)'), count(*) FROM [{table}] "
                                          "GROUP BY 1 ORDER BY 1"):
                sources[source] = sources.get(source, 0) + n
    conn.row_factory = sqlite3.Row
    try:
        runs = [dict(row) for row in conn.execute("SELECT * FROM harvest_run ORDER BY id")]
    finally:
        conn.row_factory = None
    return Provenance(
        exported_at=datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"),
        row_counts=row_counts, sources=sources, runs=runs, dump_timestamps=dump_timestamps(runs),
        supplementary=selection.supplementary, left_out=left_out, stripped_documents=stripped_documents,
        payload_format=payload_format, payload_files=payload_files,
    )


def dump_timestamps(runs: list[dict[str, Any]]) -> list[str]:
    """Timestamps of imported data dumps, from runs whose args (a JSON object)
    carry `dump_timestamp` (the dump's TIMESTAMP file)."""
    found = []
    for run in runs:
        try:
            args = json.loads(run.get("args") or "")
        except ValueError:
            continue
        if isinstance(args, dict) and args.get("dump_timestamp"):
            found.append(str(args["dump_timestamp"]))
    return sorted(set(found))


def id_ranges(ids: list[int]) -> str:
    """1,2,3,5,7,8 -> '1-3, 5, 7-8': run ids stay short however many runs there were."""
    parts: list[str] = []
    for value in sorted(set(ids)):
        if parts and parts[-1][1] == value - 1:
            parts[-1] = (parts[-1][0], value)
        else:
            parts.append((value, value))
    return ", ".join(str(a) if a == b else f"{a}-{b}" for a, b in parts)


def licence_text(supplementary: bool) -> str:
    if supplementary:
        return (f"Core data {CC0_LICENSE} ({CC0_URL}); supplementary data (tables tag, rating, annotation and "
                f"the fields of document rows marked CC-BY-NC-SA) {SUPPLEMENTARY_LICENSE} ({SUPPLEMENTARY_URL}): "
                "attribution required, NonCommercial use only, ShareAlike.")
    return f"{CC0_LICENSE} ({CC0_URL}): core MusicBrainz data only, no supplementary (CC BY-NC-SA) data."


def bag_info(facts: Provenance) -> dict[str, str | list[str]]:
    info: dict[str, str | list[str]] = {
        "Source-Organization": SOURCE,
        "External-Description": (f"MusicBrainz open metadata harvested into SQLite by mbharvest "
                                 f"({facts.payload_format} payload, {sum(facts.row_counts.values())} rows)."),
        "Bag-Software-Agent": f"mbharvest {__version__} with bagit-python",
        "Export-Date": facts.exported_at,
        "License": licence_text(facts.supplementary),
        "Contains-Supplementary-Data": "yes (CC BY-NC-SA 3.0, NonCommercial)" if facts.supplementary else "no",
        "Attribution": ATTRIBUTION,
        "Payload-Format": facts.payload_format,
        "Row-Count": [f"{table} {n}" for table, n in facts.row_counts.items()],
    }
    if facts.sources:
        info["Data-Source"] = [f"{source} ({n} entity rows)" for source, n in facts.sources.items()]
    if facts.runs:
        info["Harvest-Run-Ids"] = id_ranges([run["id"] for run in facts.runs])
    if facts.dump_timestamps:
        info["Dump-Timestamp"] = facts.dump_timestamps
    return info


def data_card(facts: Provenance) -> str:
    """The README that travels in the bag's payload: what, when, from where,
    how much, under which licence, how to cite and how to verify."""
    total = sum(facts.row_counts.values())
    lines = [
        "# MusicBrainz open metadata: data card",
        "",
        f"Exported {facts.exported_at} by mbharvest {__version__} as {facts.payload_format} "
        f"({', '.join(facts.payload_files)}); {total} rows in {len(facts.row_counts)} tables.",
        "",
        "## What",
        "",
        "Metadata of artists, labels, release groups, releases, media, tracks, recordings and their ISRCs, "
        "harvested from MusicBrainz (the WS/2 web service or its JSON data dumps) and normalized into "
        "one row per entity. No audio.",
        "",
        "## Licence",
        "",
        licence_text(facts.supplementary),
        "",
    ]
    if facts.supplementary:
        lines += ["**This package contains supplementary data under CC BY-NC-SA 3.0: it may not be used "
                  "commercially.** Remove tables tag, rating and annotation (and the document rows whose "
                  "licence names CC-BY-NC-SA) to keep CC0 data only.", ""]
    else:
        lines += ["Supplementary data (tags, genres, ratings, annotations; CC BY-NC-SA 3.0) is not included."]
        if facts.left_out:
            lines.append("Left out of this package: "
                         + ", ".join(f"{table} ({n} rows)" for table, n in facts.left_out.items()) + ".")
        if facts.stripped_documents:
            lines.append(f"{facts.stripped_documents} raw documents were included with their supplementary "
                         "fields removed.")
        lines.append("")
    lines += [
        "## Attribution and citation",
        "",
        ATTRIBUTION + " MusicBrainz asks for attribution even where the licence (CC0) does not require it.",
        "",
        "Cite as:",
        "",
        f"> MusicBrainz contributors. *MusicBrainz database* (subset), MetaBrainz Foundation, "
        f"{SOURCE_URL}. Harvested with mbharvest {__version__}; exported {facts.exported_at[:10]}"
        + (f"; data dump of {', '.join(facts.dump_timestamps)}" if facts.dump_timestamps else "") + ".",
        "",
        "## Where it came from",
        "",
    ]
    if facts.dump_timestamps:
        lines += [f"Data dump timestamp(s): {', '.join(facts.dump_timestamps)}.", ""]
    if facts.sources:
        lines += ["| source | entity rows |", "|---|---:|"]
        lines += [f"| {_cell(source)} | {n} |" for source, n in facts.sources.items()]
        lines.append("")
    if facts.runs:
        lines += [f"Harvest runs ({len(facts.runs)}; ids {id_ranges([run['id'] for run in facts.runs])}):", "",
                  "| id | command | args | started | finished | status |", "|---:|---|---|---|---|---|"]
        for run in facts.runs[-_RUNS_LISTED:]:
            lines.append(f"| {run['id']} | {_cell(run.get('command'))} | {_cell(run.get('args'))} | "
                         f"{_cell(run.get('started_at'))} | {_cell(run.get('finished_at'))} | "
                         f"{_cell(run.get('status'))} |")
        if len(facts.runs) > _RUNS_LISTED:
            lines.append(f"\n(the last {_RUNS_LISTED} runs are listed; all are in the harvest_run table)")
        lines.append("")
    else:
        lines += ["No harvest runs are recorded.", ""]
    lines += ["## Rows per table", "", "| table | rows | what |", "|---|---:|---|"]
    lines += [f"| {table} | {n} | {TABLE_DESCRIPTIONS.get(table, '')} |" for table, n in facts.row_counts.items()]
    lines += [
        "",
        "Column descriptions: `mbharvest export datasette-metadata` writes them as Datasette metadata; the "
        "mbharvest README lists the schema.",
        "",
        "## Verify",
        "",
        "This folder is a BagIt bag (RFC 8493) with SHA-256 manifests. Check that no byte changed:",
        "",
        "    python -m bagit --validate BAG_FOLDER",
        "",
    ]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")[:200]


@dataclass
class BagResult:
    out: Path
    payload_format: str
    row_counts: dict[str, int]
    left_out: dict[str, int]
    stripped_documents: int
    supplementary: bool


def export_bagit(db_path: str | Path, out: str | Path, *, payload_format: str = "sqlite",
                 selection: Selection = Selection(), on_progress: ProgressCallback | None = None) -> BagResult:
    """A BagIt bag holding a consistent copy of the database (or its tables as
    CSV), a data card, and SHA-256 manifests.

    Built in a hidden sibling folder and renamed into place at the end, so a
    bag at `out` is always complete."""
    if payload_format not in BAG_FORMATS:
        raise UsageError(f"unknown bag format {payload_format!r} (known: {', '.join(BAG_FORMATS)})")
    target = Path(out)
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise UsageError(f"{target}: exists and is not an empty folder; a bag needs a new folder")
    source = open_source(db_path)
    staging = target.parent / f".{target.name}.partial-{os.getpid()}"
    try:
        prepare_out_dir(target.parent)
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        if payload_format == "sqlite":
            facts = _sqlite_payload(source, Path(db_path).name, staging, selection)
        else:
            with read_snapshot(source):
                facts = _csv_payload(source, staging, selection, on_progress)
        (staging / "README.md").write_text(data_card(facts), encoding="utf-8")
        bagit.make_bag(str(staging), bag_info=bag_info(facts), checksums=["sha256"])
        if target.exists():
            target.rmdir()
        os.replace(staging, target)
    except OSError as exc:
        raise HarvesterError(f"{target}: cannot write the bag ({exc.strerror or exc})") from None
    except (bagit.BagError, sqlite3.DatabaseError) as exc:
        raise HarvesterError(f"{target}: cannot make the bag ({exc})") from None
    finally:
        source.close()
        shutil.rmtree(staging, ignore_errors=True)
    return BagResult(out=target, payload_format=payload_format, row_counts=facts.row_counts,
                     left_out=facts.left_out, stripped_documents=facts.stripped_documents,
                     supplementary=selection.supplementary)


def _csv_payload(conn: sqlite3.Connection, staging: Path, selection: Selection,
                 on_progress: ProgressCallback | None) -> Provenance:
    result = export_tables(conn, staging, selection, "csv", write_csv_table, on_progress)
    return read_provenance(conn, row_counts=result.row_counts, selection=selection, left_out=result.left_out,
                           stripped_documents=result.stripped_documents, payload_format="csv",
                           payload_files=[path.name for path in result.files])


def _sqlite_payload(source: sqlite3.Connection, name: str, staging: Path, selection: Selection) -> Provenance:
    """Copy the database through SQLite's online backup (a consistent
    snapshot even during a harvest), make the copy a self-contained
    rollback-journal file, and without the opt-in remove supplementary data
    from it (VACUUM so no deleted page keeps it)."""
    path = staging / name
    copy = sqlite3.connect(path, isolation_level=None)
    try:
        source.backup(copy)
        copy.execute("PRAGMA journal_mode = DELETE")
        existing = existing_tables(copy)
        left_out = left_out_counts(copy, existing, selection)
        stripped = 0 if selection.supplementary else count_supplementary_documents(copy)
        if not selection.supplementary:
            copy.execute("BEGIN")
            for table in SUPPLEMENTARY_TABLES:
                if table in existing:
                    copy.execute(f"DELETE FROM [{table}]")
            if stripped:
                copy.create_function("cc0_document_json", 1, cc0_document_json, deterministic=True)
                copy.execute("UPDATE document SET json = cc0_document_json(json), licence = ? "
                             "WHERE instr(licence, ?) > 0", (CC0, SUPPLEMENTARY_MARK))
            copy.execute("COMMIT")
            copy.execute("VACUUM")
        known = [*CORE_TABLES, DOCUMENT_TABLE, *(SUPPLEMENTARY_TABLES if selection.supplementary else ())]
        row_counts = {table: count_rows(copy, table) for table in known if table in existing}
        return read_provenance(copy, row_counts=row_counts, selection=selection, left_out=left_out,
                               stripped_documents=stripped, payload_format="sqlite", payload_files=[name])
    finally:
        copy.close()
