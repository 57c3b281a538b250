"""Harvest plans and their resumable execution.

A command becomes plans (one per key), each a list of steps (lookups,
browses, searches, ISRC lookups) that fetch every entity once: browses use
limit=100 and the richest includes the server allows, and advance by the
number of items actually returned (release pages with recordings are cut at
500 tracks). Every page commits together with its bookmark, data first.

A command's keys are kept on record (`harvest_plan`) until every one is
done, including keys an interrupted run never reached: refresh finishes
them first, and rerunning the command continues. When a run completes,
the bookmarks of its plans (and of every command whose keys are now all
done) are deleted in the same transaction, unless a command still pending
needs them; so rerunning a killed or budget-stopped command continues
where it stopped, and rerunning a finished one harvests afresh.

A browse is complete when the distinct items it collected reach the page's
``<entity>-count``. The service's browse order is not stable while the
catalogue changes, so an item can shift across a page boundary between two
page requests (one seen twice, another never). A browse that comes up short
re-reads pages, at most ``MAX_REREADS`` extra requests: first the page
before each page that repeated items (where the missing ones moved to),
then pages from the start. The ledger counts those requests (``rereads``)
and notes a browse still short after them. A lookup answered with another
MBID (the client followed a 301, or an old server's 200) records old -> new.
"""

from __future__ import annotations

import codecs
import contextlib
import math
import re
import sqlite3
import time
from dataclasses import dataclass, field
from typing import Any, BinaryIO, Callable, Iterable, Sequence

import sqlite_utils

from harvester import ledger
from harvester.client import WS2Client
from harvester.errors import BadRequest, DatabaseError, HarvesterError, NotFound, UsageError, as_interrupted
from harvester.normalize import (
    MBID_PATTERN,
    TABLE_OF,
    normalize_entity,
    normalize_isrc,
    normalize_isrc_lookup,
    normalize_page,
    page_items,
    redirect_row,
    relation_types_of,
)
from harvester.store import (
    classify_documents, describe_sqlite_error, open_db, save, save_redirect, upsert_rows, utc_now,
)

PAGE_LIMIT = 100
MAX_REREADS = 3  # extra page requests a browse may spend re-reading when it comes up short of its count
WAL_CHECKPOINT_PAGES = 10_000

# The richest includes each request accepts that bring only core (CC0) data
# and cost no extra request (the service's and musicbrainzngs' vocabularies:
# browses accept relationship includes, not aliases). Relationships: links
# to other sites (url-rels), the works recordings perform (work-rels; on a
# release lookup, of its recordings: recording-level-rels), areas, members
# and labels. Left out: an artist's or label's relationships to recordings,
# releases and works (thousands for a prolific one, and carried from the
# other side: performances come with the recordings' work-rels).
RELEASE_INCLUDES = ("artist-credits", "labels", "recordings", "release-groups", "media", "isrcs", "url-rels")
RELEASE_LOOKUP_INCLUDES = RELEASE_INCLUDES + ("aliases", "recording-level-rels", "work-rels")
RECORDING_INCLUDES = ("artist-credits", "isrcs", "url-rels", "work-rels")
RECORDING_LOOKUP_INCLUDES = RECORDING_INCLUDES + ("aliases",)
RELEASE_GROUP_INCLUDES = ("artist-credits", "url-rels")
RELEASE_GROUP_LOOKUP_INCLUDES = RELEASE_GROUP_INCLUDES + ("aliases",)
ARTIST_INCLUDES = ("aliases", "area-rels", "artist-rels", "label-rels", "url-rels")
LABEL_INCLUDES = ("aliases", "area-rels", "label-rels", "url-rels")
ISRC_INCLUDES = ("artists", "isrcs")
SEARCH_ENTITIES = ("artist", "label", "release-group", "release", "recording")
TARGETS = ("artist", "label", "release-group", "release", "recording", "isrc", "search")


