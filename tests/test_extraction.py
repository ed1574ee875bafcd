"""Answer extraction on crafted outputs: each parser's documented rules, and where the parsers disagree."""

import math

import pytest

from qilin_lib.data.chimed import mcq_response
from qilin_lib.evaluation.extraction import (
    NO_ANSWER,
    PARSERS,
    ceval_letter,
    cmexam_explanation,
    cmexam_letters,
    first_capital_run,
    parse,
    pubmedqa_label,
    qilin_ceval_letter,
    strict_letters,
)

OPTS = {"A": "肝炎", "B": "乙型肝炎", "C": "胃溃疡", "D": "心肌梗死", "E": "肺结核"}


@pytest.mark.parametrize("output, expected", [
    ("A", "A"),
    ("答案：B", "B"),
    ("AC", "AC"),
    ("A、C", "AC"),
    ("答案：A,C", "AC"),
    ("CA", "AC"),
    ("心肌梗死", "D"),                   # option text only
    ("我不知道", ""),                    # no answer
    ("CT示占位", "C"),                   # a letter inside a Latin word still counts
    ("答案：a", ""),                     # case-sensitive
    ("答案：Ｂ", ""),                     # full-width letters are not the ASCII letter
    ("乙型肝炎", "AB"),                  # "肝炎" is inside "乙型肝炎"
    ("答案：B\n解释：A和C都不对", "B"),  # with an explanation only the first line is searched
    ("B\nA和C都不对", "ABC"),            # without "解释" the whole output is searched
])
def test_cmexam_letters(output, expected):
    assert cmexam_letters(output, OPTS) == expected


def test_cmexam_matches_only_the_first_token_of_an_option_text():
    opts = {"A": "急性 胰腺炎", "B": "胆囊炎"}
    assert cmexam_letters("可能是急性发作", opts) == "A"   # "急性" alone matches, as in the original
    assert strict_letters("可能是急性发作", opts) == ""


@pytest.mark.parametrize("output, expected", [
    ("A", "A"),
    ("答案：B", "B"),
    ("AC", "AC"),
    ("A、C", "AC"),
    ("答案：A,C", "AC"),
    ("心肌梗死", "D"),
    ("我不知道", ""),
    ("CT示占位", ""),                    # "CT" is a word, not option C
    ("DNA检测阳性，答案：E", "E"),
    ("答案：a", ""),                     # lower case never counts
    ("答案：Ｂ", "B"),                    # full-width letters are NFKC-normalised
    ("乙型肝炎", "B"),                   # "肝炎" only inside the longer option text
    ("乙型肝炎和肝炎", "AB"),
    ("B，因为心肌梗死不符合", "B"),       # a letter wins over option texts
    ("答案：B\n解释：A和C都不对", "B"),
])
def test_strict_letters(output, expected):
    assert strict_letters(output, OPTS) == expected


def test_strict_ignores_letters_that_are_not_options():
    assert strict_letters("E", {"A": "x", "B": "y", "C": "z", "D": "w"}) == ""


@pytest.mark.parametrize("output, expected", [
    ("A", "A"),
    ("AC", "AC"),
    ("AC。解释：B不对", "AC"),             # first run only
    ("A、C", "A"),                       # the run stops at the separator
    ("CT示占位，答案：C", ""),             # the first run "CT" is not option letters -> never scores
    ("CA", ""),                          # not the sorted gold form -> never scores in the original
    ("让我们想想。所以答案是D。", "D"),
    ("心肌梗死", "D"),                   # no capitals: exactly one option text
    ("肝炎或胃溃疡", ""),                 # no capitals: two option texts
    ("我不知道", ""),
    ("答案：a", ""),
])
def test_first_capital_run(output, expected):
    assert first_capital_run(output, OPTS) == expected


CEVAL_OPTS = {"A": "阿司匹林", "B": "青霉素", "C": "胰岛素", "D": "肾上腺素"}


@pytest.mark.parametrize("output, expected", [
    ("B", "B"),
    ("答案是B", "B"),
    ("正确答案：C。", "C"),
    ("选项A正确", "A"),
    ("D是正确的", "D"),
    ("答案为C", "C"),
    ("选择D", "D"),
    ("分析A与B后，所以答案是C。", "C"),
    ("A和B都不对，答案为C", "C"),          # a pattern beats bare letters
    ("B是正确的，答案是A", "B"),           # patterns are tried in the original's order
    ("AB", ""),                           # two bare letters, no pattern
    ("应使用胰岛素", "C"),                 # option text, only when options are given
    ("答案：b", ""),
    ("我不知道", ""),
])
def test_ceval_letter(output, expected):
    assert ceval_letter(output, CEVAL_OPTS) == expected


def test_ceval_without_options_skips_the_text_step():
    assert ceval_letter("应使用胰岛素") == ""
    assert ceval_letter("胰岛素或青霉素", CEVAL_OPTS) == ""


def test_ceval_takes_the_last_so_the_answer_is_and_only_a_single_letter():
    """hkust-nlp/ceval code/evaluator_series/evaluators/chatglm.py (commit 67476547e83f441a70eeeee499f7ff2d7995635b)
    and Qilin-Med's copy both read:

        m = re.findall(r'所以答案是(.+?)。', gen_ans, re.M)
        if len(m) > 0 and m[-1] in self.choices:
            return m[-1], True

    with self.choices the list ['A', 'B', 'C', 'D']: the last match, compared as a whole element.
    """
    for parser in (ceval_letter, qilin_ceval_letter):
        assert parser("所以答案是A。再核对一遍，所以答案是B。", CEVAL_OPTS) == "B"      # the last, not the first
        assert parser("所以答案是B。又想了想，所以答案是BC。", CEVAL_OPTS) == "B"      # last is "BC": not a choice,
        # so the first pattern decides: "答案是([ABCD])" finds "答案是B" in the first sentence
        assert parser("所以答案是CD。", CEVAL_OPTS) == "C"                          # "CD" is no choice either
    assert first_capital_run("所以答案是A。再核对一遍，所以答案是B。", OPTS) == "B"


