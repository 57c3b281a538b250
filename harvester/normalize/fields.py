"""Field readers: tolerant of None and of strings for numbers, strict otherwise.

Responses from different years differ (fields missing, null, or of another
type: older JSON has `length` as a string), so every reader says what it
accepts and raises ShapeError for anything else; the walkers turn that into
a NormalizeError naming the document.
"""

from __future__ import annotations

import math
import re
from typing import Any, Iterable

ISRC_PATTERN = re.compile(r"^[A-Z]{2}[A-Z0-9]{3}[0-9]{7}$")
MBID_PATTERN = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$")
_ISRC_DISPLAY_CHARS = re.compile(r"[\s\-]")

_SQLITE_INT_MIN, _SQLITE_INT_MAX = -(2 ** 63), 2 ** 63 - 1


class ShapeError(Exception):
    """A field holds a type the normalizer cannot use; becomes NormalizeError."""


def read_text(value: Any, key: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)
    raise ShapeError(f"{key} should be text, not {type(value).__name__}")


def read_int(value: Any, key: str) -> int | None:
    """A whole number that fits SQLite's 64-bit INTEGER; text and floats are accepted, NaN and infinity not."""
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ShapeError(f"{key} should be a number, not a boolean")
    if isinstance(value, str):
        text = value.strip()
        try:
            value = int(text) if text.lstrip("+-").isdigit() else float(text)
        except ValueError:
            raise ShapeError(f"{key} should be a number, not {value[:40]!r}") from None
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ShapeError(f"{key} should be a finite number, not {value}")
        value = int(value)
    if isinstance(value, int):
        if not _SQLITE_INT_MIN <= value <= _SQLITE_INT_MAX:
            raise ShapeError(f"{key} is out of range ({str(value)[:40]})")
        return value
    raise ShapeError(f"{key} should be a number, not {type(value).__name__}")


def read_float(value: Any, key: str) -> float:
    """A finite number (ratings); text holding one is accepted."""
    if isinstance(value, (int, float, str)) and not isinstance(value, bool):
        try:
            number = float(value)
        except (ValueError, OverflowError):
            number = math.nan
        if math.isfinite(number):
            return number
    raise ShapeError(f"{key} should be a number, not {str(value)[:40]!r}")


def read_bool(value: Any, key: str) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int) and value in (0, 1):  # 2014-era JSON
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return int(value.lower() == "true")
    raise ShapeError(f"{key} should be true or false, not {type(value).__name__}")


def read_code(value: Any, key: str) -> str | None:
    """A label code as text, the type of its column (label_code is TEXT since
    migration 0007): codes are numbers (LC 2648 -> '2648'), old data also
    holds text ('SPREC'). Giving the column's own type lets an import tell an
    unchanged row from a changed one."""
    try:
        number = read_int(value, key)
    except ShapeError:
        return read_text(value, key)
    return None if number is None else str(number)


def read_date(value: Any, key: str) -> str | None:
    """Partial dates stay as given (YYYY, YYYY-MM, YYYY-MM-DD); empty is unknown."""
    text = read_text(value, key)
    return text.strip() or None if text is not None else None


def read_list(value: Any, key: str) -> list:
    if value is None:
        return []
    if isinstance(value, list):
        return value
    raise ShapeError(f"{key} should be a list, not {type(value).__name__}")


def read_dict(value: Any, key: str) -> dict | None:
    if value is None or isinstance(value, dict):
        return value
    raise ShapeError(f"{key} should be an object, not {type(value).__name__}")


def read_id(doc: dict, what: str) -> str:
    value = doc.get("id")
    if not isinstance(value, str) or not value.strip():
        raise ShapeError(f"{what} has no id")
    return value.strip().lower()


def pick(doc: dict, fields: Iterable[tuple[str, str, Any]]) -> dict[str, Any]:
    """Row of the columns whose keys are present: (column, key, reader)."""
    row: dict[str, Any] = {}
    for column, key, reader in fields:
        if key in doc:
            row[column] = reader(doc[key], key)
    return row


def life_span(doc: dict) -> dict[str, Any]:
    span = read_dict(doc.get("life-span"), "life-span")
    if span is None:
        return {}
    return pick(span, (("begin_date", "begin", read_date), ("end_date", "end", read_date), ("ended", "ended", read_bool)))


def normalize_isrc(raw: Any) -> str | None:
    """Canonical ISRC (upper case, no hyphens or spaces), or None if invalid."""
    if not isinstance(raw, str):
        return None
    code = _ISRC_DISPLAY_CHARS.sub("", raw).upper()
    return code if ISRC_PATTERN.match(code) else None
