"""liuhuanyong/QASystemOnMedicalKG files -> KG entity records and entity-name dictionaries.

- `notebook_tutorials/medical_data.csv`: UTF-8 CSV, one disease per row, CHINESE column headers
  (疾病名称, 疾病描述, 科室, 病因, 症状, 检查, 并发症, 常用药物, 推荐药物, 疗法, 疗程, 治愈率, …); multi-value
  cells are strings joined with ASCII commas (Chinese commas and 、 occur INSIDE values, so only "," splits);
  long text cells are quoted with embedded newlines (csv module). Same entity schema as the xywy KG;
  drugs = 常用药物 then 推荐药物 (liuhuanyong's common_drug + recommand_drug), duplicates dropped.
- `dict/*.txt`: one entity name per line (the last line has no newline), file stem = entity type
  (disease, symptom, check, drug, food, producer, department). `deny.txt` holds the QA parser's negation
  words and is not an entity type, so it is left out.
"""

from __future__ import annotations

from pathlib import Path

from ..io import read_text
from ._common import ErrorPolicy, RecordGuard, check_row_width, csv_rows, resolve_path, take
from .kg_schema import kg_entity

SOURCE = "qasystem_kg"
NOT_ENTITY_TYPES = ("deny",)
# Single-valued columns kept as `extra` strings, under the attribute names of liuhuanyong's medical.json.
EXTRA_COLUMNS = {"疗法": "cure_way", "疗程": "treat_cycle", "治愈率": "cure_prob", "感染概率": "get_prob",
                 "易感人群": "susceptible_people", "感染途径": "transmission_way", "预防措施": "prevent",
                 "花费": "cost", "是否纳入医保": "medical_insurance", "疾病种类": "category",
                 "具体药物": "drug_detail", "可以吃": "do_eat", "不可以吃": "not_eat", "推荐吃": "recommand_eat"}


MULTI_VALUED_EXTRA = ("cure_way", "category", "drug_detail", "do_eat", "not_eat", "recommand_eat")


def _split(cell: str | None) -> list[str]:
    return (cell or "").split(",")  # kg_entity strips the parts and drops empty ones


def _entity(row: dict, entity_id: str) -> dict:
    # kg_entity joins list-valued extras with 、, the way Chinese text lists items
    extra = {key: _split(row.get(col)) if key in MULTI_VALUED_EXTRA else row.get(col) or ""
             for col, key in EXTRA_COLUMNS.items()}
    return kg_entity(id=entity_id, name=row["疾病名称"], description=row.get("疾病描述") or "",
                     source=SOURCE, symptoms=_split(row.get("症状")), causes=row.get("病因") or "",
                     department=_split(row.get("科室")), examinations=_split(row.get("检查")),
                     drugs=_split(row.get("常用药物")) + _split(row.get("推荐药物")),
                     complications=_split(row.get("并发症")), extra=extra)


def load_qasystem_kg_csv(path, *, errors: ErrorPolicy = "raise", max_records: int = 0):
    path = resolve_path(path)
    guard, out = RecordGuard(path, SOURCE, errors), []
    for index, (ref, row) in enumerate(csv_rows(path, required=("疾病名称",))):
        if take(out, max_records):
            break
        with guard.record(ref):
            check_row_width(row)
            out.append(_entity(row, f"{path.stem}:{index}"))
    return guard.finish(out)


def load_qasystem_dicts(dict_dir) -> dict[str, list[str]]:
    """{entity type: [names]} from `dict/*.txt`, blank lines dropped, file order kept."""
    dict_dir = resolve_path(dict_dir)
    out = {}
    for file in sorted(Path(dict_dir).glob("*.txt")):
        if file.stem in NOT_ENTITY_TYPES:
            continue
        out[file.stem] = [line.strip() for line in read_text(file).splitlines() if line.strip()]
    if not out:
        raise FileNotFoundError(f"{dict_dir}: no entity dictionaries (*.txt)")
    return out