@dataclass(frozen=True)
class Step:
    kind: str  # lookup | browse | search | isrc
    entity: str
    key: str  # an MBID, an ISRC or a search query
    linked: str | None = None  # browse: the entity type `key` is
    includes: tuple[str, ...] = ()
    max_results: int | None = None

    @property
    def name(self) -> str:
        return "|".join([self.kind, self.entity, self.linked or "", "+".join(self.includes), self.key])


@dataclass(frozen=True)
class Plan:
    key: str  # "artist:<mbid>", "isrc:<code>", "search:<entity>:<max>:<query>"
    target: str
    seed: str
    steps: tuple[Step, ...]


def plan_for(target: str, seed: str, *, max_results: int | None = None, search_entity: str | None = None) -> Plan:
    """The steps a perfect client needs for one key. Pure."""
    if target == "artist":
        steps = [Step("lookup", "artist", seed, includes=ARTIST_INCLUDES),
                 Step("browse", "release-group", seed, "artist", RELEASE_GROUP_INCLUDES),
                 Step("browse", "release", seed, "artist", RELEASE_INCLUDES),
                 Step("browse", "recording", seed, "artist", RECORDING_INCLUDES)]
    elif target == "label":
        steps = [Step("lookup", "label", seed, includes=LABEL_INCLUDES),
                 Step("browse", "release", seed, "label", RELEASE_INCLUDES)]
    elif target == "release-group":
        steps = [Step("lookup", "release-group", seed, includes=RELEASE_GROUP_LOOKUP_INCLUDES),
                 Step("browse", "release", seed, "release-group", RELEASE_INCLUDES)]
    elif target == "release":
        steps = [Step("lookup", "release", seed, includes=RELEASE_LOOKUP_INCLUDES)]
    elif target == "recording":
        steps = [Step("lookup", "recording", seed, includes=RECORDING_LOOKUP_INCLUDES)]
    elif target == "isrc":
        steps = [Step("isrc", "recording", seed, includes=ISRC_INCLUDES)]
    elif target == "search":
        if search_entity not in SEARCH_ENTITIES:
            raise UsageError(f"cannot search {search_entity!r}: choose one of {', '.join(SEARCH_ENTITIES)}")
        steps = [Step("search", search_entity, seed, max_results=max_results)]
        return Plan(f"search:{search_entity}:{max_results or ''}:{seed}", target, seed, tuple(steps))
    else:
        raise UsageError(f"unknown harvest target {target!r} (known: {', '.join(TARGETS)})")
    return Plan(f"{target}:{seed}", target, seed, tuple(steps))


# One lookup that refreshes every column of an entity (refresh of stale rows).
LOOKUP_INCLUDES = {"artist": ARTIST_INCLUDES, "label": LABEL_INCLUDES, "release-group": RELEASE_GROUP_LOOKUP_INCLUDES,
                   "release": RELEASE_LOOKUP_INCLUDES, "recording": RECORDING_LOOKUP_INCLUDES}


def lookup_plan(entity: str, mbid: str) -> Plan:
    return Plan(f"lookup:{entity}:{mbid}", "lookup", mbid,
                (Step("lookup", entity, mbid, includes=LOOKUP_INCLUDES[entity]),))


def plan_from_key(plan_key: str) -> Plan:
    """Rebuild a plan from its key (for finishing bookmarks left by another command)."""
    target, _, rest = plan_key.partition(":")
    if target == "lookup":
        entity, _, mbid = rest.partition(":")
        return lookup_plan(entity, mbid)
    if target == "search":
        entity, _, rest = rest.partition(":")
        max_results, _, query = rest.partition(":")
        return plan_for("search", query, max_results=int(max_results) if max_results else None,
                        search_entity=entity)
    return plan_for(target, rest)


@dataclass(frozen=True)
class RawKey:
    """A key as given, and where it came from for messages ("isrcs.txt line 4";
    empty for a command-line argument)."""

    text: str
    origin: str = ""


# A pasted MusicBrainz page address: https://musicbrainz.org/<entity>/<key>[/...][?...]
# (any host: mirrors and beta.musicbrainz.org have the same paths).
_PAGE_URL = re.compile(r"^https?://[^/\s]+/(?P<entity>[a-z-]+)/(?P<key>[^/?#\s]+)", re.IGNORECASE)


