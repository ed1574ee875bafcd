"""The knowledge base as the generators use it: entities by name, value frequencies, distractors, and
the seeded split of its diseases into dcpt / sft / control."""

from __future__ import annotations

import random
from collections import Counter

from ...config import TinyDataConfig
from .templates import FIELDS


class _KB:
    """Entities by name plus per-field value frequencies (number of KB diseases that have the value)."""

    def __init__(self, entities: list[dict]):
        self.entities = entities
        self.by_name = {e["name"]: e for e in entities}
        self.freq = {f: Counter(v for e in entities for v in e[f]) for f in FIELDS}

    def related(self, entity: dict, value: str) -> bool:
        """True if `value` is, contains or is contained in a value of the entity, or sits inside its name."""
        if value in entity["name"]:
            return True
        return any(value in v or v in value for f in FIELDS for v in entity[f])

    def distractors(self, entity: dict, f: str, k: int, rng: random.Random) -> list[str]:
        """k values of field f from other diseases, drawn without replacement with probability proportional
        to their KB frequency, never a value related to the asked disease."""
        pool = [(v, w) for v, w in sorted(self.freq[f].items()) if not self.related(entity, v)]
        if len(pool) < k:
            raise ValueError(f"only {len(pool)} distractor values for {entity['name']}/{f}, need {k}")
        chosen = []
        for _ in range(k):
            total = sum(w for _, w in pool)
            x, acc = rng.random() * total, 0.0
            for i, (v, w) in enumerate(pool):
                acc += w
                if x < acc:
                    break
            chosen.append(pool.pop(i)[0])
        return chosen

    def wrong_values(self, entity: dict, f: str, rng: random.Random) -> list[str]:
        """The values of field f of another disease, none of them related to `entity`."""
        others = [e for e in self.entities if e["name"] != entity["name"] and e[f]
                  and not any(self.related(entity, v) for v in e[f])]
        values = list(rng.choice(others)[f])
        rng.shuffle(values)
        return values


def split_diseases(names: list[str], cfg: TinyDataConfig, seed: int) -> dict[str, str]:
    need = cfg.n_dcpt_diseases + cfg.n_sft_diseases + cfg.n_control_diseases
    if need > len(names):
        raise ValueError(f"the split needs {need} diseases, the knowledge base has {len(names)}")
    order = sorted(names)
    random.Random(f"{seed}-split").shuffle(order)
    groups = (["dcpt"] * cfg.n_dcpt_diseases + ["sft"] * cfg.n_sft_diseases
              + ["control"] * cfg.n_control_diseases)
    return dict(zip(order, groups))
