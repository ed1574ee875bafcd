"""The dedup engine's compact state: decisions equal those of the engine it replaced (reference decisions
of commit 9fa536b, tests/dedup_workloads.py), `query`, the stored rows on disk (temporary file, fork,
pickle), and what the state costs in RAM per document."""

from __future__ import annotations

import gzip
import json
import multiprocessing
import os
import pickle
import random
from pathlib import Path

import numpy as np
import pytest

from qilin_lib.config import DedupConfig
from qilin_lib.data.dedup import Deduplicator, LSHIndex, dedup_stream, exact_hash, normalize_batch
from qilin_lib.data.dedup.exact import ExactIndex, text_hashes

import dedup_workloads as workloads

CJK = (0x4E00, 0x9FA5)


def cjk(rng: random.Random, n: int) -> str:
    return "".join(chr(rng.randint(*CJK)) for _ in range(n))


def substitute(text: str, rate: float, rng: random.Random) -> str:
    return "".join(chr(rng.randint(*CJK)) if rng.random() < rate else c for c in text)


def as_rows(decisions) -> list[tuple]:
    return [(d.keep, d.reason, d.dup_of, d.similarity, d.short) for d in decisions]


@pytest.fixture(scope="module")
def reference() -> dict:
    with gzip.open(workloads.REFERENCE, "rt", encoding="utf-8") as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def texts_of() -> dict:
    return workloads.workloads()


@pytest.mark.parametrize("config", sorted(workloads.CONFIGS))
@pytest.mark.parametrize("name", ["templated", "cpt", "sft"])
def test_decisions_equal_the_reference_engine(reference, texts_of, name, config, tmp_path):
    if name not in texts_of:
        pytest.skip("../shared/data/chimed_format (the ChiMed-layout sample) is absent")
    texts = texts_of[name]
    ref = reference[f"{name}/{config}"]
    assert ref["texts"] == workloads.texts_digest(texts), "the workload generator changed: regenerate from 9fa536b"
    got = workloads.run(texts, config, tmp_dir=tmp_path)
    assert len(got) == ref["n"] == len(texts)
    assert [d for d in got if not d[1]] == ref["removed"]
    assert ref["removed"]                                      # the workload does remove something


def test_exact_index_lookup_insert_and_merges():
    rng = np.random.default_rng(0)
    index, truth = ExactIndex(), {}
    for batch in range(40):
        h = np.unique(rng.integers(0, 2**64, size=rng.integers(1, 300), dtype=np.uint64))
        new = np.array([x not in truth for x in h.tolist()])
        first = np.arange(len(h)) + 1000 * batch
        index.insert(h[new], first[new])
        truth.update((x, f) for x, f in zip(h[new].tolist(), first[new].tolist()))
        probe = np.concatenate((h, rng.integers(0, 2**64, size=50, dtype=np.uint64)))
        assert index.lookup(probe).tolist() == [truth.get(x, -1) for x in probe.tolist()]
    assert len(index._runs) < 10                               # merged like a binary counter
    assert index.nbytes == 12 * len(truth)


def test_batch_hashes_are_the_exact_hash_of_each_normalised_text():
    texts = ["你好，世界", " 你好,世界 ", "", "Ａｂｃ", "另一段文字"]
    codes, lengths = normalize_batch(texts)
    got = text_hashes(codes, np.concatenate(([0], np.cumsum(lengths))))
    from qilin_lib.data.dedup import normalize_text

    assert got.tolist() == [int.from_bytes(exact_hash(normalize_text(t)), "little") for t in texts]
    assert got[0] == got[1] and len(set(got.tolist())) == 4


def test_lsh_runs_pack_slots_below_key_prefixes_and_find_every_shared_band():
    """Batches of random keys with planted repeats: every planted key finds its slot through merges."""
    rng = np.random.default_rng(1)
    lsh = LSHIndex(128, 0.1, bands=8, rows=2, max_bucket=1000, max_candidates=1000)
    kept_keys, slot = [], 0
    for _ in range(30):
        n = int(rng.integers(50, 400))
        keys = rng.integers(0, 2**64, size=(n, 8), dtype=np.uint64)
        lsh.insert(keys, np.arange(slot, slot + n))
        kept_keys.append(keys)
        slot += n
    all_keys = np.concatenate(kept_keys)
    probe_slots = rng.choice(slot, size=200, replace=False)
    probes = rng.integers(0, 2**64, size=(200, 8), dtype=np.uint64)
    band = rng.integers(0, 8, size=200)
    probes[np.arange(200), band] = all_keys[probe_slots, band]   # each probe shares one band with one slot
    q_row, q_slot = lsh.query(probes)
    found = set(zip(q_row.tolist(), q_slot.tolist()))
    assert all((r, int(s)) in found for r, s in enumerate(probe_slots))
    assert lsh.nbytes == 8 * all_keys.size and len(lsh._runs) <= 6
    assert max(run.slot_bits for run in lsh._runs) == (slot - 1).bit_length()