def _from_page_url(target: str, text: str) -> tuple[str, str | None]:
    """The key inside a pasted page address, or a problem when the address is
    another entity's; other text is returned as it is."""
    match = _PAGE_URL.match(text)
    if not match or target == "search":
        return text, None
    entity = match["entity"].lower()
    if entity != target:
        hint = f"; use the `{entity}` command" if entity in TARGETS else ""
        return text, f"{text!r} is the address of a MusicBrainz {entity} page, not of {_a(target)}{hint}"
    return match["key"], None


def _a(target: str) -> str:
    return ("an " if target[0] in "aeiou" else "a ") + ("ISRC" if target == "isrc" else target)


def check_keys(target: str, raw_keys: Iterable[str | RawKey]) -> tuple[list[str], list[str]]:
    """Split keys into valid (canonical form) and problems (one line each,
    naming the file and line a key came from). A pasted MusicBrainz page
    address of the right kind (https://musicbrainz.org/artist/<mbid>) is
    understood as its key."""
    valid: dict[str, None] = {}  # in order, once each
    problems = []
    for raw in raw_keys:
        raw = raw if isinstance(raw, RawKey) else RawKey(raw)
        where = f"{raw.origin}: " if raw.origin else ""
        text, problem = _from_page_url(target, raw.text.strip())
        shown = text if len(text) <= 60 else text[:57] + "..."
        if problem:
            problems.append(where + problem)
        elif target == "isrc":
            code = normalize_isrc(text)
            if code is None:
                problems.append(f"{where}invalid ISRC {shown!r}: expected CC-XXX-YY-NNNNN "
                                "(2 letters, 3 letters or digits, 7 digits)")
            else:
                valid[code] = None
        elif target == "search":
            if text:
                valid[text] = None
            else:
                problems.append(f"{where}empty search query")
        else:
            mbid = text.lower()
            if MBID_PATTERN.match(mbid):
                valid[mbid] = None
            else:
                problems.append(f"{where}invalid MBID {shown!r}: expected a UUID like "
                                "5b11f4ce-a62d-471e-81fc-a69a8278c7da")
    return list(valid), problems


def read_key_file(fh: BinaryIO, name: str) -> tuple[list[RawKey], list[str]]:
    """Keys from a file opened in binary mode, one per line, each with its
    line number; blank lines and # comments skipped. Decoded line by line
    as UTF-8, a byte-order mark at the start dropped, so a line in another
    encoding is a problem naming its line, not a traceback. Binary data (a
    NUL byte near the start, as git and grep judge) is one problem: it is
    not a list of keys."""
    data = fh.read()
    if b"\0" in data[:BINARY_SNIFF]:
        return [], [f"{name}: binary data, not a text file of keys"]
    keys, problems = [], []
    for number, raw in enumerate(data.removeprefix(codecs.BOM_UTF8).splitlines(), start=1):
        where = f"{name} line {number}"
        try:
            line = raw.decode("utf-8")
        except UnicodeDecodeError:
            problems.append(f"{where}: not UTF-8 text ({raw.rstrip()[:40]!r}); save the file as UTF-8")
            continue
        text = line.split("#", 1)[0].strip()
        if text:
            keys.append(RawKey(text, where))
    return keys, problems


BINARY_SNIFF = 8192


class BudgetReached(Exception):
    """Stop between pages: --max-requests or --max-runtime is used up."""


@dataclass
class Outcome:
    """What a run did, for the ledger, the summary and the exit code."""

    status: str = ledger.COMPLETE
    requests: int = 0
    entities_written: int = 0
    new: int = 0
    updated: int = 0
    unchanged: int = 0
    pages: int = 0
    done_keys: list[str] = field(default_factory=list)
    gone_keys: list[str] = field(default_factory=list)
    failed_keys: list[str] = field(default_factory=list)
    invalid_isrcs: int = 0
    rereads: int = 0
    notes: list[str] = field(default_factory=list)
    stop_reason: str | None = None
    run_id: int | None = None


