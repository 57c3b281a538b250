"""BagIt 1.0 packages (RFC 8493) for archives: the database (or its tables
as CSV), a data card, a data dictionary and SHA-256 manifests, so fixity,
licence and provenance travel with the data.

Provenance is complete: every run of the ledger with its arguments as
recorded (never cut), the dumps' URLs and SHA-256 where a run recorded them,
the mbharvest version; bag-info names the archive that made the bag
(Source-Organization, Contact-Name, Contact-Email from the config's
[archive] section) and credits MusicBrainz as the data's origin."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import bagit

from harvester import __version__
from harvester.errors import HarvesterError, UsageError
from harvester.export.csv import write_csv_table
from harvester.export.datapackage import export_tables
from harvester.export.dictionary import (
    ATTRIBUTION, CC0_LICENSE, CC0_URL, CORE_TABLES, DOCUMENT_TABLE, ENTITY_TABLES, SOURCE, SOURCE_URL,
    SUPPLEMENTARY_LICENSE, SUPPLEMENTARY_MARK, SUPPLEMENTARY_TABLES, SUPPLEMENTARY_URL, describe, licence_of,
)
from harvester.export.source import (
    ProgressCallback, Selection, cc0_document_json, count_rows, count_supplementary_documents, existing_tables,
    left_out_counts, logical_columns, open_source, prepare_out_dir, read_snapshot, table_columns,
)
from harvester.normalize import CC0

BAG_FORMATS = ("sqlite", "csv")
BAGIT_VERSION = "1.0"
DICTIONARY_FILES = ("data-dictionary.md", "data-dictionary.json")


@dataclass(frozen=True)
class Archive:
    """Who made the bag (bag-info's Source-Organization and Contact-*): the
    archive, never MusicBrainz, which is credited as the data's origin."""

    organization: str | None = None
    contact_name: str | None = None
    contact_email: str | None = None


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
    dumps: list[dict[str, str]]  # {url, sha256, entity} of each downloaded dump a run recorded
    dictionary: list[dict[str, Any]]  # every table and view of the payload with its columns
    archive: Archive = Archive()


def read_provenance(conn: sqlite3.Connection, *, row_counts: dict[str, int], selection: Selection,
                    left_out: dict[str, int], stripped_documents: int, payload_format: str,
                    payload_files: list[str], tables: list[str]) -> Provenance:
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
        payload_format=payload_format, payload_files=payload_files, dumps=dump_archives(runs),
        dictionary=data_dictionary(conn, tables),
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


def dump_archives(runs: list[dict[str, Any]]) -> list[dict[str, str]]:
    """Every downloaded dump a run's args (JSON) recorded, as {url, sha256,
    entity}: any object carrying `dump_url` (sync-dumps writes them), at any depth."""
    found: dict[str, dict[str, str]] = {}

    def walk(value: Any) -> None:
        if isinstance(value, dict):
            if value.get("dump_url"):
                url = str(value["dump_url"])
                found[url] = {"url": url, "sha256": str(value.get("sha256") or ""),
                              "entity": str(value.get("entity") or "")}
            for item in value.values():
                walk(item)
        elif isinstance(value, list):
            for item in value:
                walk(item)

    for run in runs:
        try:
            walk(json.loads(run.get("args") or "null"))
        except ValueError:
            continue
    return sorted(found.values(), key=lambda dump: dump["url"])


def data_dictionary(conn: sqlite3.Connection, tables: list[str]) -> list[dict[str, Any]]:
    """Every table and view named, with its description and licence, and each
    column with its type (the dictionary's and SQLite's declared) and description."""
    entries = []
    for table in tables:
        described = describe(table)
        known = described.columns if described else {}
        declared = dict(table_columns(conn, table))
        entries.append({
            "name": table, "kind": ("view" if described and described.view else "table"),
            "description": described.description if described else "(not described)",
            "licence": licence_of(table)[0] if not described or described.kind != "internal" else "internal",
            "columns": [{"name": name, "type": kind, "sqlite_type": declared[name] or "",
                         "description": known[name].description if name in known else "(not described)"}
                        for name, kind in logical_columns(conn, table)],
        })
    return entries


def data_dictionary_markdown(entries: list[dict[str, Any]]) -> str:
    lines = ["# Data dictionary", "",
             "Every table and view in this package, and every column with its type and meaning. Types: TEXT, "
             "INTEGER, REAL, BOOLEAN (0/1 in SQLite, true/false in CSV), TIMESTAMP (UTC, ISO 8601 such as "
             "2026-01-02T03:04:05Z), PARTIAL_DATE (YYYY, YYYY-MM or YYYY-MM-DD as MusicBrainz gives it), JSON "
             "(text holding a JSON document). `sqlite type` is the column's declared type in the database.", ""]
    for entry in entries:
        lines += [f"## {entry['name']} ({entry['kind']}; {entry['licence']})", "", entry["description"], "",
                  "| column | type | sqlite type | description |", "|---|---|---|---|"]
        lines += [f"| {column['name']} | {column['type']} | {column['sqlite_type']} | "
                  f"{_cell(column['description'])} |" for column in entry["columns"]]
        lines.append("")
    return "\n".join(lines)


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
    info: dict[str, str | list[str]] = {}
    if facts.archive.organization:
        info["Source-Organization"] = facts.archive.organization
    if facts.archive.contact_name:
        info["Contact-Name"] = facts.archive.contact_name
    if facts.archive.contact_email:
        info["Contact-Email"] = facts.archive.contact_email
    info.update({
        "External-Description": (f"MusicBrainz open metadata harvested into SQLite by mbharvest "
                                 f"({facts.payload_format} payload, {sum(facts.row_counts.values())} rows)."),
        "Data-Origin": f"{SOURCE}, {SOURCE_URL}",
        "Bag-Software-Agent": f"mbharvest {__version__} with bagit-python {bagit.VERSION}",
        "Export-Date": facts.exported_at,
        "License": licence_text(facts.supplementary),
        "Contains-Supplementary-Data": "yes (CC BY-NC-SA 3.0, NonCommercial)" if facts.supplementary else "no",
        "Attribution": ATTRIBUTION,
        "Payload-Format": facts.payload_format,
        "Row-Count": [f"{table} {n}" for table, n in facts.row_counts.items()],
    })
    if facts.sources:
        info["Data-Source"] = [f"{source} ({n} entity rows)" for source, n in facts.sources.items()]
    if facts.runs:
        info["Harvest-Run-Ids"] = id_ranges([run["id"] for run in facts.runs])
    if facts.dump_timestamps:
        info["Dump-Timestamp"] = facts.dump_timestamps
    if facts.dumps:
        info["Dump-URL"] = [f"{dump['url']} sha256:{dump['sha256'] or 'not recorded'}" for dump in facts.dumps]
    return info


def data_card(facts: Provenance) -> str:
    """The README that travels in the bag's payload: what, when, from where
    (every run with its full arguments, the dumps with their checksums), how
    much, under which licence, who to contact, how to cite and how to verify."""
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
        "one row per entity. No audio. Every table and column is described in `data-dictionary.md` "
        "(and `data-dictionary.json`) beside this file.",
        "",
    ]
    archive = facts.archive
    if archive.organization or archive.contact_name or archive.contact_email:
        who = ", ".join(filter(None, (archive.organization, archive.contact_name, archive.contact_email)))
        lines += ["## Who made this package", "", f"{who}.", ""]
    lines += ["## Licence", "", licence_text(facts.supplementary), ""]
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
        "The data comes from MusicBrainz. " + ATTRIBUTION
        + " MusicBrainz asks for attribution even where the licence (CC0) does not require it.",
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
    if facts.dumps:
        lines += ["Data dumps downloaded (URL and the SHA-256 checked against the dump's SHA256SUMS):", ""]
        lines += [f"- {dump['url']}" + (f" ({dump['entity']})" if dump["entity"] else "")
                  + f"  \n  sha256 `{dump['sha256'] or 'not recorded'}`" for dump in facts.dumps]
        lines.append("")
    if facts.sources:
        lines += ["| source | entity rows |", "|---|---:|"]
        lines += [f"| {_cell(source)} | {n} |" for source, n in facts.sources.items()]
        lines.append("")
    if facts.runs:
        lines += [f"Runs in the ledger ({len(facts.runs)}; ids {id_ranges([run['id'] for run in facts.runs])}), "
                  "each with its arguments exactly as recorded:", ""]
        for run in facts.runs:
            lines += [f"- run {run['id']}: `mbharvest {run.get('command') or '?'}`, started "
                      f"{run.get('started_at') or '?'}, finished {run.get('finished_at') or 'not finished'}, "
                      f"{run.get('status') or 'unknown status'}" + (f" ({run['error']})" if run.get("error") else ""),
                      "", "  ```json", f"  {run.get('args') or ''}", "  ```", ""]
    else:
        lines += ["No harvest runs are recorded.", ""]
    lines += ["## Rows per table", "", "| table | rows | what |", "|---|---:|---|"]
    lines += [f"| {table} | {n} | {_cell(describe(table).description if describe(table) else '')} |"
              for table, n in facts.row_counts.items()]
    lines += [
        "",
        "## Verify",
        "",
        f"This folder is a BagIt {BAGIT_VERSION} bag (RFC 8493) with SHA-256 manifests. Check that no byte "
        "changed:",
        "",
        "    python -m bagit --validate BAG_FOLDER",
        "",
        "Open the database read-only (`sqlite3 -readonly`, `datasette -i`, or a `file:...?mode=ro` URI): a "
        "program that writes to it (or switches it to WAL) changes its bytes and the bag no longer validates.",
        "",
    ]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    text = "" if value is None else str(value)
    return text.replace("|", "\\|").replace("\n", " ")


