"""Answer extraction on crafted outputs: each parser's documented rules, and where the parsers disagree."""

import pytest

from qilin_lib.evaluation.extraction import (
    PARSERS,
    ceval_letter,
    cmexam_letters,
    first_capital_run,
    parse,
    pubmedqa_label,
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
    assert set(PARSERS) == {"cmexam", "strict", "first_run", "ceval"}
    assert parse("cmexam", "CT", OPTS) == "C"
    assert parse("strict", "CT", OPTS) == ""
    assert parse("first_run", "CT", OPTS) == ""
    assert parse("ceval", "CT", OPTS) == "C"
    with pytest.raises(ValueError, match="unknown parser"):
        parse("nope", "A", OPTS)


@pytest.mark.parametrize("name", sorted(PARSERS))
def test_every_parser_returns_sorted_unique_option_letters(name):
    for output in ("A", "CA", "答案：C、A、C", "心肌梗死", "", "E", "no letters"):
        got = PARSERS[name](output, OPTS)
        assert got == "".join(sorted(set(got))) and set(got) <= OPTS.keys()