@dataclass(frozen=True)
class ProgressEvent:
    """Where a run stands. Pages are known only for the steps begun, so while
    keys remain unbegun (keys_started < keys_total, or keys_total is None
    for a refresh, whose keys come as it goes) more pages are to come."""

    pages_done: int
    pages_known: int
    entities_written: int
    requests: int
    elapsed: float
    keys_done: int = 0
    keys_started: int = 0
    keys_total: int | None = 0


class Harvester:
    """Runs plans against a WS/2 client into a database, one page per transaction."""

    def __init__(self, db: sqlite_utils.Database, client: Any, *, source: str, supplementary: bool = False,
                 max_requests: int | None = None, max_runtime: float | None = None,
                 clock: Callable[[], float] = time.monotonic, now: Callable[[], str] = utc_now,
                 on_progress: Callable[[ProgressEvent], None] | None = None):
        self.db = db
        self.client = client
        self.source = source
        self.supplementary = supplementary
        self.max_requests = max_requests
        self.max_runtime = max_runtime
        self.clock = clock
        self.now = now
        self.on_progress = on_progress
        self.started = clock()
        self.requests_at_start = client.requests_made
        self.outcome = Outcome()
        self.pages_left: dict[str, int] = {}
        self.plan_keys: dict[str, None] = {}  # the plans this run took up, in order (a set: keys can be 100,000s)
        self.keys_done = 0
        self.keys_total: int | None = None

    # -- budgets and progress --

    def _requests(self) -> int:
        return self.client.requests_made - self.requests_at_start

    def _check_budget(self) -> None:
        if self.max_requests is not None and self._requests() >= self.max_requests:
            raise BudgetReached(f"--max-requests {self.max_requests} reached")
        if self.max_runtime is not None and self.clock() - self.started >= self.max_runtime:
            raise BudgetReached(f"--max-runtime {self.max_runtime:g} s reached")

    def _progress(self) -> None:
        if self.on_progress is not None:
            self.on_progress(ProgressEvent(
                pages_done=self.outcome.pages,
                pages_known=self.outcome.pages + sum(self.pages_left.values()),
                entities_written=self.outcome.entities_written, requests=self._requests(),
                elapsed=self.clock() - self.started, keys_done=self.keys_done, keys_started=len(self.plan_keys),
                keys_total=self.keys_total))

    # -- bookmarks --

    def _bookmarks(self, plan: Plan) -> dict[str, dict[str, Any]]:
        rows = self.db.query("SELECT * FROM harvest_bookmark WHERE plan = ?", [plan.key])
        return {row["step"]: row for row in rows}

    def _bookmark(self, plan: Plan, step: Step, run_id: int, **state: Any) -> None:
        upsert_rows(self.db, "harvest_bookmark",
                    [{"plan": plan.key, "step": step.name, "run_id": run_id, "updated_at": self.now(), **state}])

    # -- running --

    def record_plans(self, plans: Sequence[Plan], run_id: int) -> None:
        """Keep a command's keys on record until each is done (see the module's docstring)."""
        with self.db.atomic():
            self.db.conn.executemany("INSERT OR IGNORE INTO harvest_plan (run_id, plan, position, done) "
                                     "VALUES (?, ?, ?, 0)", [(run_id, plan.key, n) for n, plan in enumerate(plans)])

    def run(self, plans: Iterable[Plan], run_id: int) -> Outcome:
        """Run every plan (a lazy iterable is fine); returns the outcome, also on a budget stop."""
        self.keys_total = len(plans) if isinstance(plans, Sequence) else None
        try:
            for plan in plans:
                if plan.key in self.plan_keys:
                    continue
                self.plan_keys[plan.key] = None
                self._run_plan(plan, run_id)
        except BudgetReached as stop:
            self.outcome.status = ledger.PARTIAL
            self.outcome.stop_reason = str(stop)
        self.outcome.requests = self._requests()
        return self.outcome

    def finish(self, run_id: int, *, status: str, error: str | None = None) -> None:
        """Record the run's end; a complete run's bookmarks go in the same transaction."""
        outcome = self.outcome
        with self.db.atomic():
            if status == ledger.COMPLETE:
                self._clear_done()
            ledger.update_run(self.db, run_id, status=status, finished_at=self.now(), requests=self._requests(),
                              entities_written=outcome.entities_written, new=outcome.new, updated=outcome.updated,
                              unchanged=outcome.unchanged, gone=len(outcome.gone_keys), error=error,
                              rereads=outcome.rereads, notes="; ".join(outcome.notes) or None)

    def _clear_done(self) -> None:
        """In the transaction that records a complete run: forget the commands
        whose keys are all done, then delete the bookmarks of this run's plans
        and of those commands' plans, except where a command still pending
        has the same plan (rerunning it must continue, not start over)."""
        done_runs = [row[0] for row in self.db.execute(
            "SELECT run_id FROM harvest_plan GROUP BY run_id HAVING min(done) = 1")]
        cleared = set(self.plan_keys)
        for run_id in done_runs:
            cleared.update(row[0] for row in self.db.execute("SELECT plan FROM harvest_plan WHERE run_id = ?",
                                                             [run_id]))
        self.db.conn.executemany("DELETE FROM harvest_plan WHERE run_id = ?", [(run_id,) for run_id in done_runs])
        pending = {row[0] for row in self.db.execute("SELECT DISTINCT plan FROM harvest_plan")}
        self.db.conn.executemany("DELETE FROM harvest_bookmark WHERE plan = ?",
                                 [(key,) for key in cleared - pending])

    def _run_plan(self, plan: Plan, run_id: int) -> None:
        self._run_steps(plan, run_id)
        with self.db.atomic():  # harvested, gone or refused by the server: nothing is left to do for this key
            self.db.execute("UPDATE harvest_plan SET done = 1 WHERE plan = ?", [plan.key])
        self.keys_done += 1
        self._progress()

    def _run_steps(self, plan: Plan, run_id: int) -> None:
        bookmarks = self._bookmarks(plan)
        key = plan.seed
        for step in plan.steps:
            mark = bookmarks.get(step.name)
            if mark and mark["status"] == "gone":
                self.outcome.gone_keys.append(plan.seed)
                return
            if mark and mark["resolved_id"]:
                key = mark["resolved_id"]
            if mark and mark["done"]:
                continue
            try:
                if step.kind == "lookup":
                    key = self._lookup(plan, step, run_id)
                elif step.kind == "isrc":
                    self._isrc(plan, step, run_id)
                else:
                    self._pages(plan, step, key, run_id, start=mark["next_offset"] if mark else 0,
                                total=mark["total"] if mark else None)
            except NotFound:
                self._gone(plan, step, run_id)
                self.outcome.gone_keys.append(plan.seed)
                return
            except BadRequest as exc:
                self.outcome.failed_keys.append(f"{plan.seed}: {exc}")
                return
        self.outcome.done_keys.append(plan.seed)

    def _commit_page(self, plan: Plan, step: Step, run_id: int, normalized: Any, *,
                     also: Callable[[], None] | None = None, **bookmark: Any) -> None:
        """One transaction, data first: the page's rows (and `also`), its
        bookmark (if given), and the ledger row's counts including this page, so the
        ledger holds what was sent and committed even if the process dies
        next. The outcome counts the page once it is committed."""
        outcome = self.outcome
        with self.db.atomic():
            new, updated, unchanged = classify_documents(self.db, normalized.documents)
            written = save(self.db, normalized, source=self.source, fetched_at=self.now())
            if also is not None:
                also()
            if bookmark:
                self._bookmark(plan, step, run_id, **bookmark)
            counts = {"entities_written": outcome.entities_written + written, "new": outcome.new + new,
                      "updated": outcome.updated + updated, "unchanged": outcome.unchanged + unchanged}
            ledger.update_run(self.db, run_id, requests=self._requests(), rereads=outcome.rereads, **counts)
        for name, value in counts.items():
            setattr(outcome, name, value)
        outcome.pages += 1
        outcome.invalid_isrcs += len(normalized.invalid_isrcs)
        self._progress()

    def _lookup(self, plan: Plan, step: Step, run_id: int) -> str:
        self._check_budget()
        doc = self.client.lookup(step.entity, step.key, includes=step.includes)
        normalized = normalize_entity(step.entity, doc, supplementary=self.supplementary,
                                      relation_types=relation_types_of(step.includes))
        resolved = normalized.rows[TABLE_OF[step.entity]][0]["id"]

        def mark_merged() -> None:
            redirect = redirect_row(step.entity, step.key, resolved)
            if redirect:  # merged upstream: the survivor is stored, the old id marked
                fetched_at = self.now()
                save_redirect(self.db, redirect, recorded_at=fetched_at)
                self.db.execute(f"UPDATE [{TABLE_OF[step.entity]}] SET gone_at = ? WHERE id = ?",
                                [fetched_at, step.key])

        self._commit_page(plan, step, run_id, normalized, also=mark_merged,
                          next_offset=0, total=1, done=1, resolved_id=resolved, status="ok")
        return resolved

    def _isrc(self, plan: Plan, step: Step, run_id: int) -> None:
        self._check_budget()
        try:
            doc = self.client.isrc(step.key, includes=step.includes)
        except NotFound:
            doc = {"isrc": step.key, "recordings": []}  # no recording carries it (yet): not an error
        normalized = normalize_isrc_lookup(doc, supplementary=self.supplementary)
        self._commit_page(plan, step, run_id, normalized, next_offset=0, total=1, done=1, status="ok")

    def _pages(self, plan: Plan, step: Step, key: str, run_id: int, *, start: int, total: int | None = None) -> None:
        """Every page of a browse or search from ``start``; a browse read whole in this run is then
        checked against its count (see the module's docstring)."""
        if start and total is not None and start >= total:  # paged to the end before a restart: nothing to check
            with self.db.atomic():
                self._bookmark(plan, step, run_id, next_offset=start, total=total, done=1, status="ok")
            return
        offset = start
        browse = Browse(checked=step.kind == "browse" and start == 0)
        while True:
            page, doc = self._page(step, key, offset)
            browse.read(offset, doc, step.entity)
            offset += page.item_count
            total = page.total if page.total is not None else offset
            if step.max_results is not None:
                total = min(total, step.max_results)
            paged = page.item_count == 0 or offset >= total
            done = paged and not browse.short_of(total)
            per_page = max(page.item_count, 1)
            self.pages_left[plan.key + step.name] = 0 if paged else math.ceil((total - offset) / per_page)
            self._commit_page(plan, step, run_id, page.normalized, next_offset=offset, total=total,
                              done=int(done), status="ok")
            if paged:
                break
        if not done:
            self._reread(plan, step, key, run_id, browse, total, offset)

    def _page(self, step: Step, key: str, offset: int) -> tuple[Any, dict[str, Any]]:
        self._check_budget()
        if step.kind == "search":
            limit = PAGE_LIMIT if step.max_results is None else min(PAGE_LIMIT, step.max_results - offset)
            doc = self.client.search(step.entity, step.key, limit=limit, offset=offset)
        else:
            doc = self.client.browse(step.entity, step.linked, key, includes=step.includes,
                                     limit=PAGE_LIMIT, offset=offset)
        # a search's items carry what its index holds of their relationships: they add, never replace
        return normalize_page(step.entity, doc, supplementary=self.supplementary,
                              relation_types=relation_types_of(step.includes)), doc

    def _reread(self, plan: Plan, step: Step, key: str, run_id: int, browse: "Browse", total: int,
                end: int) -> None:
        """Re-read pages of a browse that came up short, at most MAX_REREADS requests."""
        spent = 0
        for offset in browse.suspects():
            if spent == MAX_REREADS or not browse.short_of(total):
                break
            page, doc = self._page(step, key, offset)
            spent += 1
            self.outcome.rereads += 1
            browse.read(offset, doc, step.entity, again=True)
            self._commit_page(plan, step, run_id, page.normalized)  # the browse's bookmark stays at its end
        if browse.short_of(total):
            self.outcome.notes.append(f"browse {step.entity} by {step.linked} {key}: {len(browse.seen)} of {total} "
                                      f"items after {spent} re-read(s) (the catalogue changed while paging)")
        with self.db.atomic():
            self._bookmark(plan, step, run_id, next_offset=end, total=total, done=1, status="ok")

    def _gone(self, plan: Plan, step: Step, run_id: int) -> None:
        """404: the key was deleted upstream (or never existed). Mark, never delete."""
        table = TABLE_OF.get(step.entity)
        with self.db.atomic():
            if step.kind == "lookup" and table:
                self.db.execute(f"UPDATE [{table}] SET gone_at = ? WHERE id = ?", [self.now(), step.key])
            self._bookmark(plan, step, run_id, next_offset=0, total=0, done=1, status="gone")
            ledger.update_run(self.db, run_id, requests=self._requests(), gone=len(self.outcome.gone_keys) + 1)


