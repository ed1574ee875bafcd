"""95% intervals (qilin_lib.evaluation.intervals): hand-computable Wilson bounds, the bootstrap's
determinism under its seed, degenerate and invalid inputs, and that every bootstrapped metric recomputed
from per-item statistics with unit weights equals the metric itself."""

import math
import random

import numpy as np
import pytest
from sklearn.metrics import f1_score

from qilin_lib.evaluation import intervals as iv
from qilin_lib.evaluation.metrics import char_tokens, generation_scores, jieba_tokens, explanation_scores

SPEC = iv.IntervalSpec(resamples=400, seed=7)


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