def _history(seed: int = 5):
    """Kept-so-far documents (several batches) and a batch of texts unrelated to each other."""
    rng = random.Random(seed)
    history = [[cjk(rng, rng.randint(60, 300)) for _ in range(150)] for _ in range(3)]
    fresh = [cjk(rng, rng.randint(60, 300)) for _ in range(40)]
    return rng, history, fresh


def test_query_reports_duplicates_of_kept_documents_and_leaves_the_state_alone(tmp_path):
    rng, history, fresh = _history()
    kept = [t for batch in history for t in batch]
    queried, twin = Deduplicator(tmp_dir=tmp_path), Deduplicator(tmp_dir=tmp_path)
    for batch in history:
        assert as_rows(queried.process(batch)) == as_rows(twin.process(batch))
    texts = [kept[10], "  " + kept[20].upper() + "\n", substitute(kept[30], 0.05, rng), substitute(kept[40], 0.05, rng),
             kept[40], kept[40], cjk(rng, 200), "头痛发热", kept[10][:10]]
    state = (queried.n_seen, queried.nbytes, queried.disk_bytes)
    q = queried.query(texts)
    assert [d.index for d in q] == list(range(len(texts)))
    assert [(d.reason, d.dup_of) for d in q[:6]] == [("exact", 10), ("exact", 20), ("near", 30), ("near", 40),
                                                      ("exact", 40), ("exact", 40)]   # not duplicates of each other
    assert q[2].similarity > 0.3 and q[6].keep and q[7].keep and q[7].short and q[8].keep
    assert (queried.n_seen, queried.nbytes, queried.disk_bytes) == state
    # later decisions are those of an engine that was never queried: the query texts were not kept
    later = texts + [substitute(t, 0.05, rng) for t in fresh[:10]] + fresh
    assert as_rows(queried.process(later)) == as_rows(twin.process(later))
    # on texts unrelated to each other, query gives what process gives (but for the index)
    a, b = Deduplicator(tmp_dir=tmp_path), Deduplicator(tmp_dir=tmp_path)
    for batch in history:
        a.process(batch)
        b.process(batch)
    probe = fresh + [substitute(kept[i], 0.08, rng) for i in range(0, 450, 15)] + kept[::50]
    got, want = a.query(probe), b.process(probe)
    assert as_rows(got) == as_rows(want)
    assert {d.reason for d in got} == {"kept", "near", "exact"}
    # looked up in slices (bounded memory): the same decisions, indices still positions in the input
    a.config = DedupConfig(batch_size=7, batch_chars=500)
    sliced = a.query(probe)
    assert as_rows(sliced) == as_rows(got) and [d.index for d in sliced] == list(range(len(probe)))


def test_query_on_an_empty_engine_keeps_everything():
    out = Deduplicator().query(["一段足够长的文字，用于检查空引擎的查询结果。", "短句"])
    assert [(d.keep, d.reason, d.short) for d in out] == [(True, "kept", False), (True, "kept", True)]


def _open_files_under(directory: Path) -> list[str]:
    out = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            target = os.readlink(f"/proc/self/fd/{fd}")
        except OSError:
            continue
        if target.startswith(str(directory)):
            out.append(target)
    return out


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="needs /proc to see open files")
def test_rows_live_in_a_temporary_file_under_tmp_dir_removed_on_close_and_collection(tmp_path):
    import gc

    rng = random.Random(2)
    texts = [cjk(rng, 200) for _ in range(300)]
    dd = Deduplicator(tmp_dir=tmp_path)
    dd.process(texts)
    assert len(_open_files_under(tmp_path)) == 1 and os.listdir(tmp_path) == []   # anonymous: no name
    assert dd.disk_bytes == 300 * (2 * dd._width + 8)
    assert dd.nbytes == 300 * (dd.lsh.bands * 8 + 12)                             # rows are not in RAM
    dd.close()
    assert _open_files_under(tmp_path) == []
    dd = Deduplicator(tmp_dir=tmp_path)
    dd.process(texts)
    del dd
    gc.collect()
    assert _open_files_under(tmp_path) == []
    list(dedup_stream(texts, tmp_dir=tmp_path))                                  # the stream closes its own
    assert _open_files_under(tmp_path) == []


def _continue_in_child(dd: Deduplicator, batch: list[str], queue) -> None:
    queue.put(as_rows(dd.process(batch)))