@dataclass
class Browse:
    """What a browse has seen: its distinct items, the offsets of its pages, and those that repeated
    items (something moved in front of them between two page requests)."""

    checked: bool
    seen: set[str] = field(default_factory=set)
    offsets: list[int] = field(default_factory=list)
    repeating: list[int] = field(default_factory=list)

    def read(self, offset: int, doc: dict[str, Any], entity: str, *, again: bool = False) -> None:
        if not self.checked:
            return
        ids = {item.get("id") for item in page_items(entity, doc) if isinstance(item, dict)} - {None}
        if not again:
            if ids & self.seen:
                self.repeating.append(offset)
            self.offsets.append(offset)
        self.seen |= ids

    def short_of(self, total: int) -> bool:
        return self.checked and len(self.seen) < total

    def suspects(self) -> list[int]:
        """Offsets to re-read, likeliest first: the page before each page that repeated items (the
        missing ones moved back across that boundary), then every page from the start."""
        before = [self.offsets[self.offsets.index(offset) - 1] for offset in self.repeating
                  if self.offsets.index(offset) > 0]
        return list(dict.fromkeys(before + self.offsets))


def run_harvest(db: sqlite_utils.Database, client: Any, plans: Iterable[Plan], *, command: str, args: Any,
                source: str, supplementary: bool = False, max_requests: int | None = None,
                max_runtime: float | None = None, now: Callable[[], str] = utc_now,
                on_progress: Callable[[ProgressEvent], None] | None = None, record_plans: bool = False) -> Outcome:
    """One ledgered run of plans. The caller holds the run lock.

    Each page updates the run's ledger row as it commits. An error that
    stops the run (the service unreachable after its retries, the disk
    full) is recorded as `failed`, Ctrl-C or a stop signal as `interrupted`,
    and raised again; every page committed before it stays, and rerunning
    continues from there."""
    run_id = ledger.start_run(db, command, args, now())
    harvester = Harvester(db, client, source=source, supplementary=supplementary, max_requests=max_requests,
                          max_runtime=max_runtime, now=now, on_progress=on_progress)
    try:
        if record_plans:
            plans = list(plans)
            harvester.record_plans(plans, run_id)
        outcome = harvester.run(plans, run_id)
    except BaseException as exc:
        # Ctrl-C or a stop signal (Interrupted), a typed error, or a bug: the
        # run is closed with what it sent and committed, then the error goes on
        if isinstance(exc, KeyboardInterrupt):
            status, error = ledger.INTERRUPTED, (f"interrupted by {as_interrupted(exc).signal_name}; "
                                                 "everything committed is kept")
        else:
            status = ledger.FAILED
            error = str(exc) if isinstance(exc, HarvesterError) else f"{type(exc).__name__}: {exc}"
        harvester.outcome.status = status
        with contextlib.suppress(sqlite3.Error):  # a full disk may refuse the ledger row too
            harvester.finish(run_id, status=status, error=error)
        raise
    if outcome.failed_keys and outcome.status == ledger.COMPLETE:
        outcome.status = ledger.FAILED
    harvester.finish(run_id, status=outcome.status, error="; ".join(outcome.failed_keys) or outcome.stop_reason)
    outcome.run_id = run_id
    return outcome