@dataclass
class BagResult:
    out: Path
    payload_format: str
    row_counts: dict[str, int]
    left_out: dict[str, int]
    stripped_documents: int
    supplementary: bool


def export_bagit(db_path: str | Path, out: str | Path, *, payload_format: str = "sqlite",
                 selection: Selection = Selection(), on_progress: ProgressCallback | None = None,
                 archive: Archive = Archive()) -> BagResult:
    """A BagIt 1.0 bag holding a consistent copy of the database (or its
    tables as CSV), a data card, a data dictionary, and SHA-256 manifests.

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
        facts = replace(facts, archive=archive)
        (staging / "README.md").write_text(data_card(facts), encoding="utf-8")
        (staging / DICTIONARY_FILES[0]).write_text(data_dictionary_markdown(facts.dictionary), encoding="utf-8")
        (staging / DICTIONARY_FILES[1]).write_text(json.dumps(facts.dictionary, indent=2, ensure_ascii=False) + "\n",
                                                   encoding="utf-8")
        bagit.make_bag(str(staging), bag_info=bag_info(facts), checksums=["sha256"])
        _declare_version(staging)
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


def _declare_version(bag_dir: Path) -> None:
    """bagit-python writes BagIt-Version 0.97; the bag is 1.0 (RFC 8493), so
    say so and let bagit-python recompute the tag manifest over the new file."""
    (bag_dir / "bagit.txt").write_text(f"BagIt-Version: {BAGIT_VERSION}\nTag-File-Character-Encoding: UTF-8\n",
                                       encoding="utf-8")
    bagit.Bag(str(bag_dir)).save()


def _csv_payload(conn: sqlite3.Connection, staging: Path, selection: Selection,
                 on_progress: ProgressCallback | None) -> Provenance:
    result = export_tables(conn, staging, selection, "csv", write_csv_table, on_progress)
    return read_provenance(conn, row_counts=result.row_counts, selection=selection, left_out=result.left_out,
                           stripped_documents=result.stripped_documents, payload_format="csv",
                           payload_files=[path.name for path in result.files], tables=list(result.row_counts))


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
        tables = [row[0] for row in copy.execute(
            "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') ORDER BY type, name")]
        return read_provenance(copy, row_counts=row_counts, selection=selection, left_out=left_out,
                               stripped_documents=stripped, payload_format="sqlite", payload_files=[name],
                               tables=tables)
    finally:
        copy.close()
