"""The KG disease-entity record: the one schema that every KG loader emits and the KG-to-text module reads.

    {"id", "name", "description": str, "symptoms", "causes", "department", "examinations", "drugs",
     "complications": [str], "extra": {attribute: str}, "source"}

List fields hold non-empty stripped strings, first occurrence kept (crawls repeat items); a cause text
may be one long string in its list. `extra` keeps the other useful attributes as strings, under
liuhuanyong's medical.json attribute names where one exists (cure_way, treat_cycle, cure_prob, get_prob,
susceptible_people, transmission_way, prevent, nursing, cost, medical_insurance, do_eat, not_eat,
recommand_eat, ...); list-valued extras are joined with 、 and empty ones dropped.
"""

from __future__ import annotations

from typing import Any


def clean_list(values: Any, name: str) -> list[str]:
    """A KG multi-value field -> non-empty stripped strings, first occurrence kept (crawls repeat items)."""
    if values is None or values == "":
        return []
    if isinstance(values, str):
        values = [values]
    if not isinstance(values, list):
        raise ValueError(f"{name} must be a list of strings, got {type(values).__name__}")
    out: list[str] = []
    for v in values:
        if not isinstance(v, str):
            raise ValueError(f"{name} holds a {type(v).__name__}, expected strings")
        v = v.strip()
        if v and v not in out:
            out.append(v)
    return out


KG_LIST_FIELDS = ("symptoms", "causes", "department", "examinations", "drugs", "complications")


def kg_entity(id: str, name: str, source: str, description: str = "", extra: dict | None = None,
              **lists: Any) -> dict:
    """Build and validate one entity record; list fields accept a list, one string, or None."""
    unknown = set(lists) - set(KG_LIST_FIELDS)
    if unknown:
        raise TypeError(f"unknown KG list field(s) {sorted(unknown)}")
    if not isinstance(name, str) or not name.strip():
        raise ValueError("entity name is empty")
    if not isinstance(description, str):
        raise ValueError(f"description must be a string, got {type(description).__name__}")
    clean_extra = {}
    for key, value in (extra or {}).items():
        if value is None:  # an attribute this crawl lacks
            continue
        if isinstance(value, list):
            value = "、".join(clean_list(value, key))  # extra values are strings by contract
        if not isinstance(value, str):
            raise ValueError(f"extra {key!r} must be a string, got {type(value).__name__}")
        if value.strip():
            clean_extra[key] = value.strip()
    entity = {"id": str(id), "name": name.strip(), "description": description.strip()}
    entity.update({f: clean_list(lists.get(f), f) for f in KG_LIST_FIELDS})
    entity.update({"extra": clean_extra, "source": source})
    return entity
