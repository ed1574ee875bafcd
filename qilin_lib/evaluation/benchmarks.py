"""The four benchmarks (DESIGN.md section 4), one small class each: where the items come from, the prompt,
and what is scored.

    bench = load_benchmark(cfg, "cmexam")     # tiny: the data stage's set; paper: the released test file
    bench.prompt(bench.items[0])              # the exact text the model sees (before chat wrapping)

Prompts:
- CMExam: question, one `A xxx` line per option, `答案：` (CMExam's own prompt layout).
- C-Eval: the answer-only prompt of C-Eval's evaluator: `以下是中国关于{科目}考试的单项选择题，请选出其中的
  正确答案。` then 5 dev shots `question / A. x / ... / 答案：X`, then the item ending in `答案：`.
- Huatuo-26M: the question alone (the test set has no instruction).
- PubMedQA (reasoning-required): the abstract's contexts, the question, the three labels as options
  `A yes / B no / C maybe` and `Answer:`; scored as a 3-option multiple-choice item whose gold letter is
  the label's, so that `loglik` and VoC apply unchanged and the metrics read labels again.

Sources per profile (`cfg.data.benchmarks`): the tiny profile reads the sets its data stage generated;
the other profiles name a local path or `hf://datasets/...` file per benchmark (C-Eval: a local
`ceval-exam` directory or the hub id `ceval/ceval-exam`; PubMedQA: `{"path": ori_pqal.json, "test_ids":
test_ground_truth.json}`, the official 500-item test split, the other 500 being its training split).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from ..data.chimed import mcq_prompt

CEVAL_SUBJECTS = {"clinical_medicine": "临床医学", "physician": "医师资格", "basic_medicine": "基础医学"}
PUBMEDQA_OPTIONS = {"A": "yes", "B": "no", "C": "maybe"}


@dataclass
class Benchmark:
    name: str
    items: list[dict]
    kind = "mcq"                       # "mcq" (letters) or "qa" (free text)
    parsers: tuple = ("cmexam", "strict", "first_run")
    train: list[dict] = field(default_factory=list)   # a training split, for task adaptation

    def prompt(self, item: dict) -> str:
        return mcq_prompt(item) + "\n答案："

    def parser_functions(self) -> dict:
        """{name: fn(output, options) -> letters} for `generate`, the table's parser first."""
        from .extraction import PARSERS

        return {name: PUBMEDQA_PARSER if name == "pubmedqa" else PARSERS[name] for name in self.parsers}

    def stem(self, item: dict) -> str:
        """The question without options: the context of cloze scoring and of VoC's verification prompt."""
        return item["question"]

    def query(self, item: dict) -> str:
        """The retrieval query (RAG): the question without its options."""
        return item["question"]

    def __len__(self) -> int:
        return len(self.items)


@dataclass
class CMExam(Benchmark):
    """Answer letters (accuracy, weighted F1) and the explanation after them (BLEU/ROUGE)."""


@dataclass
class CEval(Benchmark):
    shots: dict = field(default_factory=dict)          # subject -> dev records
    parsers: tuple = ("ceval", "ceval_qilin", "cmexam")  # C-Eval's extraction first, Qilin-Med's copy beside

    def prompt(self, item: dict) -> str:
        subject = item["subject"]
        header = f"以下是中国关于{CEVAL_SUBJECTS.get(subject, subject)}考试的单项选择题，请选出其中的正确答案。\n\n"
        shots = "".join(self._example(s) + f"{s['answer']}\n\n" for s in self.shots.get(subject, []))
        return header + shots + self._example(item)

    @staticmethod
    def _example(item: dict) -> str:
        options = "".join(f"\n{letter}. {text}" for letter, text in item["options"].items())
        return f"{item['question']}{options}\n答案："


@dataclass
class Huatuo(Benchmark):
    kind = "qa"
    parsers: tuple = ()

    def prompt(self, item: dict) -> str:
        return item["question"]


@dataclass
class PubMedQA(Benchmark):
    parsers: tuple = ("pubmedqa", "strict")

    def prompt(self, item: dict) -> str:
        options = "\n".join(f"{k} {v}" for k, v in PUBMEDQA_OPTIONS.items())
        return f"{self.stem(item)}\n{options}\nAnswer:"

    def stem(self, item: dict) -> str:
        return f"Context: {item['context']}\nQuestion: {item['question']}"


