"""The benchmarks, one module each (DESIGN.md section 4), registered here.

    bench = load_benchmark(cfg, "cmexam")     # tiny: the data stage's set; paper: the released test file
    bench.prompt(bench.items[0])              # the exact text the model sees (before chat wrapping)

Each module's class (a `base.Benchmark`) owns its loader, prompt, parsers, metrics, table rows and published
rows. Adding a benchmark: one module here, one line in REGISTRY, and its sample in tests/evalkit.py's SAMPLES
(the contract test in tests/test_benchmarks.py evaluates every registered benchmark end to end on it); README,
"Adding a benchmark".

Sources per profile (`cfg.data.benchmarks`): the tiny profile reads the sets its data stage generated;
the other profiles name a local path or `hf://datasets/...` file per benchmark (C-Eval: a local
`ceval-exam` directory or the hub id `ceval/ceval-exam`; PubMedQA: `{"path": ori_pqal.json, "test_ids":
test_ground_truth.json}`).
"""

from __future__ import annotations

from pathlib import Path

from .base import Benchmark
from .ceval import CEVAL_SUBJECTS, CEval
from .cmexam import CMExam
from .cnmle import CNMLE
from .huatuo26m import Huatuo26M
from .medqa_mcmle import MedQAMCMLE
from .pubmedqa import PUBMEDQA_OPTIONS, PubMedQA, pubmedqa_as_mcq

# The one place a benchmark is registered; this order is the order of the tables and of REPORT.md's rows.
REGISTRY: tuple[type[Benchmark], ...] = (CMExam, CEval, Huatuo26M, PubMedQA, MedQAMCMLE, CNMLE)
BENCHMARKS: dict[str, type[Benchmark]] = {cls.name: cls for cls in REGISTRY}

__all__ = ["BENCHMARKS", "CEVAL_SUBJECTS", "PUBMEDQA_OPTIONS", "REGISTRY", "Benchmark", "available",
           "load_benchmark", "pubmedqa_as_mcq"]


def available(cfg) -> list[str]:
    """The benchmarks this profile can run: the tiny sets, or the ones its config names."""
    if cfg.data.generator == "tiny_kb":
        return [name for name, cls in BENCHMARKS.items() if cls.tiny_split]
    return [name for name in BENCHMARKS if name in cfg.data.benchmarks]


def load_benchmark(cfg, name: str, max_items: int = 0) -> Benchmark:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    cls = BENCHMARKS[name]
    if cfg.data.generator == "tiny_kb":
        from ...data.stage import load_corpus

        if not cls.tiny_split:
            tiny = ", ".join(available(cfg))
            raise ValueError(f"the tiny profile has no {name!r} set (it generates {tiny})")
        bench = cls.from_tiny(lambda split: [dict(r) for r in load_corpus(cfg, f"eval/{split}")])
    else:
        bench = cls.from_spec(_spec(cfg, name))
    if max_items:
        bench.items = bench.items[:max_items]
    return bench


def _spec(cfg, name: str) -> dict:
    """The benchmark's spec with relative local paths read from the repo root (notebooks run elsewhere)."""
    from ...paths import repo_root

    spec = cfg.data.benchmarks.get(name)
    if spec is None:
        raise ValueError(f"profile {cfg.name!r} names no `data.benchmarks.{name}`")
    spec = {"path": spec} if isinstance(spec, str) else dict(spec)
    for key in ("path", "test_ids"):
        value = spec.get(key)
        if value and not str(value).startswith("hf://") and not Path(value).expanduser().is_absolute() \
                and (repo_root() / value).exists():
            spec[key] = str(repo_root() / value)
    return spec
