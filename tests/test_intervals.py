"""95% intervals (qilin_lib.evaluation.intervals): hand-computable Wilson bounds, the bootstrap's
determinism under its seed, degenerate and invalid inputs, and that every bootstrapped metric recomputed
from per-item statistics with unit weights equals the metric itself."""

import json
import math
import random
import shutil
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import f1_score

from qilin_lib.evaluation import intervals as iv
from qilin_lib.evaluation.metrics import (
    char_tokens,
    explanation_scores,
    generation_scores,
    jieba_tokens,
)

SPEC = iv.IntervalSpec(resamples=400, seed=7)
REFERENCE = Path(__file__).resolve().parents[1] / "results" / "paper" / "reference.json"


def test_wilson_matches_the_closed_form_by_hand():
    # 8 of 10, z = 1.96: centre (0.8 + 0.19208) / 1.38416, half 1.96/1.38416 * sqrt(0.016 + 0.009604)
    lo, hi = iv.wilson(8, 10, z=1.96)
    centre, half = 0.99208 / 1.38416, 1.96 / 1.38416 * math.sqrt(0.016 + 0.009604)
    assert (lo, hi) == pytest.approx((centre - half, centre + half))
    assert (round(lo, 4), round(hi, 4)) == (0.4902, 0.9433)  # the textbook value for 8/10


def test_wilson_keeps_a_width_at_zero_and_all_correct():
    lo, hi = iv.wilson(0, 10)
    assert lo == 0 and hi == pytest.approx(0.2775, abs=1e-4)  # the normal approximation would give [0, 0]
    lo, hi = iv.wilson(3, 3)
    assert hi == 1 and lo == pytest.approx(0.4385, abs=1e-4)
    assert iv.accuracy_interval([True] * 3) == pytest.approx([43.85, 100], abs=1e-2)


@pytest.mark.parametrize("bad", [lambda: iv.wilson(0, 0), lambda: iv.accuracy_interval([]),
                                 lambda: iv.wilson(5, 4), lambda: iv.resample_weights(0, SPEC),
                                 lambda: iv.paired_difference([], [], SPEC),
                                 lambda: iv.f1_interval([], [], "weighted", SPEC),
                                 lambda: iv.paired_difference([1.0, float("nan")], [0.0, 0.0], SPEC),
                                 lambda: iv.percentile_interval(np.array([1.0, np.nan]))])
def test_empty_and_nan_are_errors(bad):
    with pytest.raises(ValueError):
        bad()


def test_bootstrap_is_deterministic_under_its_seed_and_moves_with_it():
    rng = random.Random(1)
    x = [rng.random() for _ in range(50)]
    a = iv.paired_difference(x, [0.0] * 50, SPEC)
    assert a == iv.paired_difference(x, [0.0] * 50, SPEC)
    assert a != iv.paired_difference(x, [0.0] * 50, iv.IntervalSpec(400, seed=8))
    mean = 100 * sum(x) / 50
    assert a[0] < mean < a[1]


def test_all_correct_bootstrap_is_a_point_and_a_constant_difference_has_no_width():
    assert iv.f1_interval(["A", "B"] * 5, ["A", "B"] * 5, "weighted", SPEC) == [100.0, 100.0]
    assert iv.paired_difference([1] * 20, [1] * 20, SPEC) == [0.0, 0.0]
    assert not iv.excludes_zero([0.0, 0.0]) and iv.excludes_zero([0.5, 3.0]) and iv.excludes_zero([-2, -1])


def test_a_real_difference_is_outside_the_interval_and_noise_is_not():
    rng = random.Random(3)
    better = [1.0 if rng.random() < 0.9 else 0.0 for _ in range(200)]
    worse = [1.0 if rng.random() < 0.3 else 0.0 for _ in range(200)]
    assert iv.excludes_zero(iv.paired_difference(better, worse, SPEC))
    assert iv.excludes_zero(iv.independent_difference(better, worse, SPEC))
    assert not iv.excludes_zero(iv.independent_difference(better[:100], better[100:], SPEC))


@pytest.mark.parametrize("seed", range(5))
def test_unit_weights_reproduce_sklearn_f1(seed):
    rng = random.Random(seed)
    golds = [rng.choice(["A", "B", "AC", "D"]) for _ in range(40)]
    preds = [rng.choice(["A", "B", "AC", "E", ""]) for _ in range(40)]
    labelled = [p or "无答案" for p in preds]
    assert iv.f1_full_sample(golds, preds, "weighted") == pytest.approx(
        100 * f1_score(golds, labelled, average="weighted", zero_division=0))
    yn = [rng.choice(["yes", "no", "maybe"]) for _ in range(40)]
    yp = [rng.choice(["yes", "no", ""]) for _ in range(40)]
    assert iv.f1_full_sample(yn, yp, "macro", labels=("yes", "no", "maybe")) == pytest.approx(
        100 * f1_score(yn, yp, labels=["yes", "no", "maybe"], average="macro", zero_division=0))
    # PubMedQA's official macro-F1: over the labels present, an unparsed answer being one more label
    assert iv.f1_full_sample(yn, yp, "macro") == pytest.approx(
        100 * f1_score(yn, [p or "无答案" for p in yp], average="macro", zero_division=0))