@pytest.mark.skipif("fork" not in multiprocessing.get_all_start_methods(), reason="needs fork")
def test_an_engine_carries_its_rows_across_fork_and_pickle(tmp_path):
    rng, history, fresh = _history(seed=9)
    kept = [t for batch in history for t in batch]
    nxt = [substitute(t, 0.06, rng) for t in kept[::7]] + fresh
    last = [substitute(t, 0.06, rng) for t in kept[3::11]] + [substitute(t, 0.06, rng) for t in fresh]
    expected = Deduplicator(tmp_dir=tmp_path)
    for batch in history:
        expected.process(batch)
    exp_next, exp_last = as_rows(expected.process(nxt)), as_rows(expected.process(last))

    dd = Deduplicator(tmp_dir=tmp_path)
    for batch in history:
        dd.process(batch)
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_continue_in_child, args=(dd, nxt, queue))
    child.start()
    from_child = queue.get(timeout=120)
    child.join(timeout=120)
    assert child.exitcode == 0 and from_child == exp_next
    # the child appended rows to a file of its own: the parent's rows are intact
    clone = pickle.loads(pickle.dumps(dd))
    assert as_rows(dd.process(nxt)) == exp_next and as_rows(dd.process(last)) == exp_last
    assert as_rows(clone.process(nxt)) == exp_next and as_rows(clone.process(last)) == exp_last


def test_ram_per_kept_document_is_the_lsh_entries_and_an_exact_hash(tmp_path):
    """The figures the module docstrings give: 8 bytes per band and 12 per distinct text in RAM."""
    rng = random.Random(4)
    texts = [cjk(rng, rng.randint(30, 200)) for _ in range(3000)]
    texts += [f"短句{i % 50}" for i in range(500)]                           # 50 distinct short texts
    dd = Deduplicator(DedupConfig(batch_size=300), tmp_dir=tmp_path)
    decisions = list(dedup_stream(texts, deduplicator=dd))
    long_kept = sum(d.keep and not d.short for d in decisions)
    distinct = sum(d.reason != "exact" for d in decisions)
    assert dd.nbytes == long_kept * dd.lsh.bands * 8 + distinct * 12
    assert dd.disk_bytes == long_kept * (2 * dd._width + 8)


def test_sketches_do_not_depend_on_how_the_batch_is_chunked():
    rng = random.Random(0)
    texts = [cjk(rng, rng.choice([0, 3, 10, 100, 5000, 70000])) for _ in range(120)]
    dd = Deduplicator()
    codes, lengths = normalize_batch(texts)
    whole = dd.sketch(codes, lengths, chunk_chars=10**12)
    for chunk in (1, 1000, 1 << 16):
        assert all(np.array_equal(x, y) for x, y in zip(dd.sketch(codes, lengths, chunk_chars=chunk), whole))


def _status_mib(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(field)


def test_a_merge_of_lsh_runs_never_holds_the_index_twice():
    """Merging two runs of 16 + 8 MiB: the result is the sorted re-packed union, and the peak resident
    memory during the merge stays a few MiB above the runs themselves (a merge that copied would add
    the whole 24 MiB)."""
    from qilin_lib.data.dedup import lsh

    rng = np.random.default_rng(3)
    a, b = lsh._anonymous(2_000_000), lsh._anonymous(1_000_000)
    a[:] = np.sort(rng.integers(0, 2**64, len(a), dtype=np.uint64) & ~np.uint64(0x1FFFFF)
                   | rng.integers(0, 2_000_000, len(a), dtype=np.uint64))
    b[:] = np.sort(rng.integers(0, 2**64, len(b), dtype=np.uint64) & ~np.uint64(0xFFFFF)
                   | rng.integers(0, 1_000_000, len(b), dtype=np.uint64))
    a_keys, a_slots = a >> np.uint64(21), a & np.uint64(0x1FFFFF)
    b_keys, b_slots = b >> np.uint64(20), (b & np.uint64(0xFFFFF)) + np.uint64(2_000_000)
    runs = [lsh._Run(a, 0, 1_999_999, 21), lsh._Run(b, 2_000_000, 2_999_999, 20)]
    del a, b
    try:
        Path("/proc/self/clear_refs").write_text("5")          # reset the peak (VmHWM) to the current RSS
        before = _status_mib("VmRSS")
    except OSError:
        pytest.skip("needs /proc/self/clear_refs to measure the peak")
    merged = lsh._merge(runs.pop(0), runs.pop())
    peak = _status_mib("VmHWM") - before
    assert merged.slot_bits == 22 and (merged.base, merged.top) == (0, 2_999_999)
    keys = np.concatenate((a_keys >> np.uint64(1), b_keys >> np.uint64(2)))     # 42 key bits left
    want = np.sort((keys << np.uint64(22)) | np.concatenate((a_slots, b_slots)))
    assert np.array_equal(merged.entries, want)
    assert peak < 8, f"merge peak {peak:.1f} MiB above the runs"
