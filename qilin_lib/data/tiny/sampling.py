"""Seeded draws shared by every builder: cycling, chunking, balancing, and filling templates.

Every builder takes its own `random.Random`, so these helpers never touch global state and the same
config and seed always give the same corpora.
"""

from __future__ import annotations

import random

from .. import kg
from .templates import FIELDS


def _join(values: list[str], rng: random.Random) -> str:
    values = list(values)
    rng.shuffle(values)
    return kg.join_values(values, rng)


def _fill(template: str, name: str, values: str = "", label: str = "") -> str:
    return template.format(n=name, v=values, label=label)


def _largest_remainder(total: int, weights: dict[str, float]) -> dict[str, int]:
    s = sum(weights.values())
    if s <= 0:
        raise ValueError(f"cpt_mix weights must sum to > 0, got {weights}")
    raw = {k: total * w / s for k, w in weights.items()}
    out = {k: int(v) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: raw[k] - out[k], reverse=True)[: total - sum(out.values())]:
        out[k] += 1
    return out


def _cycle(items: list, n: int, rng: random.Random) -> list:
    """n items drawn by passes over `items`, each pass in a fresh random order."""
    out = []
    while len(out) < n and items:
        batch = list(items)
        rng.shuffle(batch)
        out += batch
    return out[:n]


def _chunks(items: list, rng: random.Random, sizes: tuple[int, ...]) -> list[list]:
    out, i = [], 0
    while i < len(items):
        k = rng.choice(sizes)
        out.append(items[i:i + k])
        i += k
    if len(out) > 1 and len(out[-1]) < min(sizes):
        last = out.pop()  # (not `out[-2] += out.pop()`: the pop would shift the index first)
        out[-1] = out[-1] + last
    return out


def _balanced_positions(n: int, k: int, rng: random.Random) -> list[int]:
    positions = [i % k for i in range(n)]
    rng.shuffle(positions)
    return positions


def _group_counts(n: int, n_taught: int, n_control: int) -> tuple[int, int]:
    """Items split between taught and control diseases in proportion to how many there are."""
    if n_taught + n_control == 0:
        return 0, 0
    c = round(n * n_control / (n_taught + n_control))
    return n - c, c


def _eval_pairs(names_taught: list[str], names_control: list[str], n: int, rng: random.Random,
                exclude: set = frozenset()) -> list[tuple[str, str, str]]:
    """(disease, field, "taught" | "control") pairs of an evaluation set: the two groups in proportion to
    their sizes, every pair once per pass before any repeats."""
    n_t, n_c = _group_counts(n, len(names_taught), len(names_control))
    taught = [(d, f, "taught") for d in names_taught for f in FIELDS if (d, f) not in exclude]
    control = [(d, f, "control") for d in names_control for f in FIELDS if (d, f) not in exclude]
    pairs = _cycle(taught, n_t, rng) + _cycle(control, n_c, rng)
    rng.shuffle(pairs)
    return pairs


def _unique(make, seen: set, tries: int = 20) -> str:
    """A text from `make()` that is not in `seen` (redrawn a few times: exact duplicates would be removed
    by deduplication and silently lower the exposures)."""
    for _ in range(tries):
        text = make()
        if text not in seen:
            break
    seen.add(text)
    return text
