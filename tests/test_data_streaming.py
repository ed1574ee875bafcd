"""The streaming data stage: records go from the readers through dedup into Arrow on disk, one corpus at a
time, and the artifacts are those the list-based stage wrote (benchmarks/bench_data.py measures memory)."""

from __future__ import annotations

import dataclasses
import json
import random

import pytest

from qilin_lib.cache import hash_file, hash_obj
from qilin_lib.config import ConfigError, load_config
from qilin_lib.data import chimed, sources, stage
from qilin_lib.data.dedup import dedup_records
from qilin_lib.data.records import corpus_features
from qilin_lib.data.sources import LOADER_KINDS, RecordStream, load_source
from qilin_lib.data.stage import (CorpusWriter, SourceRejected, data_artifact, infer_features, run_data_stage,
                                  write_records)


def _distinct_texts(n: int, seed: int = 0, chars: int = 30) -> list[str]:
    """CJK documents that share no 5-grams to speak of: deduplication keeps every one."""
    rng = random.Random(seed)
    return ["".join(chr(rng.randrange(0x4E00, 0x9FA5)) for _ in range(chars)) for _ in range(n)]


def _files(path):
    return {str(p.relative_to(path)): hash_file(p) for p in sorted(path.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------ same corpora as the list-based stage
def _chimed_sources(shared_data):
    layout = shared_data / "chimed_format"
    return [{"name": "chimed_cpt", "loader": "chimed_cpt_txt", "path": str(layout / "cpt.txt"), "stage": "cpt"},
            {"name": "chimed_sft", "loader": "chimed_sft_jsonl", "path": str(layout / "sft.jsonl"), "stage": "sft"},
            {"name": "chimed_dpo", "loader": "chimed_dpo_json", "path": str(layout / "dpo.json"), "stage": "dpo"},
            # feeds two corpora (CPT dialogue + SFT): read once for each
            {"name": "toyhom", "loader": "toyhom_csv", "subset": "dialogue", "stage": "all",
             "path": str(shared_data / "toyhom_dialogue/内科_sample3000.csv")}]


def _list_based_corpora(cfg, out):
    """What the stage built before streaming: lists loaded, routed, deduplicated, Dataset.from_list-saved."""
    from datasets import Dataset

    routed = {corpus: [] for corpus in chimed.CORPORA}
    for spec in cfg.data.sources:
        recs = load_source(spec["loader"], spec["path"], errors=cfg.data.errors,
                           max_records=cfg.data.max_records_per_source)
        for rec in recs:
            rec["source"] = spec["name"]
        for corpus, converted in chimed.route(recs, LOADER_KINDS[spec["loader"]], spec).items():
            routed[corpus] += converted
    kept = {}
    for corpus in chimed.CORPORA:
        config = dataclasses.replace(cfg.data.dedup, near=False) if corpus == "dpo" else cfg.data.dedup
        kept[corpus], _ = dedup_records(routed[corpus], text_key=lambda r, c=corpus: chimed.dedup_text(r, c),
                                        config=config, progress=False)
        columns = sorted({key for rec in kept[corpus] for key in rec})
        Dataset.from_list([{k: rec.get(k) for k in columns} for rec in kept[corpus]]).save_to_disk(
            str(out / f"chimed_{corpus}"))
    return kept


def test_streaming_stage_writes_the_corpora_of_the_list_based_stage(shared_data, sandbox, tmp_path):
    # no benchmarks: the paper profile's are on the hub or not cloned (offline retries cost ~45 s)
    cfg = load_config("paper", {"data.sources": _chimed_sources(shared_data), "data.benchmarks": {}})
    result = run_data_stage(cfg, progress=False)
    expected = _list_based_corpora(cfg, tmp_path / "lists")
    assert result.stats["content_hash"] == hash_obj({c: [hash_obj(r) for r in recs] for c, recs in expected.items()})
    for corpus in chimed.CORPORA:  # byte for byte: Arrow shards, state.json (fingerprint), dataset_info.json
        assert _files(result.path / f"chimed_{corpus}") == _files(tmp_path / "lists" / f"chimed_{corpus}"), corpus
    by_source = {s["source"]: s for s in result.stats["sources"]}
    assert [s["source"] for s in result.stats["sources"]] == ["chimed_cpt", "chimed_sft", "chimed_dpo", "toyhom"]
    assert by_source["toyhom"]["loaded"] == 3000 and by_source["chimed_sft"]["skipped"] == 0
    assert {tuple(r["group"]) for r in result.stats["corpora"]["cpt"]["rows"]} == {("text", "chimed_cpt"),
                                                                                   ("dialogue", "toyhom")}


def test_tiny_profile_is_built_through_the_same_writer(sandbox):
    """The tiny profile's corpora (3,279 CPT records: four Arrow batches) come out as Dataset.from_list
    wrote them: results/tiny and every downstream cache key depend on those bytes."""
    from datasets import Dataset

    cfg = load_config("tiny")
    result = run_data_stage(cfg, progress=False)
    inputs = stage._tiny_inputs(cfg)
    kept, _ = dedup_records(inputs.corpora["cpt"], text_key=lambda r: chimed.dedup_text(r, "cpt"),
                            config=cfg.data.dedup, progress=False)
    assert len(kept) > 3 * CorpusWriter.BATCH_ROWS
    columns = sorted({key for rec in kept for key in rec})  # what the list-based stage saved
    Dataset.from_list([{k: rec.get(k) for k in columns} for rec in kept]).save_to_disk(str(sandbox / "lists"))
    assert _files(result.path / "chimed_cpt") == _files(sandbox / "lists")


@pytest.fixture
def writers(monkeypatch):
    """Every CorpusWriter the stage opens, in order (their `rows`: how many records each has written)."""
    opened = []

    class WatchedWriter(CorpusWriter):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(stage, "CorpusWriter", WatchedWriter)
    return opened


# --------------------------------------------------------------------------- memory: nothing held whole
def test_records_are_written_while_the_source_is_still_being_read(sandbox, tmp_path, monkeypatch, writers):
    """The stage never holds a corpus: when the source has handed out 5,000 of its 6,000 records, the
    corpus's writer has already written thousands of them."""
    path = tmp_path / "cpt.txt"
    path.write_text("\n".join(_distinct_texts(6000)) + "\n", encoding="utf-8")
    written_at_5000 = []
    real = sources.STREAMS["chimed_cpt_txt"]

    def watched(path, **kw):
        stream = real(path, **kw)

        def records():
            for i, rec in enumerate(stream, start=1):
                if i == 5000:
                    written_at_5000.append(writers[-1].rows)
                yield rec
        return RecordStream(records(), stream.stats, counted=True)  # the inner stream counts `loaded`

    monkeypatch.setitem(sources.STREAMS, "chimed_cpt_txt", watched)
    spec = [{"name": "cpt", "loader": "chimed_cpt_txt", "path": str(path), "stage": "cpt"}]
    stats = run_data_stage(load_config("tiny", {"data.generator": "sources", "data.sources": spec}),
                           progress=False).stats
    assert stats["corpora"]["cpt"]["records"] == 6000 and stats["sources"][0]["loaded"] == 6000
    assert written_at_5000[0] >= 2000  # dedup reads ahead one batch, the writer holds two


# ------------------------------------------------------------------------------------- the writer
def test_a_missing_key_becomes_none_and_an_unknown_key_is_an_error(tmp_path):
    from datasets import load_from_disk

    message = [{"role": "user", "content": "发热怎么办？"}, {"role": "assistant", "content": "多喝水。"}]
    recs = [{"messages": message, "source": "a", "category": "medical", "turns": "single"},
            {"messages": message, "source": "b"}]  # no category, no turns
    assert write_records(tmp_path / "sft", recs, corpus_features("sft")) == 2
    rows = list(load_from_disk(str(tmp_path / "sft")))
    assert [(r["category"], r["turns"]) for r in rows] == [("medical", "single"), (None, None)]
    with pytest.raises(ValueError, match=r"sft2: a record of source 'c' has key\(s\) \['id'\] outside the columns"):
        write_records(tmp_path / "sft2", [{**recs[0], "source": "c", "id": "7"}], corpus_features("sft"))


def _shapes():
    texts = _distinct_texts(2500, chars=8)
    return {
        "a key missing in every third record": [{"id": str(i), "question": t} | ({"answer": t[:2]} if i % 3 else {})
                                                for i, t in enumerate(texts)],
        "missing only in the last batch": [{"id": str(i)} | ({"answer": t} if i < 2200 else {})
                                           for i, t in enumerate(texts)],
        "nested options, some lacking a letter": [{"options": {"A": t[:3]} | ({"B": t[3:]} if i % 5 else {}),
                                                   "messages": [{"role": "user", "content": t[: i % 7]}]}
                                                  for i, t in enumerate(texts)],
    }


@pytest.mark.parametrize("shape", list(_shapes()))
def test_eval_sets_keep_the_union_of_their_keys_byte_for_byte(tmp_path, shape):
    """Records lacking keys, over three Arrow batches: the files Dataset.from_list + save_to_disk wrote."""
    from datasets import Dataset

    recs = _shapes()[shape]
    write_records(tmp_path / "new", recs, infer_features(recs))
    columns = sorted({key for rec in recs for key in rec})
    Dataset.from_list([{k: r.get(k) for k in columns} for r in recs]).save_to_disk(str(tmp_path / "old"))
    assert _files(tmp_path / "new") == _files(tmp_path / "old")


def test_no_records_no_dataset(tmp_path):
    write_records(tmp_path / "empty", [], infer_features([]))
    assert (tmp_path / "empty").is_dir() and not any((tmp_path / "empty").iterdir())  # as before


def test_a_large_corpus_is_fingerprinted_by_its_bytes(tmp_path, monkeypatch):
    """Past IN_MEMORY_FINGERPRINT_BYTES the fingerprint is a hash of the shards, not of a table in memory."""
    from datasets import load_from_disk

    monkeypatch.setattr(CorpusWriter, "IN_MEMORY_FINGERPRINT_BYTES", 0)
    recs = [{"text": t, "source": "s", "subset": "text"} for t in _distinct_texts(1500)]
    write_records(tmp_path / "a", recs, corpus_features("cpt"))
    recs[-1]["text"] += "。"
    write_records(tmp_path / "b", recs, corpus_features("cpt"))
    a, b = load_from_disk(str(tmp_path / "a")), load_from_disk(str(tmp_path / "b"))
    assert a["text"][:-1] == b["text"][:-1] and len(a) == 1500
    state = {name: json.loads((tmp_path / name / "state.json").read_text("utf-8")) for name in "ab"}
    assert state["a"]["_fingerprint"] == hash_obj([hash_file(tmp_path / "a" / "data-00000-of-00001.arrow")])
    assert state["a"]["_fingerprint"] != state["b"]["_fingerprint"] and a._fingerprint != b._fingerprint


# ------------------------------------------------------------------------- skips stop the stage
def test_a_streamed_source_that_skips_too_much_stops_the_stage_after_writing_began(sandbox, tmp_path, writers):
    good = tmp_path / "good.txt"
    good.write_text("\n".join(_distinct_texts(50, seed=1)) + "\n", encoding="utf-8")
    bad = tmp_path / "cpt.txt"  # 3,000 good lines, then 40 that are not UTF-8: 1.3% skipped
    bad.write_bytes(("\n".join(_distinct_texts(3000)) + "\n").encode() + b"\xff\xfe bad\n" * 40)
    spec = [{"name": "good", "loader": "chimed_cpt_txt", "path": str(good), "stage": "cpt"},
            {"name": "streamed", "loader": "chimed_cpt_txt", "path": str(bad), "stage": "cpt"}]
    cfg = load_config("tiny", {"data.generator": "sources", "data.errors": "skip", "data.sources": spec})
    with pytest.raises(SourceRejected) as err:
        run_data_stage(cfg, progress=False)
    message = str(err.value)
    assert "'streamed'" in message and "3000 loaded, 40 skipped" in message and "line 3001" in message
    assert writers[0].rows >= 1000  # the check ran once the source was read, records were on disk already
    assert not data_artifact(cfg).complete
    leftovers = [p.name for p in (sandbox / "artifacts" / "tiny").iterdir() if not p.name.endswith(".lock")]
    assert leftovers == []  # the temporary directory the corpus was being written into is gone


# ---------------------------------------------------------------------------------- data.num_proc
def test_num_proc_is_validated_and_no_part_of_the_data_key(sandbox):
    assert load_config("tiny").data.num_proc == 1
    with pytest.raises(ConfigError, match="num_proc"):
        load_config("tiny", {"data.num_proc": 0})
    assert data_artifact(load_config("tiny", {"data.num_proc": 4})).key == data_artifact(load_config("tiny")).key
