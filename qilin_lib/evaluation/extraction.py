"""Answer extraction: turn a model's generated text into the option letters it chose.

Which parser produced a published number changes it by points, so each rule is a pure function named
after the code it reproduces, and every table names its parser (DESIGN.md section 4). All multiple-choice
parsers take the option dict `{"A": "text", ...}` and return the predicted letters as a sorted string of
unique letters; "" means no answer (the originals' "无答案" / "-"), which never equals a gold answer.

    cmexam       CMExam's own parser: every option whose letter or text occurs anywhere ("CT" counts as C)
    strict       ours: standalone option letters only, option texts only when no letter is found
    first_run    Qilin-Med's CMExam script: the first run of capital letters
    ceval        C-Eval's generation-mode regexes (one letter A-D)
    ceval_qilin  Qilin-Med's C-Eval script: the same plus its extra "答：X" pattern

An output that is not a string (None, a pandas NaN read back from a CSV) is no answer ("") for `cmexam` and
`strict`, as in CMExam's script; `first_run`, `ceval` and `ceval_qilin` raise TypeError on it, as the
`re.findall` of their originals does.

`cmexam_explanation` cuts the explanation out of a CMExam answer as CMExam's script does (at "解释:"), and
`pubmedqa_label` maps free text to yes / no / maybe.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Callable, Iterable

Options = dict[str, str]
NO_ANSWER = "无答案"  # CMExam's name for a missing answer or explanation


def _letters(found: Iterable[str]) -> str:
    return "".join(sorted(set(found)))


def _head(text: str) -> str:
    """First whitespace token of an option's text: the CMExam and Qilin-Med scripts rebuild options from
    'A xxx' lines with `op.split()[1]`, so only this token is ever matched ("" for an empty option)."""
    parts = text.split()
    return parts[0] if parts else ""


def cmexam_letters(output: str, options: Options) -> str:
    """CMExam's parser, reproduced from williamliujl/CMExam src/evaluation/evaluate_lora_result.py
    `parse_options` (commit 0a2764aab47fd927c61c0ec5d73b7713a46e9e40), the script that scores its LoRA models.

    1. If the output contains "解释" (the prompt asks for "答案：...\\n解释：..."), only its first line, stripped,
       is searched; otherwise the whole output.
    2. An option counts when its letter occurs anywhere in that text (plain, case-sensitive substring: "CT"
       counts as C, "a" and full-width "Ａ" count as nothing) or when the first whitespace token of its text
       does (see `_head`).
    3. Nothing counted -> "" (the original's "无答案").
    0. An output that is not a string (None, NaN) -> "" first: `if not isinstance(row['model_result'],str):
       return "无答案"`.

    Only deviation: an empty option text is skipped (the original would raise IndexError on it).
    """
    if not isinstance(output, str):
        return ""
    text = output.split("\n")[0].strip() if "解释" in output else output
    found = [letter for letter, body in options.items() if letter in text or (_head(body) and _head(body) in text)]
    return _letters(found)


_LATIN_RUN = re.compile(r"[A-Za-z]+")


def strict_letters(output: str, options: Options) -> str:
    """Our stricter parser (no original; DESIGN.md asks for one beside CMExam's).

    1. Output and option texts are NFKC-normalised, so full-width letters ("Ａ") become ASCII.
    2. The "解释" rule of `cmexam_letters` applies (first line only when an explanation follows).
    3. Letters: every maximal run of Latin letters that consists only of upper-case option letters counts
       letter by letter ("A", "AC", "A、C", "答案：A,C"); a run with any other letter is a word and counts
       nothing ("CT", "DNA", "Cancer"), and lower-case letters never count.
    4. Only when no letter was found: every option whose whole text occurs in the output counts, longest
       texts first, each match blanked out so that a text found only inside a longer option's text
       ("肝炎" inside "乙型肝炎") does not count.
    5. Nothing counted -> "".
    An output that is not a string (None, NaN) is no answer, as in `cmexam_letters`.
    """
    if not isinstance(output, str):
        return ""
    output = unicodedata.normalize("NFKC", output)
    text = output.split("\n")[0].strip() if "解释" in output else output
    found = [c for run in _LATIN_RUN.findall(text) if set(run) <= options.keys() for c in run]
    if found:
        return _letters(found)
    for letter, body in sorted(options.items(), key=lambda kv: -len(kv[1])):
        body = unicodedata.normalize("NFKC", body).strip()
        if body and body in text:
            found.append(letter)
            text = text.replace(body, "\0")
    return _letters(found)


_CAPITAL_RUN = re.compile(r"[A-Z]+")
_SO_THE_ANSWER_IS = re.compile(r"所以答案是(.+?)。")


def first_capital_run(output: str, options: Options) -> str:
    """Qilin-Med's CMExam parser, reproduced from williamliujl/Qilin-Med eval/CMExam/evaluators/baichuan.py
    `extract_cot_answer` (commit dd1847c7bfcfdcfdb83af146fdf5d1d02f519ce1), in order:

    1. The last "所以答案是X。" whose X is a single option letter (the original's choices are A-E, the
       CMExam option letters) -> X.
    2. Else the first run of ASCII capitals anywhere (`[A-Z]+`). The original returns the raw run and
       compares it with the gold string, so a run that is not a sorted set of option letters ("CT", "DNA",
       "CA", "AA") can never score; we return "" for such a run, which scores identically.
    3. (The original's "exactly one of [ABCDE]" step cannot fire after step 2 failed, so it is left out.)
    4. Else, when exactly one option's text (first whitespace token, see `_head`) occurs -> that letter.
    5. Else "" (the original's "-").
    """
    said = _SO_THE_ANSWER_IS.findall(output)
    if said and said[-1] in options:
        return said[-1]
    run = _CAPITAL_RUN.search(output)
    if run:
        letters = run.group(0)
        return letters if set(letters) <= options.keys() and letters == _letters(letters) else ""
    hits = [letter for letter, body in options.items() if _head(body) and _head(body) in output]
    return hits[0] if len(hits) == 1 else ""


# The originals test `m[-1] in self.choices` on the list ['A', 'B', 'C', 'D']: element equality, so
# "所以答案是BC。" does not count (a substring test on "ABCD" would let it through).
_CEVAL_CHOICES = ("A", "B", "C", "D")
_CEVAL_PATTERNS = (
    r"([ABCD])是正确的",
    r"选项([ABCD])正确",
    r"答案为([ABCD])",
    r"答案是([ABCD])",
    r"答案([ABCD])",
    r"选择([ABCD])",
    r"答案：([ABCD])",
    r"选择答案([ABCD])",
)
_CEVAL_REGEXES = [re.compile(p) for p in _CEVAL_PATTERNS]
# Qilin-Med's copy inserts "答：X" (its few-shot history is "问：...答：...") before the last pattern.
_QILIN_CEVAL_REGEXES = [re.compile(p) for p in (*_CEVAL_PATTERNS[:-1], r"答：([ABCD])", _CEVAL_PATTERNS[-1])]


def _ceval_extract(output: str, options: Options | None, patterns: list[re.Pattern]) -> str:
    said = _SO_THE_ANSWER_IS.findall(output)
    if said and said[-1] in _CEVAL_CHOICES:
        return said[-1]
    for pattern in patterns:
        match = pattern.search(output)
        if match:
            return match.group(1)
    singles = re.findall(r"[ABCD]", output)
    if len(singles) == 1:
        return singles[0]
    hits = [c for c in _CEVAL_CHOICES if options and options.get(c) and str(options[c]) in output]
    return hits[0] if len(hits) == 1 else ""


def ceval_letter(output: str, options: Options | None = None) -> str:
    """C-Eval's generation-mode extraction, reproduced from hkust-nlp/ceval
    code/evaluator_series/evaluators/chatglm.py `extract_cot_answer` (commit
    67476547e83f441a70eeeee499f7ff2d7995635b), which C-Eval applies to open models in answer-only mode too.

    1. The last "所以答案是X。" (`re.findall(r'所以答案是(.+?)。', ...)`, then `m[-1]`) when X is exactly one
       of A-D -> X; when the last one is anything else ("BC", "A，不对"), go on to step 2.
    2. Else the first of these patterns, in this order, that matches anywhere: "X是正确的", "选项X正确",
       "答案为X", "答案是X", "答案X", "选择X", "答案：X", "选择答案X" (X in A-D, ASCII, case-sensitive).
    3. Else, when exactly one character of A-D occurs in the whole output -> it.
    4. Else, when `options` is given and exactly one option's full text occurs -> its letter.
    5. Else "" (the original's "-").

    Only deviation: an empty option text is skipped in step 4 (the original would count it as present).
    A non-string output raises TypeError, as `re.findall` does in the original.
    """
    return _ceval_extract(output, options, _CEVAL_REGEXES)


def qilin_ceval_letter(output: str, options: Options | None = None) -> str:
    """Qilin-Med's C-Eval extraction, reproduced from williamliujl/Qilin-Med
    eval/C-Eval/evaluators/baichuan.py `extract_cot_answer` (commit dd1847c7bfcfdcfdb83af146fdf5d1d02f519ce1):
    `ceval_letter` with one more pattern, `r'答：([ABCD])'`, tried after "答案：X" and before "选择答案X".
    So "答：B" gives B here and "" in C-Eval's own code (two or more letters elsewhere: "A或C？答：B").
    """
    return _ceval_extract(output, options, _QILIN_CEVAL_REGEXES)


def cmexam_explanation(output: str) -> str:
    """The explanation part of a CMExam answer, reproduced from williamliujl/CMExam
    src/evaluation/evaluate_lora_result.py `parse_explanations` (commit 0a2764aab47fd927c61c0ec5d73b7713a46e9e40),
    the script that scores the explanations of its fine-tuned models (their training answers, template 4 of
    src/preprocess/prompt_templates.py, read "答案: {}. \\n 解释:{}"):

    1. Not a string (None, NaN) -> "无答案", which is then scored as the explanation text.
    2. No "解释:" (ASCII colon) in the output -> the whole output.
    3. Else `split('解释:')[1].strip()`: the text between the first "解释:" and the next one (or the end).

    The full-width "解释：" of the ChatGLM/GPT prompts does not split (those scripts cut with their own
    regexes at generation time); neither does "解析：".
    """
    if not isinstance(output, str):
        return NO_ANSWER
    return output.split("解释:")[1].strip() if "解释:" in output else output


_PUBMEDQA_LABEL = re.compile(r"\b(yes|no|maybe)\b", re.IGNORECASE)


def pubmedqa_label(output: str) -> str:
    """PubMedQA label: the first whole word yes / no / maybe, any case ("Yes, because..." -> "yes",
    "The answer is no." -> "no"); "" when none occurs ("unknown", "not sure").

    Not found as original code: PubMedQA's pubmedqa/pubmedqa evaluation.py (commit
    3e7616d288b52edaf38f5fd5c59821c7806bde86) scores a JSON of labels with sklearn accuracy and macro-F1 and
    extracts nothing, so this rule is ours; the first word wins because answers lead with their label.
    """
    match = _PUBMEDQA_LABEL.search(output)
    return match.group(1).lower() if match else ""


PARSERS: dict[str, Callable[[str, Options], str]] = {
    "cmexam": cmexam_letters,
    "strict": strict_letters,
    "first_run": first_capital_run,
    "ceval": ceval_letter,
    "ceval_qilin": qilin_ceval_letter,
}


def parse(name: str, output: str, options: Options) -> str:
    """Letters predicted by the multiple-choice parser `name` (a key of PARSERS)."""
    if name not in PARSERS:
        raise ValueError(f"unknown parser {name!r}; known: {sorted(PARSERS)}")
    return PARSERS[name](output, options)
