"""What a dump import must leave in the database, computed from the lines
with plain dictionaries, one line after another, as the README states the
rules (not through the importer's staging, sorting or merge):

- a line's named child sets (Normalized.replace) lose their rows first;
- then each of the line's rows lays the columns it has over the stored row
  of its key (a new row starts empty), stamped with the dump's time and
  source;
- at the end, a child row (not an entity table's) whose columns are what
  they were before the dump keeps the stamps it had.

The importer sorts and merges instead of applying lines in order; this is
the order-by-order definition it must agree with.
"""

from __future__ import annotations

from typing import Any, Iterable

from harvester.normalize import TABLE_OF, normalize_entity
from harvester.store import PRIMARY_KEYS

# tables a dump import writes, with the columns they must hold (None where absent)
State = dict[str, dict[tuple, dict[str, Any]]]
CARRIED = "(carried by)"  # not a column: the source of the last dump that carried the row
STAMPS = ("fetched_at", "source", CARRIED)
ENTITY_TABLES = frozenset(TABLE_OF.values())


def same_data(old: dict, new: dict) -> bool:
    """Whether two versions of a row hold the same values, stamps aside."""
    return all(old.get(c) == new.get(c) for c in (old.keys() | new.keys()) - set(STAMPS))


def key_of(table: str, row: dict) -> tuple:
    key = PRIMARY_KEYS[table]
    return tuple(row[column] for column in ((key,) if isinstance(key, str) else key))


def apply_dump(state: State, entity_type: str, docs: Iterable[dict], dump_time: str, *,
               supplementary: bool = False, keep_documents: bool = False) -> State:
    """`state` after importing `docs` as the lines of one dump taken at `dump_time` (`...Z`)."""
    stamp = {"fetched_at": dump_time, "source": f"dump:{dump_time}", CARRIED: f"dump:{dump_time}"}
    before = {table: {key: dict(row) for key, row in rows.items()}
              for table, rows in state.items() if table not in ENTITY_TABLES}
    members: dict[tuple[str, tuple], dict[tuple, set]] = {}  # (table, set columns) -> set key -> row keys

    def index(table: str, columns: tuple) -> dict[tuple, set]:
        found = members.get((table, columns))
        if found is None:
            found = members[(table, columns)] = {}
            for key, row in state.get(table, {}).items():
                found.setdefault(tuple(row.get(c) for c in columns), set()).add(key)
        return found

    for doc in docs:
        normalized = normalize_entity(entity_type, doc, supplementary=supplementary, keep_document=keep_documents)
        for table, where in normalized.replace:
            columns = tuple(c for c, _ in where)
            rows = state.setdefault(table, {})
            for key in index(table, columns).pop(tuple(v for _, v in where), set()):
                row = rows.pop(key)
                for (other_table, other_columns), sets in members.items():
                    if other_table == table:
                        sets.get(tuple(row.get(c) for c in other_columns), set()).discard(key)
        tables = list(normalized.rows.items()) + ([("document", normalized.documents)] if normalized.documents else [])
        for table, rows in tables:
            for row in rows:
                key = key_of(table, row)
                stored = state.setdefault(table, {}).setdefault(key, {})
                for (other_table, columns), sets in members.items():
                    if other_table == table:
                        sets.get(tuple(stored.get(c) for c in columns), set()).discard(key)
                stored.update(row)
                stored.update(stamp)
                for (other_table, columns), sets in members.items():
                    if other_table == table:
                        sets.setdefault(tuple(stored.get(c) for c in columns), set()).add(key)
    for table, rows in before.items():
        for key, old in rows.items():
            row = state.get(table, {}).get(key)
            if row is not None and same_data(old, row):
                row["fetched_at"], row["source"] = old.get("fetched_at"), old.get("source")
    return state


def database_rows(db, table: str) -> dict[tuple, dict[str, Any]]:
    """A table's rows keyed as the truth keys them, every column present."""
    columns = [row[1] for row in db.execute(f"PRAGMA table_info([{table}])")]
    rows = {}
    for values in db.execute(f"SELECT {', '.join(f'[{c}]' for c in columns)} FROM [{table}]"):
        row = dict(zip(columns, values))
        rows[key_of(table, row)] = row
    return rows


def _with_affinity(value: Any, declared: str) -> Any:
    """What SQLite stores for a value in a column of that declared type: a
    TEXT column keeps a number as its text (label_code 38763 -> '38763')."""
    if declared.upper() == "TEXT" and isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    return value


def differences(db, state: State) -> dict[str, Any]:
    """Per table, what the database holds unlike the truth (empty when they agree).
    A column the truth never set must be NULL in the database."""
    found = {}
    for table, expected in state.items():
        stored = database_rows(db, table)
        declared = {row[1]: row[2] for row in db.execute(f"PRAGMA table_info([{table}])")}

        def as_stored(row: dict) -> dict:
            return {c: _with_affinity(row.get(c), kind) for c, kind in declared.items()}

        missing = expected.keys() - stored.keys()
        extra = stored.keys() - expected.keys()
        unlike = {key: (stored[key], as_stored(expected[key]))
                  for key in expected.keys() & stored.keys()
                  if stored[key] != as_stored(expected[key])}
        if missing or extra or unlike:
            found[table] = {"missing": sorted(missing)[:3], "extra": sorted(extra)[:3],
                            "unlike": list(unlike.items())[:2], "counts": (len(missing), len(extra), len(unlike))}
    return found


def changes(before: State, after: State, carried_source: str) -> dict[str, dict[str, int]]:
    """new / updated / unchanged / deleted per table between two states, for
    the rows the dump carried and the rows it removed."""
    counted = {}
    for table in set(before) | set(after):
        old, new = before.get(table, {}), after.get(table, {})
        counts = {"new": 0, "updated": 0, "unchanged": 0, "deleted": len(old.keys() - new.keys())}
        for key, row in new.items():
            if row.get(CARRIED) != carried_source:
                continue
            if key not in old:
                counts["new"] += 1
            elif not same_data(old[key], row):
                counts["updated"] += 1
            else:
                counts["unchanged"] += 1
        counted[table] = counts
    return counted


def copy_state(state: State) -> State:
    return {table: {key: dict(row) for key, row in rows.items()} for table, rows in state.items()}
