"""Metrics (qilin_lib.evaluation.metrics) against independent implementations and hand arithmetic.

nltk corpus_bleu / corpus_gleu, rouge-score and scikit-learn are the independent references; where the
protocol deliberately differs from them (nmt's short-output denominators, shortest-reference brevity, n-gram
sets, beta = P/R) the difference itself is asserted, with the hand-computed value ours must give.
"""

from __future__ import annotations

import json
import math
import random
import subprocess
import sys

import pytest
from nltk.translate.bleu_score import corpus_bleu
from nltk.translate.gleu_score import corpus_gleu
from rouge_score import rouge_scorer
from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

from qilin_lib.evaluation.metrics import (
    METRIC_NAMES,
    METRICS_DIR,
    char_tokens,
    explanation_scores,
    generation_scores,
    jieba_tokens,
    label_scores,
    load_metric,
    mcq_scores,
)
from qilin_lib.evaluation.metrics.labels import NO_ANSWER, mcq_answer_scores
from qilin_lib.evaluation.metrics.text_overlap import (
    distinct,
    gleu,
    lcs_length,
    nmt_bleu,
    nmt_rouge,
)

BLEU_WEIGHTS = [(1.0,), (0.5, 0.5), (1 / 3, 1 / 3, 1 / 3), (0.25, 0.25, 0.25, 0.25)]

# Every output has >= 4 characters, one reference each: nmt and nltk must agree on BLEU-1..4.
LONG_PREDS = ["高血压病人应低盐饮食", "多喝热水注意休息", "建议到医院做胃镜检查", "可以服用布洛芬退热"]
LONG_REFS = ["高血压病人需要低盐低脂饮食", "多喝水好好休息", "建议做胃镜检查明确诊断", "可服用布洛芬"]


class _Chars:
    """rouge-score tokenizer: its default one deletes Chinese characters (DESIGN.md section 4)."""

    def tokenize(self, text: str) -> list[str]:
        return char_tokens(text)


def _chars(texts: list[str]) -> list[list[str]]:
    return [char_tokens(t) for t in texts]


# ---------------------------------------------------------------- tokenisers


def test_char_tokens_drop_whitespace_and_jieba_tokens_drop_whitespace_tokens():
    assert char_tokens("高 血压\n病\t人") == ["高", "血", "压", "病", "人"]
    words = jieba_tokens("高血压 病人应当 低盐饮食")
    assert all(w.strip() == w and w for w in words)
    assert "".join(words) == "高血压病人应当低盐饮食"
    assert len(words) < len("高血压病人应当低盐饮食")  # words, not characters


# ---------------------------------------------------------------- BLEU


def test_bleu_matches_nltk_corpus_bleu_when_every_output_has_at_least_four_tokens():
    preds, refs = _chars(LONG_PREDS), [[r] for r in _chars(LONG_REFS)]
    ours = nmt_bleu(preds, refs)
    nltk_scores = corpus_bleu(refs, preds, weights=BLEU_WEIGHTS)
    for n, expected in enumerate(nltk_scores, start=1):
        assert ours[f"bleu_{n}"] == pytest.approx(100 * expected, abs=1e-6)
    assert 0 < ours["bleu_4"] < ours["bleu_1"] < 100


def test_bleu_short_output_follows_nmt_and_differs_from_nltk():
    # refs "头痛发热三天了" (7), "多喝水" (3); outputs "头痛发热三天" (6), "喝水" (2).
    # Every n-gram of both outputs is in its reference. "喝水" has no 3- or 4-gram: nmt adds nothing to those
    # denominators (p3 = 4/4, p4 = 3/3), nltk adds 1 (p3 = 4/5, p4 = 3/4). c = 8, r = 10: bp = exp(-0.25).
    preds, refs = _chars(["头痛发热三天", "喝水"]), [[r] for r in _chars(["头痛发热三天了", "多喝水"])]
    ours = nmt_bleu(preds, refs)
    bp = math.exp(1 - 10 / 8)
    assert ours["brevity_penalty"] == pytest.approx(bp)
    assert ours["bleu_4"] == pytest.approx(100 * bp)
    nltk_scores = corpus_bleu(refs, preds, weights=BLEU_WEIGHTS)
    assert 100 * nltk_scores[3] == pytest.approx(100 * bp * (0.8 * 0.75) ** 0.25)
    assert ours["bleu_4"] - 100 * nltk_scores[3] > 8
    # Orders both outputs reach agree with nltk.
    assert ours["bleu_2"] == pytest.approx(100 * nltk_scores[1], abs=1e-6)