def _pubmedqa_letter(output: str, options: dict) -> str:
    """PubMedQA's yes/no/maybe word in the output, as its option letter ("" when none)."""
    from .extraction import pubmedqa_label

    label = pubmedqa_label(output)
    return next((k for k, v in options.items() if v == label), "")


PUBMEDQA_PARSER = _pubmedqa_letter


def pubmedqa_as_mcq(item: dict) -> dict:
    """A PubMedQA item with its label as the gold letter of the three label options."""
    letter = next(k for k, v in PUBMEDQA_OPTIONS.items() if v == item["answer"])
    return {**item, "options": dict(PUBMEDQA_OPTIONS), "answer": letter, "label": item["answer"]}


BENCHMARKS = {"cmexam": CMExam, "ceval": CEval, "huatuo26m": Huatuo, "pubmedqa": PubMedQA}


# ------------------------------------------------------------------------------------------- loading
def available(cfg) -> list[str]:
    """The benchmarks this profile can run: the tiny sets, or the ones its config names."""
    if cfg.data.generator == "tiny_kb":
        return ["cmexam", "ceval", "huatuo26m"]
    return [name for name in BENCHMARKS if name in cfg.data.benchmarks]


def load_benchmark(cfg, name: str, max_items: int = 0) -> Benchmark:
    if name not in BENCHMARKS:
        raise ValueError(f"unknown benchmark {name!r}; known: {', '.join(BENCHMARKS)}")
    bench = _tiny(cfg, name) if cfg.data.generator == "tiny_kb" else _from_spec(name, _spec(cfg, name))
    if max_items:
        bench.items = bench.items[:max_items]
    return bench


def _spec(cfg, name: str) -> dict:
    """The benchmark's spec with relative local paths read from the repo root (notebooks run elsewhere)."""
    from ..paths import repo_root

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


def _tiny(cfg, name: str) -> Benchmark:
    from ..data.stage import load_corpus

    def rows(split: str) -> list[dict]:
        return [dict(r) for r in load_corpus(cfg, f"eval/{split}")]

    if name == "cmexam":
        return CMExam(name, rows("cmexam"), train=rows("cmexam_train"))
    if name == "ceval":
        # The tiny set has 5 dev shots in all; every subject's prompt gets all five.
        dev = rows("ceval_dev")
        val = rows("ceval_val")
        return CEval(name, val, shots={s: dev for s in {r["subject"] for r in val}})
    if name == "huatuo26m":
        return Huatuo(name, rows("qa"))
    raise ValueError(f"the tiny profile has no {name!r} set (it generates cmexam, ceval and huatuo26m)")


def _from_spec(name: str, spec: dict) -> Benchmark:
    from ..data import sources

    path = spec["path"]
    if name == "cmexam":
        return CMExam(name, list(sources.load_cmexam_csv(path)))
    if name == "huatuo26m":
        return Huatuo(name, list(sources.load_huatuo26m_json(path)))
    if name == "ceval":
        subjects = spec.get("subjects", list(CEVAL_SUBJECTS))
        splits = {s: _ceval_subject(path, s) for s in subjects}
        return CEval(name, [r for s in subjects for r in splits[s]["val"]],
                     shots={s: list(splits[s]["dev"]) for s in subjects})
    if name == "pubmedqa":
        items = [pubmedqa_as_mcq(r) for r in sources.load_pubmedqa_json(path)]
        if spec.get("test_ids"):  # the official split: test = the PMIDs of test_ground_truth.json
            test_ids = set(json.loads(Path(spec["test_ids"]).expanduser().read_text("utf-8")))
            return PubMedQA(name, [r for r in items if r["id"] in test_ids],
                            train=[r for r in items if r["id"] not in test_ids])
        return PubMedQA(name, items)
    raise ValueError(name)


def _ceval_subject(path: str, subject: str) -> dict:
    """dev + val records of one subject from a local ceval-exam directory or the hub dataset."""
    from ..data import records, sources

    if Path(path).expanduser().is_dir():
        return sources.load_ceval_subject(Path(path).expanduser(), subject)
    import datasets

    out = {}
    for split in ("dev", "val"):
        rows = datasets.load_dataset(path.removeprefix("hf://datasets/"), subject, split=split)
        out[split] = [records.mcq(id=str(r["id"]), question=r["question"], options={k: r[k] for k in "ABCD"},
                                  answer=r["answer"], source="ceval", explanation=r.get("explanation") or "",
                                  subject=subject) for r in rows]
    return out