@pytest.mark.parametrize("output, hkust, qilin", [
    ("A或C？答：B", "", "B"),        # only Qilin-Med's extra pattern reads "答：B"; three bare letters otherwise
    ("答：D", "D", "D"),             # one bare letter: both (C-Eval by its single-letter step)
    ("答案：A，答：B", "A", "A"),     # "答案：X" is tried before "答：X"
    ("答：B，选择答案C", "C", "C"),    # "答案X" comes earlier in the list and matches inside "选择答案C"
    ("A或B？答：C", "", "C"),
])
def test_qilin_ceval_has_the_extra_answer_pattern(output, hkust, qilin):
    """williamliujl/Qilin-Med eval/C-Eval/evaluators/baichuan.py (commit dd1847c7bfcfdcfdb83af146fdf5d1d02f519ce1)
    lists C-Eval's patterns with one more line between the last two:

            r'答案：([ABCD])',
            r'答：([ABCD])',
            r'选择答案([ABCD])'
    """
    assert ceval_letter(output, CEVAL_OPTS) == hkust
    assert qilin_ceval_letter(output, CEVAL_OPTS) == qilin


@pytest.mark.parametrize("missing", [None, math.nan, float("nan")])
def test_an_output_that_is_not_a_string_is_no_answer_for_the_cmexam_parsers(missing):
    """williamliujl/CMExam src/evaluation/evaluate_lora_result.py (commit 0a2764aab47fd927c61c0ec5d73b7713a46e9e40),
    `parse_options` and `parse_explanations` both begin:

        if not isinstance(row['model_result'],str):
            return "无答案"

    (pandas reads an empty model_result cell back as NaN). The C-Eval-style parsers raise, as the
    `re.findall` their originals call first does.
    """
    assert cmexam_letters(missing, OPTS) == ""
    assert strict_letters(missing, OPTS) == ""
    assert cmexam_explanation(missing) == NO_ANSWER == "无答案"
    for name in ("first_run", "ceval", "ceval_qilin"):
        with pytest.raises(TypeError):
            parse(name, missing, OPTS)


@pytest.mark.parametrize("output, expected", [
    ("A\n解释:乙肝由乙型肝炎病毒引起。", "乙肝由乙型肝炎病毒引起。"),
    ("答案: B 乙型肝炎. \n 解释: 乙肝由病毒引起 ", "乙肝由病毒引起"),   # CMExam's own template 4, stripped
    ("解释:甲。\n解释:乙。", "甲。"),                  # split('解释:')[1]: up to the second marker
    ("A\n解释：全角冒号", "A\n解释：全角冒号"),          # full-width colon: no split, the whole output
    ("A\n解析：不是这个词", "A\n解析：不是这个词"),      # "解析" is not the marker
    ("A", "A"),
])
def test_cmexam_explanation(output, expected):
    """williamliujl/CMExam src/evaluation/evaluate_lora_result.py (commit 0a2764aab47fd927c61c0ec5d73b7713a46e9e40):

        if '解释:' not in row['model_result']:
            original_result = row['model_result']
        else:
            original_result = row['model_result'].split('解释:')[1].strip()
    """
    assert cmexam_explanation(output) == expected


def test_the_sft_answer_format_reads_back_through_cmexam_parsing():
    """What SFT teaches (`答案：X\n解释:...`) is what CMExam's script takes apart: the letters from the first
    line only (the explanation names other options) and the explanation after "解释:"."""
    item = {"answer": "B", "explanation": "A、C、D均不符合，乙型肝炎由HBV引起，故选B。"}
    response = mcq_response(item)
    assert cmexam_letters(response, OPTS) == "B"
    assert strict_letters(response, OPTS) == "B"
    assert cmexam_explanation(response) == item["explanation"]
    # the old "解析：" layout let the explanation's letters through to the answer
    assert cmexam_letters(response.replace("解释:", "解析："), OPTS) == "ABCD"


@pytest.mark.parametrize("output, expected", [
    ("Yes, because the trial showed benefit.", "yes"),
    ("maybe", "maybe"),
    ("The answer is no.", "no"),
    ("MAYBE: evidence is mixed", "maybe"),
    ("Not sure; nobody knows", ""),       # whole words only: "not", "nobody" are not "no"
    ("unknown", ""),
    ("No. Although yes in mice.", "no"),  # the first label word wins
])
def test_pubmedqa_label(output, expected):
    assert pubmedqa_label(output) == expected


def test_parsers_registry_and_parse():
    assert set(PARSERS) == {"cmexam", "strict", "first_run", "ceval", "ceval_qilin"}
    assert parse("cmexam", "CT", OPTS) == "C"
    assert parse("strict", "CT", OPTS) == ""
    assert parse("first_run", "CT", OPTS) == ""
    assert parse("ceval", "CT", OPTS) == "C"
    assert parse("ceval_qilin", "CT", OPTS) == "C"
    with pytest.raises(ValueError, match="unknown parser"):
        parse("nope", "A", OPTS)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_parser_returns_sorted_unique_option_letters(name):
    for output in ("A", "CA", "答案：C、A、C", "心肌梗死", "", "E", "no letters"):
        got = PARSERS[name](output, OPTS)
        assert got == "".join(sorted(set(got))) and set(got) <= OPTS.keys()