def test_unit_weights_reproduce_every_generation_metric(monkeypatch):
    outputs = ["患者出现发热咳嗽，建议多喝水。", "", "高血压需要长期服药", "糖尿病", "建议就医检查血常规和胸片"]
    refs = ["发热咳嗽可能是感冒，多喝水休息。", "请及时就医。", "高血压患者需长期规律服药。", "糖尿病要控制饮食",
            "建议去医院做血常规检查"]
    # one "resample" that holds every item once: the bootstrap's statistic must be the metric itself
    monkeypatch.setattr(iv, "resample_weights", lambda n, spec: np.ones((1, n)))
    hyps, rfs = [char_tokens(t) for t in outputs], [char_tokens(t) for t in refs]
    scores = generation_scores(outputs, refs)
    got = iv.overlap_intervals(hyps, rfs, SPEC, list(scores))
    for key, value in scores.items():
        assert got[f"{key}_ci95"] == pytest.approx([value, value], abs=1e-9), key
    expl = explanation_scores(outputs, refs)
    got = iv.overlap_intervals([jieba_tokens(t) for t in outputs], [jieba_tokens(t) for t in refs], SPEC,
                               list(expl), rouge_tokens=(hyps, rfs))
    for key, value in expl.items():
        assert got[f"{key}_ci95"] == pytest.approx([value, value], abs=1e-9), key


def test_generation_intervals_contain_the_metric():
    rng = random.Random(0)
    alphabet = "发热咳嗽头痛高血压糖尿病建议就医检查"
    refs = ["".join(rng.choice(alphabet) for _ in range(20)) for _ in range(30)]
    outs = [r[:10] + "".join(rng.choice(alphabet) for _ in range(8)) for r in refs]
    scores = generation_scores(outs, refs)
    got = iv.overlap_intervals([char_tokens(t) for t in outs], [char_tokens(t) for t in refs], SPEC, list(scores))
    for key, value in scores.items():
        lo, hi = got[f"{key}_ci95"]
        assert lo <= value <= hi and lo < hi, key


# ------------------------------------------------------------------ the runner's metrics carry intervals
def _mcq(n: int = 40, seed: int = 0):
    rng = random.Random(seed)
    items = [{"id": f"q{i}", "options": {k: k for k in "ABCD"}, "group": "taught" if i % 4 else "control"}
             for i in range(n)]
    rows = [{"id": it["id"], "answer": rng.choice("ABCD"), "pred": rng.choice(["A", "B", "C", "D", ""])} for it in items]
    return items, rows