def test_bleu_zero_precision_gives_exactly_zero_without_smoothing():
    # "发热头痛" vs "头痛发热": p1 = 4/4, p2 = 2/3 (发热, 头痛 match; 热头 does not), p3 = 0/2, p4 = 0/1.
    ours = nmt_bleu([char_tokens("发热头痛")], [[char_tokens("头痛发热")]])
    assert ours["bleu_1"] == pytest.approx(100.0)
    assert ours["bleu_2"] == pytest.approx(100 * math.sqrt(2 / 3))
    assert ours["bleu_3"] == 0.0 and ours["bleu_4"] == 0.0


def test_bleu_brevity_penalty_applies_only_to_short_outputs():
    short = nmt_bleu([char_tokens("高血压")], [[char_tokens("高血压病人")]])
    assert short["bleu_1"] == pytest.approx(100 * math.exp(1 - 5 / 3))  # p1 = 1, c = 3 < r = 5
    long = nmt_bleu([char_tokens("高血压病人")], [[char_tokens("高血压")]])
    assert long["brevity_penalty"] == 1.0 and long["bleu_1"] == pytest.approx(60.0)  # p1 = 3/5


def test_bleu_multiple_references_clip_by_max_count_and_use_the_shortest_length():
    # Output "好好好休息" (5) against "好休息" (3) and "好好休息吧呀" (6): 好 is clipped to 2 (its count in the
    # second reference), so p1 = 4/5. nmt's r is the shortest reference (3 < 5: bp = 1); nltk's is the
    # closest one (6: bp = exp(1 - 6/5)).
    preds = [char_tokens("好好好休息")]
    refs = [[char_tokens("好休息"), char_tokens("好好休息吧呀")]]
    ours = nmt_bleu(preds, refs)
    assert ours["brevity_penalty"] == 1.0
    assert ours["bleu_1"] == pytest.approx(80.0)
    assert 100 * corpus_bleu(refs, preds, weights=(1.0,)) == pytest.approx(80 * math.exp(1 - 6 / 5))


def test_bleu_module_round_trips_multiple_references_through_evaluate():
    preds = _chars(LONG_PREDS)
    refs = [[r, char_tokens("多喝水")] for r in _chars(LONG_REFS)]
    assert load_metric("nmt_bleu").compute(predictions=preds, references=refs) == pytest.approx(nmt_bleu(preds, refs))


# ---------------------------------------------------------------- ROUGE


def test_rouge_hand_computed_on_a_chinese_pair():
    # Pair 1: "头痛头晕" vs "头痛发热三天".
    #   ROUGE-1 sets: {头,痛,晕} (3) & {头,痛,发,热,三,天} (6) = 2 -> P = 2/3, R = 1/3, F = 2(2/9)/1 = 4/9.
    #   ROUGE-2 sets: {头痛,痛头,头晕} (3) & {头痛,痛发,发热,热三,三天} (5) = 1 -> P = 1/3, R = 1/5,
    #     F = 2(1/15)/(8/15) = 1/4.
    #   ROUGE-L: LCS = 2 (头痛) -> R = 2/6, P = 2/4, beta = P/R = 3/2,
    #     F = (1 + 9/4)(1/3)(1/2) / (1/3 + (9/4)(1/2)) = (13/24)/(35/24) = 13/35.
    # Pair 2: "多喝水" vs "多喝水": every F = 1. Each score is the mean over the two pairs, x100.
    scores = nmt_rouge(_chars(["头痛头晕", "多喝水"]), _chars(["头痛发热三天", "多喝水"]))
    assert scores["rouge_1"] == pytest.approx(100 * (4 / 9 + 1) / 2, abs=1e-5)
    assert scores["rouge_2"] == pytest.approx(100 * (1 / 4 + 1) / 2, abs=1e-5)
    assert scores["rouge_l"] == pytest.approx(100 * (13 / 35 + 1) / 2, abs=1e-5)