def harvest_with_settings(settings: Any, plans: Iterable[Plan] | Callable[[sqlite_utils.Database], Iterable[Plan]], *, command: str, args: Any, client: Any = None,
                          on_progress: Callable[[ProgressEvent], None] | None = None) -> Outcome:
    """Identify, lock the database, run and record. The client is made (and
    the contact and rate checked) before anything is opened or sent. `plans`
    is a command's keys (kept on record until each is done), or a function
    of the open database (refresh builds its plans from it; they are not)."""
    client = client or WS2Client.from_settings(settings)
    with ledger.run_lock(settings.db, command, utc_now()):
        db = open_db(settings.db)
        # checkpoint the WAL every ~40 MB, not every 4 MB: a page rewrites the
        # same index and full-text pages, which a checkpoint then writes once;
        # a 64 MiB page cache and memory-mapped reads spare most of the reads
        # random MBIDs cause across the indexes (+5% in mirror mode)
        db.execute(f"PRAGMA wal_autocheckpoint = {WAL_CHECKPOINT_PAGES}")
        db.execute("PRAGMA cache_size = -65536")
        db.execute("PRAGMA mmap_size = 268435456")
        try:
            keys_of_a_command = not callable(plans)
            return run_harvest(db, client, plans if keys_of_a_command else plans(db), command=command, args=args,
                               source=f"ws2:{settings.server}", supplementary=settings.include_supplementary,
                               max_requests=settings.max_requests, max_runtime=settings.max_runtime,
                               on_progress=on_progress, record_plans=keys_of_a_command)
        except sqlite3.Error as exc:  # disk full, read-only, I/O error: every page committed before is kept
            raise DatabaseError(describe_sqlite_error(settings.db, exc)) from None
        finally:
            db.close()


