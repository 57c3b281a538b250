"""`mbharvest refresh`: the cron entry point.

In order, within the run's budgets: finish plans left unfinished by earlier
runs (their bookmarks), re-harvest the watchlist, then re-fetch entities
whose `fetched_at` is older than `older_than` days, oldest first. Rows that
came from a dump are left to the next dump (`sync-dumps`): re-fetching a
full catalogue one lookup a second would take months.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Callable, Iterable, Iterator

import sqlite_utils

from harvester.errors import UsageError
from harvester.harvest import Plan, check_keys, lookup_plan, plan_for, plan_from_key, read_key_file
from harvester.normalize import ENTITY_TYPES, TABLE_OF
from harvester.settings import Settings

# entity table -> WS/2 entity type, for the types harvest commands fetch (the
# works, areas and URLs their relationships point at are refreshed with them)
STALE_TABLES = {TABLE_OF[entity]: entity for entity in ENTITY_TYPES}
STALE_BATCH = 1000  # lookups per query: ~17 minutes of requests at 1 req/s


def unfinished_plans(db: sqlite_utils.Database) -> list[Plan]:
    """What earlier runs left to do: the keys of harvest commands not yet
    done (also those an interrupted run never reached), oldest command
    first, then plans with bookmarks that no command has on record (an
    interrupted refresh's own, or a database from before 0009_harvest_plan)."""
    keys = [row[0] for row in db.execute(
        "SELECT plan FROM harvest_plan WHERE done = 0 GROUP BY plan ORDER BY min(run_id), min(position)")]
    keys += [row[0] for row in db.execute(
        "SELECT DISTINCT plan FROM harvest_bookmark WHERE plan NOT IN (SELECT plan FROM harvest_plan) ORDER BY plan")]
    return [plan_from_key(key) for key in keys]


def watchlist_plans(settings: Settings) -> list[Plan]:
    """Plans for the [watch] section; a malformed key there is a usage error."""
    watch = settings.watch
    plans: list[Plan] = []
    isrcs: list = list(watch.isrcs)
    for path in watch.isrc_files:
        try:
            with open(path, "rb") as fh:
                keys, problems = read_key_file(fh, path)
        except OSError as exc:
            raise UsageError(f"{settings.config_path}: [watch] isrc_files: cannot read {path} "
                             f"({exc.strerror})") from None
        if problems:
            raise UsageError(f"{settings.config_path}: [watch] isrc_files: {problems[0]}")
        isrcs += keys
    for target, keys in (("artist", watch.artists), ("label", watch.labels),
                         ("release-group", watch.release_groups), ("release", watch.releases),
                         ("recording", watch.recordings), ("isrc", isrcs)):
        valid, problems = check_keys(target, keys)
        if problems:
            raise UsageError(f"{settings.config_path}: [watch] {problems[0]}")
        plans += [plan_for(target, key) for key in valid]
    for search in watch.searches:
        plans.append(plan_for("search", search.query, max_results=search.max_results, search_entity=search.entity))
    return plans


def stale_plans(db: sqlite_utils.Database, older_than_days: float, now: datetime | None = None) -> Iterator[Plan]:
    """Lookups of entities not fetched for `older_than_days`, oldest first,
    leaving out rows whose source is a dump (the next dump refreshes them).

    Queried lazily, a batch at a time, each batch starting after the last
    row of the one before (keyset paging): a scan per batch, however many
    batches, and an entity whose lookup failed is not tried twice. Entities
    refreshed meanwhile have a new fetched_at and are no longer stale."""
    now = now or datetime.now(timezone.utc)
    cutoff = (now - timedelta(days=older_than_days)).strftime("%Y-%m-%dT%H:%M:%SZ")
    union = " UNION ALL ".join(
        f"SELECT fetched_at, '{table}' AS entity_table, id FROM [{table}] "
        f"WHERE fetched_at < :cutoff AND gone_at IS NULL AND coalesce(source, '') NOT LIKE 'dump:%'"
        for table in STALE_TABLES)
    after = ("", "", "")
    while True:
        rows = db.execute(
            f"SELECT fetched_at, entity_table, id FROM ({union}) WHERE (fetched_at, entity_table, id) > (:f, :t, :i) "
            "ORDER BY fetched_at, entity_table, id LIMIT :limit",
            {"cutoff": cutoff, "f": after[0], "t": after[1], "i": after[2], "limit": STALE_BATCH}).fetchall()
        if not rows:
            return
        for _, table, entity_id in rows:
            yield lookup_plan(STALE_TABLES[table], entity_id)
        after = tuple(rows[-1])


def refresh_plans(settings: Settings) -> Callable[[sqlite_utils.Database], Iterable[Plan]]:
    """The refresh run's plans, built once the database is open."""
    watch = watchlist_plans(settings)  # checked before the database is touched

    def build(db: sqlite_utils.Database) -> Iterable[Plan]:
        yield from unfinished_plans(db)
        yield from watch
        yield from stale_plans(db, settings.older_than_days)

    return build