def test_rouge_1_equals_rouge_score_without_repeats_and_differs_with_them():
    scorer = rouge_scorer.RougeScorer(["rouge1", "rougeL"], tokenizer=_Chars())
    # No repeated character: n-gram sets are the multisets, so nmt and rouge-score agree on ROUGE-1.
    pred, ref = "头痛发热", "发热三天头痛"
    assert nmt_rouge([char_tokens(pred)], [char_tokens(ref)])["rouge_1"] == pytest.approx(
        100 * scorer.score(ref, pred)["rouge1"].fmeasure, abs=1e-5
    )
    # "头" twice: rouge-score counts it (P = 2/4, F = 0.4), nmt's set does not (P = 2/3, F = 4/9); its
    # ROUGE-L uses beta = 1 (F = 0.4) where nmt's beta = P/R gives 13/35.
    pred, ref = "头痛头晕", "头痛发热三天"
    ours = nmt_rouge([char_tokens(pred)], [char_tokens(ref)])
    theirs = scorer.score(ref, pred)
    assert theirs["rouge1"].fmeasure == pytest.approx(0.4)
    assert ours["rouge_1"] == pytest.approx(100 * 4 / 9, abs=1e-5)
    assert theirs["rougeL"].fmeasure == pytest.approx(0.4)
    assert ours["rouge_l"] == pytest.approx(100 * 13 / 35, abs=1e-5)


def test_lcs_length_matches_rouge_score_lcs_on_random_strings():
    # rouge-score's rougeL precision is LCS / len(prediction): an independent LCS to check ours against.
    scorer = rouge_scorer.RougeScorer(["rougeL"], tokenizer=_Chars())
    rng = random.Random(0)
    alphabet = "头痛发热多喝水休息"
    for _ in range(200):
        pred = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 80)))
        ref = "".join(rng.choice(alphabet) for _ in range(rng.randint(1, 80)))
        expected = round(scorer.score(ref, pred)["rougeL"].precision * len(pred))
        assert lcs_length(char_tokens(pred), char_tokens(ref)) == expected


def test_rouge_empty_output_is_scored_as_nmt_scores_an_empty_string():
    # nmt splits "" into the one word "": 0 against a real reference, and ROUGE-1/L of about 1 (ROUGE-2 0:
    # no bigram) when the reference is empty too; never a division by zero.
    scores = nmt_rouge([[], []], [char_tokens("多喝水"), []])
    assert scores["rouge_1"] == pytest.approx(50.0, abs=1e-5)
    assert scores["rouge_2"] == 0.0
    assert scores["rouge_l"] == pytest.approx(50.0, abs=1e-5)


# ---------------------------------------------------------------- GLEU, Distinct


def test_gleu_is_nltk_corpus_gleu_x100():
    preds = _chars(LONG_PREDS)
    refs = [[r, char_tokens("注意休息")] for r in _chars(LONG_REFS)]
    expected = corpus_gleu(refs, preds, min_len=1, max_len=4)
    assert gleu(preds, refs)["gleu"] == pytest.approx(100 * expected)
    assert 0 < expected < 1
    assert load_metric("gleu").compute(predictions=preds, references=refs)["gleu"] == pytest.approx(100 * expected)


def test_distinct_is_averaged_per_output_and_outputs_without_ngrams_count_zero():
    # "好好休息": unigrams 3 distinct / 4, bigrams 好好 好休 休息 3/3.
    # "多喝水水水": unigrams 3/5, bigrams 多喝 喝水 水水 水水 -> 3/4.
    # "嗯": unigrams 1/1, no bigram -> 0.
    scores = distinct(_chars(["好好休息", "多喝水水水", "嗯"]))
    assert scores["distinct_1"] == pytest.approx((3 / 4 + 3 / 5 + 1) / 3)
    assert scores["distinct_2"] == pytest.approx((1 + 3 / 4 + 0) / 3)
    assert distinct([[], char_tokens("好好")])["distinct_1"] == pytest.approx((0 + 1 / 2) / 2)
    pooled_1 = 7 / 10  # 7 distinct characters in 10: pooling over the corpus, which DESIGN.md rules out
    assert scores["distinct_1"] != pytest.approx(pooled_1)


# ---------------------------------------------------------------- answer labels