@dataclass(frozen=True)
class StepEstimate:
    plan: str
    step: Step
    items: int | None
    requests: int


def _pages(count: int) -> int:
    """A paged step costs one request even when empty: that is how its count is learnt."""
    return max(1, math.ceil(count / PAGE_LIMIT))


def _release_pages(count: int, mean_tracks: float) -> int:
    """Release pages with recordings hold at most 100 releases and 500 tracks."""
    by_items = math.ceil(count / PAGE_LIMIT)
    by_tracks = math.ceil(count * mean_tracks / 500) if mean_tracks else 0
    return max(by_items, by_tracks, 1)


def estimate(client: Any, plans: list[Plan]) -> list[StepEstimate]:
    """Requests each step needs, from one cheap probe per browse or search."""
    estimates = []
    for plan in plans:
        for step in plan.steps:
            if step.kind in ("lookup", "isrc"):
                estimates.append(StepEstimate(plan.key, step, 1, 1))
                continue
            if step.kind == "search":
                doc = client.search(step.entity, step.key, limit=1, offset=0)
                count = normalize_page(step.entity, doc).total or 0
                if step.max_results is not None:
                    count = min(count, step.max_results)
                estimates.append(StepEstimate(plan.key, step, count, _pages(count)))
                continue
            if step.entity == "release" and "recordings" in step.includes:
                # one probe of 100 releases with media gives the count and their mean track count
                doc = client.browse("release", step.linked, plan.seed, includes=("media",), limit=PAGE_LIMIT)
                releases = doc.get("releases") or []
                tracks = [m.get("track-count") or 0 for r in releases for m in (r.get("media") or [])]
                mean = sum(tracks) / len(releases) if releases else 0.0
                count = int(doc.get("release-count") or 0)
                estimates.append(StepEstimate(plan.key, step, count, _release_pages(count, mean)))
                continue
            doc = client.browse(step.entity, step.linked, plan.seed, limit=1)
            count = normalize_page(step.entity, doc).total or 0
            estimates.append(StepEstimate(plan.key, step, count, _pages(count)))
    return estimates
