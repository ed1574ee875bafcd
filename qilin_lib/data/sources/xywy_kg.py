"""xywy.com (寻医问药) disease KG, Tonystark-001/MedicalKGQA split crawl -> KG entity records.

Format: `data/medical_0.json` … `medical_17.json`, each ONE JSON object keyed "0".."499" (the last file has
292). Keys RESTART at "0" in every file, so an entity id is "<file stem>:<key>" ("medical_3:17"), unique
across files. Each value nests `gaishu_info` (name, desc, department/drug/complication lists, cure
statistics), `cause_info`, `prevent_info`, `nursing_info` (long text with \\n), `symptom_data.symptoms`,
`inspect_info` (checks), `food_info`. Values may be empty strings or lists (kept as empty fields).
Field names differ from liuhuanyong's schema (belongs_to_department vs cure_department, inspect_info vs
check): both are mapped onto the one entity schema of `kg_schema.kg_entity`.
"""

from __future__ import annotations

import re
from pathlib import Path

from ..io import read_json
from ._common import DataFormatError, ErrorPolicy, RecordGuard, merge_stats, resolve_path, take
from .kg_schema import kg_entity

SOURCE = "xywy_kg"


def kg_files(spec) -> list[Path]:
    """A file, a directory of medical_*.json (numeric order: 0, 1, …, 10), or a list of files."""
    if isinstance(spec, (list, tuple)):
        return [resolve_path(p) for p in spec]
    path = resolve_path(spec)
    if path.is_dir():
        files = sorted(path.glob("medical_*.json"),
                       key=lambda p: (int(m.group()) if (m := re.search(r"\d+", p.stem)) else -1, p.name))
        if not files:
            raise FileNotFoundError(f"{path}: no medical_*.json files")
        return files
    return [path]


def _entity(stem: str, key: str, obj: dict) -> dict:
    info = obj["gaishu_info"]
    symptoms = (obj.get("symptom_data") or {}).get("symptoms")
    food = obj.get("food_info") or {}
    return kg_entity(
        id=f"{stem}:{key}", name=info["name"], description=info.get("desc", ""), source=SOURCE,
        symptoms=symptoms, causes=obj.get("cause_info"), department=info.get("belongs_to_department"),
        examinations=obj.get("inspect_info"), drugs=info.get("common_drug"),
        complications=info.get("has_complication"),
        extra={"cure_way": info.get("treat_way"), "treat_cycle": info.get("treat_cycle", ""),
               "cure_prob": info.get("cure_prob", ""), "get_prob": info.get("disease_ratio", ""),
               "susceptible_people": info.get("susceptible_people", ""),
               "transmission_way": info.get("transmission_way", ""),
               "medical_insurance": info.get("medical_insurance", ""), "cost": info.get("treat_cost", ""),
               "prevent": obj.get("prevent_info", ""), "nursing": obj.get("nursing_info", ""),
               "do_eat": food.get("good_food"), "not_eat": food.get("avoid_food"),
               "recommand_eat": food.get("recommand_recipes")})


def load_xywy_kg_json(path, *, errors: ErrorPolicy = "raise", max_records: int = 0):
    files = kg_files(path)
    guards, out = [], []
    for file in files:
        doc = read_json(file)
        if not isinstance(doc, dict):
            raise DataFormatError(file, None, f"expected an object keyed '0'.., got {type(doc).__name__}")
        guard = RecordGuard(file, SOURCE, errors)
        guards.append(guard)
        for key, obj in doc.items():
            if take(out, max_records):
                break
            with guard.record(f"key {key!r}"):
                out.append(_entity(file.stem, key, obj))
    where = str(path) if not isinstance(path, (list, tuple)) else ";".join(map(str, path))
    return merge_stats(SOURCE, where, guards, out)