# CMExam's own sklearn call below keeps its default zero_division, which warns for unpredicted classes.
@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_mcq_accuracy_and_weighted_f1_match_sklearn_with_no_answer_wrong():
    golds = ["A", "B", "C", "AB", "ACD", "B", "E"]
    preds = ["A", "C", "C", "AB", "", "B", "AE"]
    scores = mcq_scores(golds, preds)
    assert scores["accuracy"] == pytest.approx(100 * 4 / 7)
    labelled = [p or NO_ANSWER for p in preds]
    assert scores["weighted_f1"] == pytest.approx(100 * f1_score(golds, labelled, average="weighted"))
    # CMExam's own call, with another name for "no answer": the label's name cannot matter.
    cmexam_f1 = precision_recall_fscore_support(golds, [p or "no answer" for p in preds], average="weighted")[2]
    assert scores["weighted_f1"] == pytest.approx(100 * cmexam_f1)
    assert mcq_answer_scores(golds, [None if p == "" else p for p in preds]) == pytest.approx(scores)
    with pytest.raises(ValueError, match="gold"):
        mcq_answer_scores(["A", ""], ["A", "B"])


def _pubmedqa_evaluation_py(truth: list[str], preds: list[str]) -> tuple[float, float]:
    """PubMedQA's own scorer, pubmedqa/pubmedqa evaluation.py (commit 3e7616d288b52edaf38f5fd5c59821c7806bde86),
    on label lists instead of its JSON files:

        acc = accuracy_score(truth, preds)
        maf = f1_score(truth, preds, average='macro')
    """
    return accuracy_score(truth, preds), f1_score(truth, preds, average="macro")


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_pubmedqa_macro_f1_is_the_official_scorers_with_an_unparsed_answer_as_one_more_label():
    """The official script needs one prediction per PMID, so an unparsed answer is written as some string
    outside yes/no/maybe: one extra label, F1 0, and the macro average runs over four labels."""
    golds = ["yes", "no", "maybe", "yes", "no", "yes"]
    preds = ["yes", "no", "maybe", "no", "", ""]        # "" = nothing parsed
    scores = label_scores(golds, preds)
    # Hand arithmetic. yes: TP 1, FN 2 -> F1 2/4; no: TP 1, FP 1, FN 1 -> 1/2; maybe: 1; unparsed: 0.
    assert scores["macro_f1_fixed_labels"] == pytest.approx(100 * 2 / 3)
    assert scores["macro_f1"] == pytest.approx(100 * 2 / 4)    # the fixed-label value x 3/4
    assert scores["accuracy"] == pytest.approx(50.0)
    for placeholder in ("", "unknown", "无答案"):              # whatever the JSON says, one label: same value
        acc, maf = _pubmedqa_evaluation_py(golds, [p or placeholder for p in preds])
        assert (scores["accuracy"], scores["macro_f1"]) == pytest.approx((100 * acc, 100 * maf))
    assert label_scores(golds, [p or None for p in preds]) == pytest.approx(scores)


@pytest.mark.filterwarnings("ignore::sklearn.exceptions.UndefinedMetricWarning")
def test_pubmedqa_macro_f1_averages_only_the_labels_present_and_the_fixed_variant_all_three():
    golds = ["yes", "no", "yes", "no", "yes"]
    preds = ["yes", "no", "no", "no", "yes"]           # "maybe" in neither golds nor predictions
    scores = label_scores(golds, preds)
    # yes: TP 2, FN 1 -> 4/5; no: TP 2, FP 1 -> 4/5. Official: mean of two; fixed: maybe counts as 0.
    assert scores["macro_f1"] == pytest.approx(80.0)
    assert scores["macro_f1_fixed_labels"] == pytest.approx(100 * 1.6 / 3)
    assert scores["macro_f1"] == pytest.approx(100 * _pubmedqa_evaluation_py(golds, preds)[1])
    expected = f1_score(golds, preds, labels=["yes", "no", "maybe"], average="macro", zero_division=0)
    assert scores["macro_f1_fixed_labels"] == pytest.approx(100 * expected)
    # A label predicted but never gold ("maybe" here) is averaged in both, with F1 0.
    assert label_scores(["yes", "no"], ["yes", "maybe"])["macro_f1"] == pytest.approx(100 / 3)
    with pytest.raises(ValueError, match="not among"):
        label_scores(["yes", "unsure"], ["yes", "no"])


# ---------------------------------------------------------------- benchmark entry points


