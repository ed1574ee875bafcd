"""The streaming API: texts or records in, one Decision per text (or the kept records) out, in input order.

The input is pulled lazily in batches bounded by a document count and a character count, so a generator
over a corpus larger than memory can be deduplicated; only hashes of the texts outlive a batch (and the
stored rows of kept documents, in a temporary file: `tmp_dir`).
"""

from __future__ import annotations

import dataclasses
import itertools
import os
import time
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from ...config import DedupConfig
from .engine import Deduplicator
from .normalize import _as_str
from .report import Decision, DedupReport


def _batches(items: Iterable[Any], text_of: Callable[[Any], str] | None, max_docs: int, max_chars: int
             ) -> Iterator[tuple[list[Any], list[str]]]:
    """Consecutive batches of (items, texts): at most `max_docs` items, and closed by the item that
    brings the batch to `max_chars` characters. Items are pulled lazily, a few hundred at a time."""
    it = iter(items)
    pend_items: list[Any] = []
    pend_texts: list[str] = []
    chars, exhausted = 0, False
    while True:
        while not exhausted and len(pend_items) < max_docs and chars < max_chars:
            chunk = list(itertools.islice(it, min(256, max_docs - len(pend_items))))
            if not chunk:
                exhausted = True
                break
            texts = [_as_str(t) for t in (chunk if text_of is None else map(text_of, chunk))]
            pend_items += chunk
            pend_texts += texts
            chars += sum(map(len, texts))
        if not pend_items:
            return
        cum = np.cumsum(np.fromiter(map(len, pend_texts), dtype=np.int64, count=len(pend_texts)))
        cut = min(int(np.searchsorted(cum, max_chars, side="left")) + 1, max_docs, len(pend_items))
        yield pend_items[:cut], pend_texts[:cut]
        pend_items, pend_texts = pend_items[cut:], pend_texts[cut:]
        chars = int(cum[-1] - cum[cut - 1])


def dedup_stream(texts: Iterable[str], config: DedupConfig | None = None, *,
                 deduplicator: Deduplicator | None = None, tmp_dir: str | os.PathLike | None = None
                 ) -> Iterator[Decision]:
    """Yield one Decision per input text, in order, consuming `texts` lazily in batches of
    `config.batch_size` documents / `config.batch_chars` characters. A `deduplicator` passed in stays
    open (its state can serve later queries); one made here (stored rows under `tmp_dir`) is closed at
    the end."""
    dd = deduplicator or Deduplicator(config, tmp_dir=tmp_dir)
    cfg = dd.config
    try:
        for _, batch in _batches(texts, None, cfg.batch_size, cfg.batch_chars):
            yield from dd.process(batch)
    finally:
        if deduplicator is None:
            dd.close()


def _text_getter(text_key: str | Callable[[dict], str]) -> Callable[[dict], str]:
    if callable(text_key):
        return lambda rec: text_key(rec) or ""
    return lambda rec: rec.get(text_key) or ""


def iter_dedup_records(records: Iterable[dict], *, text_key: str | Callable[[dict], str] = "text",
                       config: DedupConfig | None = None, progress: bool = True,
                       report: DedupReport | None = None, source_key: str = "source",
                       tmp_dir: str | os.PathLike | None = None,
                       kept_filter: Callable[[list[dict]], list[dict]] | None = None) -> Iterator[dict]:
    """Yield the kept records in input order (first occurrence wins); `report`, if given, is filled in
    as the stream is consumed (complete once the generator is exhausted). The engine's stored rows go
    to a temporary file under `tmp_dir` (default: the system's), removed at the end. `kept_filter`, if
    given, sees the kept records of each batch and returns those to yield (the data stage's
    contamination check: it works batch by batch, as this does, so nothing waits in a second buffer)."""
    from tqdm.auto import tqdm

    dd = Deduplicator(config, tmp_dir=tmp_dir)
    cfg = dd.config
    rep = report if report is not None else DedupReport()
    rep.config, rep.bands, rep.rows = dataclasses.asdict(cfg), dd.lsh.bands, dd.lsh.rows
    text_of = _text_getter(text_key)
    total = len(records) if hasattr(records, "__len__") else None  # type: ignore[arg-type]
    bar = tqdm(total=total, desc="dedup", unit="doc", disable=not progress, mininterval=0.5)
    t0 = time.perf_counter()
    try:
        for recs, texts in _batches(records, text_of, cfg.batch_size, cfg.batch_chars):
            kept = []
            for rec, d in zip(recs, dd.process(texts)):
                rep.add(str(rec.get(source_key, "unknown")) if isinstance(rec, dict) else "unknown", d)
                if d.keep:
                    kept.append(rec)
            yield from (kept if kept_filter is None else kept_filter(kept))
            bar.update(len(recs))
            bar.set_postfix(exact=rep.exact_removed, near=rep.near_removed, refresh=False)
    finally:
        bar.close()
        rep.seconds = time.perf_counter() - t0
        rep.index_bytes, rep.index_disk_bytes = dd.nbytes, dd.disk_bytes
        dd.close()


def dedup_records(records: Iterable[dict], *, text_key: str | Callable[[dict], str] = "text",
                  config: DedupConfig | None = None, progress: bool = True,
                  tmp_dir: str | os.PathLike | None = None) -> tuple[list[dict], DedupReport]:
    """Exact + near deduplication of records (first occurrence kept). Works on any iterable, including
    generators: the input is read in batches and only hashes of the texts are retained.

    `text_key` names the text field or is a callable record -> str (e.g. to join an SFT conversation).
    Records carry a "source" key for the per-source counts in the report.
    """
    report = DedupReport()
    kept = list(iter_dedup_records(records, text_key=text_key, config=config, progress=progress,
                                   report=report, tmp_dir=tmp_dir))
    return kept, report