def test_mcq_metrics_carry_an_interval_beside_every_metric_overall_and_per_group():
    from qilin_lib.evaluation.task_metrics import mcq_metrics

    items, rows = _mcq()
    out = mcq_metrics(items, rows, intervals=SPEC)
    for block in (out, out["by_group"]["taught"], out["by_group"]["control"]):
        for key in ("accuracy", "weighted_f1"):
            lo, hi = block[f"{key}_ci95"]
            assert lo <= block[key] <= hi and hi - lo > 0
        correct = sum(r["answer"] == r["pred"] for r in rows) if block is out else None
        if correct is not None:
            assert block["accuracy_ci95"] == pytest.approx(iv.accuracy_interval([True] * correct + [False] * (40 - correct)))
    pubmed = [{"id": f"p{i}", "options": {"A": "yes", "B": "no", "C": "maybe"}} for i in range(30)]
    prs = [{"id": it["id"], "answer": "ABC"[i % 3], "pred": ["A", "B", ""][i % 2 + i % 5 // 4]} for i, it in enumerate(pubmed)]
    out = mcq_metrics(pubmed, prs, labels=True, intervals=SPEC)
    for key in ("macro_f1", "macro_f1_fixed_labels"):   # official and fixed-label macro-F1, each its own interval
        assert out[f"{key}_ci95"][0] <= out[key] <= out[f"{key}_ci95"][1]
    assert out["macro_f1"] != out["macro_f1_fixed_labels"]                 # unparsed answers: one more label officially


def test_qa_and_explanation_metrics_carry_an_interval_beside_every_metric():
    from qilin_lib.evaluation.task_metrics import explanation_metrics, text_metrics

    outs = ["患者发热咳嗽多喝水", "高血压要服药", "建议就医", "糖尿病控制饮食和运动"] * 3
    refs = ["发热咳嗽多喝水休息", "高血压需长期服药", "请及时就医检查", "糖尿病要控制饮食"] * 3
    for out in (text_metrics(outs, refs, SPEC), explanation_metrics(outs, refs, SPEC)):
        metrics = [k for k in out if not k.endswith("_ci95")]
        assert metrics and all(f"{k}_ci95" in out for k in metrics)
        assert all(out[f"{k}_ci95"][0] <= out[k] <= out[f"{k}_ci95"][1] for k in metrics)


# ---------------------------------------------------------------------------------------- tables
def _plant(root, model: str, task: str, metrics: dict, preds: list[dict]) -> None:
    out = root / "results" / "tiny"
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    (out / f"eval_{model}_{task}.json").write_text(json.dumps(
        {"model": model, "task": task, "metrics": metrics,
         "protocol": {"parsers": ["cmexam"], "intervals": SPEC.protocol()}}))
    (out / "predictions" / f"{model}_{task}.jsonl").write_text("\n".join(json.dumps(p) for p in preds) + "\n")


def test_tables_show_intervals_and_mark_differences_outside_them(tmp_path, monkeypatch):
    from qilin_lib.evaluation.results import LO, Results, display_frame
    from qilin_lib.evaluation.tables import knowledge_table, write_eval_tables
    from qilin_lib.evaluation.task_metrics import mcq_metrics

    monkeypatch.setenv("QILIN_ROOT", str(tmp_path))
    (tmp_path / "results" / "paper").mkdir(parents=True)
    shutil.copy(REFERENCE, tmp_path / "results" / "paper" / "reference.json")
    rng = random.Random(5)
    items = [{"id": f"q{i}", "options": {}, "group": "taught" if i < 60 else "control"} for i in range(90)]
    for model, p_taught in (("base", 0.25), ("dcpt", 0.9)):   # dcpt learnt the taught facts, not the control
        preds = []
        for mode in ("generate", "loglik", "cloze_sum", "cloze_token", "cloze_char", "cloze_calibrated"):
            rows = [{"mode": mode, "id": it["id"], "answer": "A", "group": it["group"],
                     "pred": "A" if rng.random() < (p_taught if it["group"] == "taught" else 0.25) else "B"}
                    for it in items]
            preds += rows
        metrics = {m: mcq_metrics(items, [r for r in preds if r["mode"] == m], intervals=SPEC)
                   for m in ("loglik", "cloze_sum", "cloze_token", "cloze_char", "cloze_calibrated")}
        metrics["generate"] = {"cmexam": mcq_metrics(items, [r for r in preds if r["mode"] == "generate"],
                                                     intervals=SPEC)}
        _plant(tmp_path, model, "cmexam", metrics, preds)

    table = knowledge_table(Results("tiny"), "cmexam")
    taught = table[(table["model"] == "dcpt") & (table["items"] == "taught")].iloc[0]
    assert taught[f"loglik{LO}"] < taught["loglik"] < taught["loglik ci95_hi"]
    diffs = table[table["items"].str.startswith("Δ")]
    assert set(diffs["items"]) == {"Δ taught − control", "Δ taught: dcpt − base", "Δ control: dcpt − base"}
    shown = display_frame(table)
    by_items = {(m, i): row for (m, i), row in zip(zip(table["model"], table["items"]), shown.to_dict("records"))}
    assert by_items[("dcpt", "Δ taught: dcpt − base")]["loglik"].endswith("*")       # +65 points: outside
    assert not by_items[("dcpt", "Δ control: dcpt − base")]["loglik"].endswith("*")  # same 25% rate: inside
    assert by_items[("dcpt", "taught")]["loglik"].count("[") == 1 and f"loglik{LO}" not in shown.columns

    paths = write_eval_tables("tiny")["eval_knowledge_cmexam"]
    csv_header = paths["csv"].read_text("utf-8").splitlines()[0].split(",")
    assert "loglik ci95_lo" in csv_header and "loglik ci95_hi" in csv_header
    md = paths["md"].read_text("utf-8")
    assert "* = the difference's 95% interval excludes 0" in md and " *" in md


def test_perplexity_interval_is_the_corpus_perplexity_at_unit_weights_and_contains_it(monkeypatch):
    nll, tokens = [12.0, 30.0, 7.5, 20.0, 3.0], [6, 10, 5, 8, 2]
    corpus = math.exp(sum(nll) / sum(tokens))
    lo, hi = iv.perplexity_interval(nll, tokens, SPEC)
    assert lo <= corpus <= hi and lo < hi
    with pytest.raises(ValueError):
        iv.perplexity_interval([1.0, float("nan")], [1, 1], SPEC)
    monkeypatch.setattr(iv, "resample_weights", lambda n, spec: np.ones((1, n)))
    assert iv.perplexity_interval(nll, tokens, SPEC) == pytest.approx([corpus, corpus])