def test_generation_scores_are_the_huatuo_columns_on_characters():
    scores = generation_scores(LONG_PREDS, LONG_REFS)
    assert list(scores) == ["bleu_1", "bleu_2", "bleu_3", "bleu_4", "gleu", "rouge_1", "rouge_2", "rouge_l",
                            "distinct_1", "distinct_2"]
    preds, refs = _chars(LONG_PREDS), _chars(LONG_REFS)
    bleu = corpus_bleu([[r] for r in refs], preds, weights=BLEU_WEIGHTS)
    assert [scores[f"bleu_{n}"] for n in range(1, 5)] == pytest.approx([100 * b for b in bleu], abs=1e-6)
    assert scores["gleu"] == pytest.approx(100 * corpus_gleu([[r] for r in refs], preds))
    assert {k: scores[k] for k in ("rouge_1", "rouge_2", "rouge_l")} == pytest.approx(nmt_rouge(preds, refs))
    assert scores["distinct_1"] == pytest.approx(distinct(preds)["distinct_1"])
    with pytest.raises(ValueError, match="tokenizer"):
        generation_scores(LONG_PREDS, LONG_REFS, tokenizer="bpe")


def test_explanation_scores_use_jieba_for_bleu_and_characters_for_rouge():
    scores = explanation_scores(LONG_PREDS, LONG_REFS)
    assert set(scores) == {"bleu_1", "bleu_4", "rouge_1", "rouge_2", "rouge_l"}
    word_preds, word_refs = [jieba_tokens(t) for t in LONG_PREDS], [[jieba_tokens(t)] for t in LONG_REFS]
    expected_bleu_1 = 100 * corpus_bleu(word_refs, word_preds, weights=(1.0,))
    assert scores["bleu_1"] == pytest.approx(expected_bleu_1, abs=1e-6)
    assert scores["bleu_1"] != pytest.approx(generation_scores(LONG_PREDS, LONG_REFS)["bleu_1"])
    assert scores["rouge_l"] == pytest.approx(nmt_rouge(_chars(LONG_PREDS), _chars(LONG_REFS))["rouge_l"])


def test_empty_corpus_is_an_error_not_a_nan():
    with pytest.raises(ValueError, match="no predictions"):
        nmt_bleu([], [])
    with pytest.raises(ValueError, match="no predictions"):
        nmt_rouge([], [])


def test_load_metric_caches_modules_and_rejects_unknown_names():
    assert load_metric("distinct") is load_metric("distinct")
    with pytest.raises(ValueError, match="unknown metric"):
        load_metric("bleu")


def test_every_module_loads_and_computes_offline_from_a_fresh_cache(tmp_path, monkeypatch):
    # A fresh HF_HOME means nothing cached to fall back on; the offline switches plus a dead proxy make any
    # network attempt fail. evaluate reads these at import, hence a new interpreter.
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    for var in ("HF_HUB_OFFLINE", "HF_EVALUATE_OFFLINE", "HF_DATASETS_OFFLINE"):
        monkeypatch.setenv(var, "1")
    for var in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy"):
        monkeypatch.setenv(var, "http://127.0.0.1:9")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    script = (
        "import json\n"
        "from qilin_lib.evaluation.metrics import METRIC_NAMES, load_metric, generation_scores, mcq_scores\n"
        "names = [load_metric(n).name for n in METRIC_NAMES]\n"
        "print(json.dumps({'names': names, 'gen': generation_scores(['多喝水'], ['多喝水']),"
        " 'mcq': mcq_scores(['A'], ['A'])}))\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], check=False, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["names"] == list(METRIC_NAMES)
    assert out["gen"]["bleu_1"] == pytest.approx(100.0) and out["gen"]["gleu"] == pytest.approx(100.0)
    assert out["mcq"] == {"accuracy": 100.0, "weighted_f1": 100.0}
    cached = {p.stem for p in (tmp_path / "hf" / "modules").rglob("*.py") if p.name != "__init__.py"}
    assert set(METRIC_NAMES) <= cached


def test_every_module_takes_its_info_from_the_template_and_evaluate_finds_its_own_class():
    """One template (metrics/template.py) instead of six copies of MetricInfo; evaluate.load must still pick
    the module's own Metric class (the first subclass in the module), never something it imports."""
    from qilin_lib.evaluation.metrics.template import FEATURES

    for name in METRIC_NAMES:
        source = (METRICS_DIR / name / f"{name}.py").read_text("utf-8")
        assert "return metric_info(" in source and "evaluate.MetricInfo(" not in source, name
        module = load_metric(name)
        assert type(module).__module__.split(".")[-1] == name
        assert set(module.features) in [set(f) for f in FEATURES.values()], name
