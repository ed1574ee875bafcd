"""What every benchmark module provides (one module per benchmark, registered in benchmarks/__init__.py).

A benchmark class owns, for its test set:
- loading: `from_spec(spec)` reads the file (or hub dataset) a profile names under `data.benchmarks.<name>`
  (by default with the data stage's loader named in `loader`);
  `from_tiny(rows)` the set the tiny profile's data stage generated, where it generates one (`tiny_split`);
- the prompt (`prompt`, before chat wrapping), the question alone (`stem`: cloze and VoC; `query`: RAG);
- the answer parsers of generate mode (`parsers`, the table's first; `parser_functions`);
- the metrics of a scoring mode's rows (`score`) and any extra blocks from generated text
  (`generation_metrics`: CMExam's explanations);
- its rows in the tables: its own table (`table`, with `caption`), its columns in the RAG and VoC tables,
  and the published numbers beside ours (`published`: reference.json metric -> column; `paper_map`: which of
  our runs stands for which published model in REPORT.md).

The defaults are a Chinese exam MCQ set with CMExam's prompt layout and metrics (accuracy, weighted F1).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import pandas as pd

from ...data.chimed import mcq_prompt
from ..intervals import IntervalSpec
from ..results import Results, frame, mode_value, published_rows
from ..task_metrics import mcq_metrics


@dataclass
class Benchmark:
    items: list[dict]
    train: list[dict] = field(default_factory=list)   # a training split, for task adaptation

    name: ClassVar[str] = ""
    kind: ClassVar[str] = "mcq"                         # "mcq" (letters) or "qa" (free text)
    loader: ClassVar[str] = ""                          # its file format: a name in qilin_lib.data.sources.LOADERS
    parsers: ClassVar[tuple] = ("cmexam", "strict", "first_run")
    f1_key: ClassVar[str] = "weighted_f1"               # the F1 its tables show
    by_subject: ClassVar[bool] = False                  # its metrics also per item `subject` (C-Eval, CNMLE)
    tiny_split: ClassVar[str] = ""                      # eval/<split> of the tiny data stage ("" = none)
    tiny_train_split: ClassVar[str] = ""
    caption: ClassVar[str] = ""                         # its table's caption
    knowledge_caption: ClassVar[str] = ""               # tiny: the knowledge-injection table's caption
    published: ClassVar[dict[str, str]] = {}            # reference.json metric -> column of its table
    # (published model, metric, our model, our task, path into that result's metrics) for REPORT.md
    paper_map: ClassVar[tuple] = ()

    # ----------------------------------------------------------------------------------- loading
    @classmethod
    def from_spec(cls, spec: dict) -> Benchmark:
        """The test set a profile's `data.benchmarks.<name>` names (`spec["path"]` is resolved already), read by
        the data stage's loader `loader` (a benchmark with splits or several files overrides this)."""
        from ...data.sources import LOADERS

        if cls.loader not in LOADERS:
            raise NotImplementedError(f"{cls.__name__}: set `loader` to one of {', '.join(LOADERS)} or define from_spec")
        return cls(list(LOADERS[cls.loader](spec["path"])))

    @classmethod
    def from_tiny(cls, rows) -> Benchmark:
        """The tiny profile's set; `rows(split)` reads eval/<split> of its data stage."""
        if not cls.tiny_split:
            raise ValueError(f"the tiny profile has no {cls.name!r} set")
        return cls(rows(cls.tiny_split), train=rows(cls.tiny_train_split) if cls.tiny_train_split else [])

    # ------------------------------------------------------------------------------------ prompts
    def prompt(self, item: dict) -> str:
        """CMExam's layout: the question, one `A xxx` line per option, then the answer slot."""
        return mcq_prompt(item) + "\n答案："

    def stem(self, item: dict) -> str:
        """The question without options: the context of cloze scoring and of VoC's verification prompt."""
        return item["question"]

    def query(self, item: dict) -> str:
        """The retrieval query (RAG): the question without its options."""
        return item["question"]

    def parser_functions(self) -> dict:
        """{name: fn(output, options) -> letters} for `generate`, the table's parser first."""
        from ..extraction import PARSERS

        return {name: PARSERS[name] for name in self.parsers}

    # ------------------------------------------------------------------------------------ metrics
    def score(self, rows: list[dict], intervals: IntervalSpec, breakdown: bool = True) -> dict:
        """Metrics of one mode's rows (aligned with `items`), overall and per item group; `breakdown`: also
        per subject where the benchmark reports subjects (`by_subject`)."""
        return mcq_metrics(self.items, rows, by_subject=breakdown and self.by_subject, intervals=intervals)

    def generation_metrics(self, rows: list[dict], intervals: IntervalSpec) -> dict:
        """Extra metric blocks read from generate mode's outputs ({} unless the benchmark scores text too)."""
        return {}

    # ------------------------------------------------------------------------------------- tables
    @classmethod
    def table(cls, res: Results) -> pd.DataFrame | None:
        """Its table: per model, accuracy and F1 of generate mode (the first parser) and loglik accuracy,
        with the published numbers beside; None when no model was evaluated on it."""
        ours = [{"model": m, "kind": f"ours ({res.profile})",
                 "accuracy": mode_value(res, m, cls.name, "generate"),
                 cls.f1_key: mode_value(res, m, cls.name, "generate", cls.f1_key),
                 "accuracy (loglik)": mode_value(res, m, cls.name, "loglik"), "source": "this run"}
                for m in res.models if res.has(m, cls.name)]
        return frame(ours + published_rows(cls.name, cls.published)) if ours else None

    @classmethod
    def rag_columns(cls, res: Results, model: str, task: str) -> dict:
        """Its cells in the RAG table's row of `task` (the benchmark with or without retrieval)."""
        return {f"{cls.name} accuracy (generate)": mode_value(res, model, task, "generate"),
                f"{cls.name} accuracy (loglik)": mode_value(res, model, task, "loglik")}

    @classmethod
    def rag_published(cls) -> list[dict]:
        """Published retrieval-augmented rows of the RAG table."""
        return []

    @classmethod
    def voc_published(cls) -> list[dict]:
        """Published rows of the VoC table."""
        return []

    def __len__(self) -> int:
        return len(self.items)
