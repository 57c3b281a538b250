"""Works (the compositions recordings perform) and their ISWCs."""

from __future__ import annotations

import re
from typing import Any

from harvester.normalize.fields import pick, read_text

ISWC_PATTERN = re.compile(r"^T[0-9]{10}$")
_ISWC_DISPLAY_CHARS = re.compile(r"[\s.\-]")


def normalize_iswc(raw: Any) -> str | None:
    """Canonical ISWC: `T-123.456.789-0` -> `T1234567890` (upper case, no
    dots, hyphens or spaces), or None if it is not T and ten digits."""
    if not isinstance(raw, str):
        return None
    code = _ISWC_DISPLAY_CHARS.sub("", raw).upper()
    return code if ISWC_PATTERN.match(code) else None


def work_row(doc: dict, work_id: str) -> dict[str, Any]:
    return {"id": work_id, **pick(doc, (
        ("title", "title", read_text), ("type", "type", read_text), ("language", "language", read_text),
        ("disambiguation", "disambiguation", read_text)))}


