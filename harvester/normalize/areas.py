"""Areas: countries, subdivisions, cities, districts, islands. An artist's
or label's area is often a city or a region, whose country is found by
following `part of` relationships (area-rels, or the area dump)."""

from __future__ import annotations

from typing import Any

from harvester.normalize.fields import life_span, pick, read_list, read_text

ISO_CODE_KEYS = (("iso_3166_1", "iso-3166-1-codes"), ("iso_3166_2", "iso-3166-2-codes"),
                 ("iso_3166_3", "iso-3166-3-codes"))


def iso_codes(value: Any, key: str) -> str | None:
    """An area's ISO 3166 codes of one part, space-separated (one code, as
    nearly every area has, is the code itself); None for none."""
    codes = [code.strip() for code in (read_text(c, f"{key}[]") for c in read_list(value, key)) if code and code.strip()]
    return " ".join(codes) or None


def area_row(doc: dict, area_id: str) -> dict[str, Any]:
    row = {"id": area_id, **pick(doc, (
        ("name", "name", read_text), ("sort_name", "sort-name", read_text), ("type", "type", read_text),
        ("disambiguation", "disambiguation", read_text)))}
    row.update(pick(doc, ((column, key, iso_codes) for column, key in ISO_CODE_KEYS)))
    row.update(life_span(doc))
    return row
