"""Case studies (notebook 06, the paper's Figures 2-3): the same dialogue and exam questions answered by
every stage side by side.

    cases = case_studies(cfg)          # one row per (case, model): question, reference, answer, score
    table = side_by_side(cases)        # one row per case, one answer column per model

Cases are the first items of each group (tiny: taught and control diseases) of the Huatuo-style dialogue
set and the CMExam-style exam set, so the same questions appear in every run. Each answer is greedy, in
the prompt format notebook 05 scores; its score is exam: 100 when the CMExam parser reads the gold letter
set, else 0; dialogue: character ROUGE-1 against the reference answer (nmt definition, x100).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..cache import atomic_write_json
from ..paths import figures_dir, results_dir
from .benchmarks import load_benchmark
from .extraction import cmexam_letters
from .metrics.text_overlap import nmt_rouge
from .metrics.tokens import char_tokens
from .runner import scorer_for, stage_models

CASES_FILE = "case_studies.json"


def pick_cases(items: list[dict], per_group: int) -> list[dict]:
    """The first `per_group` items of every group (all items form one group when none is set)."""
    groups: dict[str, list[dict]] = {}
    for it in items:
        bucket = groups.setdefault(it.get("group") or "all", [])
        if len(bucket) < per_group:
            bucket.append(it)
    return [it for bucket in groups.values() for it in bucket]


def case_studies(cfg, per_group: int = 2, max_new_tokens: int = 48, progress: bool = False) -> list[dict]:
    """Answers of every existing stage to the chosen cases; written to results/<profile>/case_studies.json."""
    exam_bench, dialogue_bench = load_benchmark(cfg, "cmexam"), load_benchmark(cfg, "huatuo26m")
    exam, dialogue = pick_cases(exam_bench.items, per_group), pick_cases(dialogue_bench.items, per_group)
    rows = []
    for model in stage_models(cfg):
        scorer = scorer_for(cfg, model, progress)
        prompts = [exam_bench.prompt(it) for it in exam] + [dialogue_bench.prompt(it) for it in dialogue]
        answers = scorer.generate([scorer.context(p) for p in prompts], max_new_tokens, desc=f"cases {model.name}")
        for it, answer in zip(exam, answers[: len(exam)]):
            letters = cmexam_letters(answer, it["options"])
            rows.append(_row("exam", it, model.name, exam_bench.prompt(it), it["answer"], answer,
                             100.0 * (letters == it["answer"]), letters))
        for it, answer in zip(dialogue, answers[len(exam):]):
            rouge = nmt_rouge([char_tokens(answer)], [char_tokens(it["answer"])])["rouge_1"]
            rows.append(_row("dialogue", it, model.name, it["question"], it["answer"], answer, rouge, ""))
    atomic_write_json(results_dir(cfg.name) / CASES_FILE, rows)
    return rows


def _row(kind: str, item: dict, model: str, question: str, reference: str, answer: str, score: float,
         parsed: str) -> dict:
    return {"case": f"{kind}:{item['id']}", "kind": kind, "group": item.get("group", ""), "model": model,
            "question": question, "reference": reference, "answer": answer, "parsed": parsed,
            "score": round(float(score), 2)}


def side_by_side(rows: list[dict]) -> pd.DataFrame:
    """One row per case: the question, the reference and each model's answer in pipeline order."""
    df = pd.DataFrame(rows)
    models = list(dict.fromkeys(df["model"]))
    wide = df.pivot(index="case", columns="model", values="answer")[models]
    first = df.drop_duplicates("case").set_index("case")[["kind", "group", "question", "reference"]]
    return first.join(wide).loc[list(dict.fromkeys(df["case"]))].reset_index()


def plot_cases(rows: list[dict], profile: str) -> Path:
    """figures/<profile>/case_studies.png: each case's score per stage (exam: correct or not; dialogue:
    ROUGE-1). The answers themselves are in the table: the figure keeps to ASCII labels because a CPU
    machine without CJK fonts would draw Chinese text as empty boxes."""
    from .. import plots

    df = pd.DataFrame(rows)
    models = list(dict.fromkeys(df["model"]))
    cases = list(dict.fromkeys(df["case"]))
    grid = df.pivot(index="case", columns="model", values="score").loc[cases, models]
    plots.plt.rcParams.update(plots.STYLE)
    fig, ax = plots.plt.subplots(figsize=(1.2 * len(models) + 3, 0.42 * len(cases) + 1.2))
    ax.imshow(grid.to_numpy(), cmap="Blues", vmin=0, vmax=100, aspect="auto")
    labels = [f"{c} ({g})" if g else c for c, g in zip(cases, df.drop_duplicates("case")["group"])]
    ax.set_xticks(range(len(models)), models)
    ax.set_yticks(range(len(cases)), labels)
    ax.grid(False)
    for i, case in enumerate(cases):
        for j, model in enumerate(models):
            value = grid.loc[case, model]
            ax.text(j, i, f"{value:.0f}", ha="center", va="center", fontsize=8,
                    color="white" if value > 60 else "black")
    ax.set_title(f"Case studies ({profile}): exam 100 = correct, dialogue = ROUGE-1 (chars)")
    return plots.save(fig, figures_dir(profile), "case_studies")
