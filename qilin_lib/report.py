"""results/<profile>/REPORT.md: the reviewer's one file. Every table of the run, the paper's numbers beside
ours with the difference, the wall time of each notebook and the provenance of each run.

    build_report("tiny")      # also the last step of `qilin reproduce`; `qilin report --profile tiny`

Everything here is read from files the notebooks wrote (results/<profile>/*.json, tables/*.md,
timings.json) and from results/paper/reference.json: the report computes nothing it could get wrong
silently, and a number typed into it would be overwritten by the next run.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from .cache import atomic_write_text
from .evaluation.benchmarks import REGISTRY
from .paths import figures_dir, repo_root, results_dir, tables_dir
from .reporting import markdown

REPORT_FILE = "REPORT.md"
# REPORT.md's table order, by name prefix: data, the tiny knowledge tables, each benchmark's own table in
# registry order, then the tables across benchmarks.
TABLE_ORDER = ("table1", "table2", "table3", "data_", "eval_sets", "decontamination", "eval_knowledge", "eval_heldout",
               *(f"eval_{cls.name}" for cls in REGISTRY), "eval_rag", "eval_voc", "eval_adaptation", "case_studies")


def _read(path: Path):
    return json.loads(path.read_text("utf-8")) if path.exists() else None


def _metric(result: dict | None, path: tuple[str, ...]):
    node = (result or {}).get("metrics")
    for key in path:
        node = node.get(key) if isinstance(node, dict) else None
    return node


def paper_comparison(profile: str) -> pd.DataFrame:
    """Published number, ours with its 95% interval, and ours - published, for every published Qilin-Med /
    AntGLM-Med number."""
    from .evaluation.reference import load_reference

    reference = {(e["benchmark"], e["model"], e["metric"]): e for e in load_reference()}
    rows = []
    # which of our runs stands for which published model: each benchmark's `paper_map`
    paper_map = [(cls.name, *entry) for cls in REGISTRY for entry in cls.paper_map]
    for bench, paper_model, metric, model, task, path in paper_map:
        ref = reference.get((bench, paper_model, metric))
        if ref is None:
            continue
        result = _read(results_dir(profile) / f"eval_{model}_{task}.json")
        ours = _metric(result, path)
        interval = _metric(result, (*path[:-1], path[-1] + "_ci95"))  # qilin_lib.evaluation.intervals
        rows.append({"benchmark": bench, "metric": metric, "published model": paper_model, "published": ref["value"],
                     "our run": f"{model} / {task}", f"ours ({profile})": None if ours is None else round(ours, 2),
                     "ours 95% interval": None if interval is None else f"[{interval[0]:.2f}, {interval[1]:.2f}]",
                     "difference": None if ours is None else round(ours - ref["value"], 2), "source": ref["source"]})
    return pd.DataFrame(rows)


def _timings(profile: str) -> pd.DataFrame | None:
    timings = _read(results_dir(profile) / "timings.json")
    if not timings:
        return None
    df = pd.DataFrame([{"notebook": k, "seconds": v} for k, v in sorted(timings.items())])
    return pd.concat([df, pd.DataFrame([{"notebook": "total", "seconds": round(df["seconds"].sum(), 1)}])])


def _provenance(profile: str) -> pd.DataFrame:
    rows = []
    out = results_dir(profile)
    for path in sorted(out.glob("train_*.json")):
        m = _read(path)
        p = m.get("provenance", {})
        rows.append({"run": path.stem, "git commit": p.get("git_commit"), "device": p.get("device"),
                     "world size": p.get("world_size"), "seed": p.get("seed"), "artifact": p.get("artifact_key"),
                     "torch / transformers": "{} / {}".format(p.get("packages", {}).get("torch"),
                                                              p.get("packages", {}).get("transformers"))})
    evals = [_read(p) for p in sorted(out.glob("eval_*.json"))]
    for model in dict.fromkeys(r["model"] for r in evals):
        mine = [r for r in evals if r["model"] == model]
        p = mine[0].get("provenance", {})
        rows.append({"run": f"eval {model} ({len(mine)} tasks)", "git commit": p.get("git_commit"),
                     "device": "-", "world size": 1, "seed": "-", "artifact": mine[0].get("model_hash"),
                     "torch / transformers": "{} / {}".format(p.get("packages", {}).get("torch"),
                                                              p.get("packages", {}).get("transformers"))})
    return pd.DataFrame(rows)


def _ordered_tables(profile: str) -> list[Path]:
    found = sorted(tables_dir(profile).glob("*.md"))
    rank = {p: next((i for i, prefix in enumerate(TABLE_ORDER) if p.stem.startswith(prefix)), len(TABLE_ORDER))
            for p in found}
    return sorted(found, key=lambda p: (rank[p], p.stem))


def build_report(profile: str) -> Path:
    """Write results/<profile>/REPORT.md from the run's files; returns its path."""
    root = repo_root()
    parts = [f"# Reproduction report: profile `{profile}`",
             (f"Generated by `qilin reproduce --profile {profile}` (or `qilin report --profile {profile}`) from the "
              "files of this run. Published numbers come from `results/paper/reference.json`, each with its source; "
              "every other number was computed by the run.")]
    if profile == "tiny":
        parts.append("The `tiny` profile trains a ~3.7M-parameter model on a knowledge base the repo generates: "
                     "its numbers show the pipeline and the knowledge-injection effects, they are not comparable "
                     "to the paper's 7B results. The `difference` column is there so the same report, run on the "
                     "`paper` profile, compares like with like.")
    timings = _timings(profile)
    if timings is not None:
        parts += ["## Wall time per notebook", markdown(timings)]
    comparison = paper_comparison(profile)
    if len(comparison):
        parts += ["## Published numbers beside ours",
                  "Our run on the right of each published number; an empty cell is a task this profile does not run.",
                  markdown(comparison)]
    parts.append("## Tables")
    for path in _ordered_tables(profile):
        parts += [f"### {path.stem}", path.read_text("utf-8").strip()]
    figures = sorted(figures_dir(profile).glob("*.png"))
    if figures:
        parts += ["## Figures", "\n".join(f"- [{p.stem}]({Path('..', '..', p.relative_to(root)).as_posix()})"
                                           for p in figures)]
    provenance = _provenance(profile)
    if len(provenance):
        parts += ["## Provenance", markdown(provenance)]
    return atomic_write_text(results_dir(profile) / REPORT_FILE, "\n\n".join(parts) + "\n")
