"""The data stage (notebook 01): sources -> uniform records -> dedup -> ChiMed-CPT/SFT/DPO + eval sets.

    result = run_data_stage(load_config("tiny"))
    result.stats            # what results/<profile>/data_stats.json holds
    load_corpus(cfg, "cpt") # a datasets.Dataset, for the training notebooks

The output directory lives in the artifact cache, keyed by the data config and the fingerprints of the
inputs, so a rerun with the same inputs reuses it (unless `force`), and a failure leaves nothing that
looks complete.

Streaming: the corpora are built one at a time, records flowing from the readers through deduplication
into Arrow on disk (`CorpusWriter`), so memory holds one corpus's deduplication index and a batch of
records, never a corpus (ChiMed's cpt.txt is 4.85 GB, sft.jsonl 8.35 GB). A source's load statistics are
complete once it has been read; a source that skipped too much stops the stage then (`check_skips`),
inside the artifact's `writing()` block, so nothing is published. Eval sets are small and stay lists.
benchmarks/bench_data.py measures memory and throughput against the earlier list-based stage.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Iterator

from ..cache import StageArtifact, atomic_write_json, hash_file, hash_obj
from ..config import ProfileConfig
from ..paths import repo_root, results_dir
from . import chimed
from .decontam import ContaminationCheck, benchmark_test_sets
from .dedup import DedupReport, iter_dedup_records
from .io import HUB_PREFIX, resolve_path
from .records import corpus_features

STAGE = "data"
STATS_FILE = "data_stats.json"


@dataclass
class DataStageResult:
    path: Path            # the complete artifact directory
    stats: dict           # corpus composition, per-source load/skip/dedup counts
    reused: bool          # True when the cache already held this exact build


@dataclass
class StageInputs:
    """What the stage builds from. `corpora`: per corpus its records in order, an iterable read once when
    that corpus is built (a generator over the sources on the `sources` path). `load_stats`: per-source
    load statistics by position in the profile, filled as each source has been read."""
    corpora: dict[str, Iterable[dict]]
    evals: dict[str, list[dict]]
    load_stats: dict[int, dict] = field(default_factory=dict)
    metadata: dict = field(default_factory=dict)

    def source_stats(self) -> list[dict]:
        return [self.load_stats[i] for i in sorted(self.load_stats)]


# ------------------------------------------------------------------------------------- collecting
def _tiny_inputs(cfg: ProfileConfig) -> StageInputs:
    """Generate every corpus from the embedded knowledge base (DESIGN.md section 3)."""
    from .tiny import generate_tiny_corpora

    corpora = generate_tiny_corpora(cfg.data.tiny, seed=cfg.seed)
    routed = {"cpt": [], "sft": [], "dpo": []}
    for subset, recs in (("kg", corpora.cpt_kg), ("text", corpora.cpt_text),
                         ("qa", corpora.cpt_qa), ("dialogue", corpora.cpt_dialogue)):
        routed["cpt"] += chimed.route(recs, "cpt", {"subset": subset})["cpt"]
    for category, recs in (("medical", corpora.sft_medical_single), ("medical", corpora.sft_medical_multi),
                           ("general", corpora.sft_general)):
        routed["sft"] += chimed.route(recs, "sft", {"category": category})["sft"]
    routed["dpo"] = chimed.route(corpora.dpo_train, "dpo")["dpo"]
    evals = {"cmexam": corpora.eval_cmexam, "cmexam_train": corpora.eval_cmexam_train, "ceval_dev": corpora.eval_ceval_dev,
             "ceval_val": corpora.eval_ceval_val, "qa": corpora.eval_qa,
             "dpo_heldout": corpora.dpo_heldout, "probe_texts": corpora.probe_texts}
    # One row per record source tag, so the per-source table lines up with the dedup counts.
    generated = Counter(rec["source"] for recs in routed.values() for rec in recs)
    load_stats = [{"source": tag, "path": "generated (qilin_lib.data.tiny)", "loaded": n, "skipped": 0,
                   "skip_reasons": {}} for tag, n in sorted(generated.items())]
    return StageInputs(routed, evals, dict(enumerate(load_stats)), {"tiny": corpora.metadata})


@dataclass
class _Source:
    """A `data.sources` entry with what the stage knows before reading it."""
    index: int                    # position in the profile: the order of the per-source statistics
    spec: dict
    kind: str                     # the loader's record kind (sources.LOADER_KINDS)
    targets: tuple[str, ...]      # the corpora it feeds; () for an eval set


def _source_inputs(cfg: ProfileConfig) -> StageInputs:
    """The `paper` / `gpu-small` path: every source of the profile read by its loader and routed. Routes are
    checked now; eval sets are loaded now (small); the corpora are generators that read their sources only
    when the stage builds them."""
    from .sources import LOADER_KINDS

    sources = []
    for index, spec in enumerate(cfg.data.sources):
        kind = LOADER_KINDS[spec["loader"]]
        is_eval = spec.get("stage") == "eval" or kind == "pubmedqa"
        sources.append(_Source(index, spec, kind, () if is_eval else chimed.route_targets(kind, spec)))
    inputs = StageInputs(corpora={}, evals={})
    for source in sources:
        if not source.targets:
            inputs.evals[source.spec["name"]] = list(_read_source(cfg, source, inputs.load_stats))
    for corpus in chimed.CORPORA:
        feeding = [s for s in sources if corpus in s.targets]
        inputs.corpora[corpus] = _corpus_records(cfg, feeding, corpus, inputs.load_stats)
    return inputs


def _corpus_records(cfg: ProfileConfig, sources: list[_Source], corpus: str,
                    load_stats: dict[int, dict]) -> Iterator[dict]:
    """The records of one corpus, source after source in profile order, converted as they are read. A
    source that feeds two corpora is read once for each (one corpus is built at a time)."""
    for source in sources:
        for rec in _read_source(cfg, source, load_stats):
            yield chimed.convert(rec, source.kind, corpus, source.spec)


def _read_source(cfg: ProfileConfig, source: _Source, load_stats: dict[int, dict]) -> Iterator[dict]:
    """One source's records, lazily; once it is exhausted its load statistics are checked (check_skips)
    and kept under its position in the profile."""
    from .sources import open_source

    spec = source.spec
    stream = open_source(spec["loader"], resolve_path(spec["path"]), errors=cfg.data.errors,
                         max_records=cfg.data.max_records_per_source, **spec.get("options", {}))
    for rec in stream:
        rec["source"] = spec["name"]  # the profile's source name wins over the loader's default tag
        yield rec
    stats = stream.stats.as_dict() | {"source": spec["name"], "path": str(spec["path"])}
    check_skips(stats, cfg.data.max_skip_fraction)
    load_stats.setdefault(source.index, stats)


class SourceRejected(ValueError):
    """A source that loaded nothing, or skipped more of its records than `data.max_skip_fraction`."""


def check_skips(stats: dict, max_fraction: float) -> None:
    """Stop the data stage on a source whose records were all (or too many) skipped under errors="skip": a
    reader that does not understand a file's layout would otherwise leave its corpus silently empty."""
    loaded, skipped = stats["loaded"], stats["skipped"]
    if loaded and skipped <= max_fraction * (loaded + skipped):
        return
    what = "loaded no records" if not loaded else f"skipped {skipped / (loaded + skipped):.1%} of its records"
    raise SourceRejected(f"source {stats['source']!r} ({stats['path']}) {what}: {loaded} loaded, {skipped} skipped "
                         f"(data.max_skip_fraction {max_fraction}); reasons {stats['skip_reasons']}; first: "
                         + " | ".join(stats.get("skip_examples", [])))


def input_fingerprints(cfg: ProfileConfig) -> dict[str, str]:
    """What the data artifact's key depends on besides the config: the inputs and the code that reads them.

    Code: every module of qilin_lib/data (loaders, generators, dedup, this stage), so a fix anywhere in
    the data path rebuilds the corpora instead of silently reusing stale ones. Local files: size +
    SHA-256 of the first and last 4 MiB (a full hash of a 5 GB corpus costs more than the stage it
    guards). Hub files: the spec itself (the hub pins revisions, not us).
    """
    data_dir = Path(__file__).parent
    code = b"".join(str(p.relative_to(data_dir)).encode() + b"\0" + p.read_bytes()
                    for p in sorted(data_dir.rglob("*.py")))
    prints = {"code": hashlib.sha256(code).hexdigest()[:16]}
    if cfg.data.generator == "tiny_kb":
        from importlib import resources

        kb = resources.files("qilin_lib.data.kb").joinpath("tiny_kb.json").read_bytes()
        return prints | {"tiny_kb": hashlib.sha256(kb).hexdigest()[:16]}
    for spec in cfg.data.sources:
        path = str(spec["path"])
        prints[spec["name"]] = path if path.startswith(HUB_PREFIX) else _file_fingerprint(Path(path).expanduser())
    # The contamination check reads the benchmarks' test files: a changed local file is a different input.
    # Hub ids, directories and files not there yet (reported as not checked) are keyed by their name.
    for name, entry in sorted(cfg.data.benchmarks.items()):
        entry = {"path": entry} if isinstance(entry, str) else entry
        for field_name in ("path", "test_ids"):
            value = str(entry.get(field_name) or "")
            local = Path(value).expanduser()
            local = local if local.is_absolute() else repo_root() / local
            prints[f"benchmark:{name}:{field_name}"] = _file_fingerprint(local) if value and local.is_file() else value
    return prints


def _file_fingerprint(path: Path, window: int = 4 << 20) -> str:
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such file (a data source of this profile)")
    digest = hashlib.sha256(str(path.stat().st_size).encode())
    with open(path, "rb") as fh:
        digest.update(fh.read(window))
        if path.stat().st_size > window:
            fh.seek(-window, 2)
            digest.update(fh.read(window))
    return digest.hexdigest()[:16]


def data_artifact(cfg: ProfileConfig) -> StageArtifact:
    data = dataclasses.asdict(cfg.data)
    data.pop("num_proc")  # how many processes tokenise the corpus for DCPT, not what this stage builds
    config = {"data": data, "seed": cfg.seed}
    return StageArtifact(cfg.name, STAGE, config=config, inputs=input_fingerprints(cfg))


# ------------------------------------------------------------------------------------------- stage
def run_data_stage(cfg: ProfileConfig, force: bool = False, progress: bool = True) -> DataStageResult:
    art = data_artifact(cfg)
    reused = art.complete and not force
    if not reused:
        start = time.perf_counter()
        inputs = _tiny_inputs(cfg) if cfg.data.generator == "tiny_kb" else _source_inputs(cfg)
        timing: dict = {}  # goes to the manifest, not into the hashed outputs: reruns hash the same
        with art.writing(extra=timing) as out:
            stats = _build_outputs(inputs, out, cfg, progress)
            stats.update(profile=cfg.name, generator=cfg.data.generator, sources=inputs.source_stats(),
                         **inputs.metadata)
            if "tiny" in stats:  # what DCPT will really see: exposures counted after deduplication
                from .tiny import count_exposures

                groups = stats["tiny"]["groups"]
                stats["tiny"]["exposures_per_fact_per_epoch_after_dedup"] = count_exposures(
                    _written_texts(out / "chimed_cpt"), groups["dcpt"] + groups["sft"])
            (out / STATS_FILE).write_text(json.dumps(stats, ensure_ascii=False, indent=2), encoding="utf-8")
            timing["build_seconds"] = round(time.perf_counter() - start, 2)
    stats = json.loads((art.path / STATS_FILE).read_text("utf-8"))
    stats["artifact"] = {"key": art.key, "output_hash": art.manifest["output_hash"]}
    atomic_write_json(results_dir(cfg.name) / STATS_FILE, stats)
    from .card import write_data_card  # pandas: only once the corpora are built

    write_data_card(stats, cfg.name)
    stats["build_seconds"] = art.manifest.get("build_seconds")  # for the notebook; not committed
    return DataStageResult(path=art.path, stats=stats, reused=reused)


def _build_outputs(inputs: StageInputs, out: Path, cfg: ProfileConfig, progress: bool) -> dict:
    """Every corpus (one at a time) and eval set into `out`; returns their statistics."""
    content = ContentHash(chimed.CORPORA)
    corpora, dedup = {}, {}
    sets, not_checked = benchmark_test_sets(cfg, inputs.evals)
    decon = cfg.data.decontamination
    check = ContaminationCheck(sets, cfg.data.dedup, drop=decon.drop, examples=decon.examples,
                               skipped=not_checked, tmp_dir=out)
    try:
        for corpus in chimed.CORPORA:
            corpora[corpus], dedup[corpus] = _build_corpus(corpus, inputs.corpora.get(corpus, ()),
                                                           out / f"chimed_{corpus}", cfg, progress, content, check)
    finally:
        check.close()
    for name, recs in inputs.evals.items():
        write_records(out / "eval" / name, recs, infer_features(recs))
    return {"corpora": corpora, "eval_sets": {name: len(recs) for name, recs in inputs.evals.items()},
            "dedup": dedup, "decontamination": check.as_dict(), "content_hash": content.hexdigest()}


def _build_corpus(corpus: str, records: Iterable[dict], path: Path, cfg: ProfileConfig, progress: bool,
                  content: ContentHash, check: ContaminationCheck) -> tuple[dict, dict]:
    """Deduplicate one corpus's records as they stream in, look each kept one up among the benchmark test
    items (dropping it when data.decontamination.drop says so) and write the rest; returns its
    composition (corpus counts) and its dedup report."""
    # Preference pairs built from one ranking share prompt and chosen answer and differ in the rejected
    # one: near-duplicate text, distinct training signal. DPO is therefore deduplicated exactly only.
    dedup_cfg = dataclasses.replace(cfg.data.dedup, near=False) if corpus == "dpo" else cfg.data.dedup
    report, counts = DedupReport(), CorpusCounts(corpus)
    # The engine's stored rows (776 bytes per kept document) go to an anonymous temporary file next to
    # the outputs (the artifact's directory being written, on the disk that holds the corpora), not to
    # a /tmp that may be small or in RAM; it never has a name there and is gone when the corpus is done.
    kept = iter_dedup_records(records, text_key=lambda r: chimed.dedup_text(r, corpus), config=dedup_cfg,
                              progress=progress, report=report, tmp_dir=path.parent,
                              kept_filter=check.batch_filter(corpus))
    with CorpusWriter(path, corpus_features(corpus)) as writer:
        for rec in kept:
            writer.write(rec)
            counts.add(rec)
            content.add(corpus, rec)
    return counts.as_dict(), report.as_dict()


def _written_texts(path: Path) -> list[dict]:
    """The `text` of a written corpus, as records (the tiny profile's exposure count reads them back)."""
    from datasets import load_from_disk

    if not (path / "state.json").exists():  # no records, no dataset
        return []
    return [{"text": text} for text in load_from_disk(str(path))["text"]]


# ------------------------------------------------------------------------------------------ saving
class CorpusWriter:
    """Records -> a directory that `datasets.load_from_disk` reads, written as they arrive: the layout and
    bytes of `Dataset.save_to_disk` (Arrow shards of record batches of BATCH_ROWS rows, state.json,
    dataset_info.json), holding two batches in memory.

    Columns are those of `features` (sorted by name, as the stage always wrote them): a key a record lacks
    becomes None; a key outside them is an error naming the record's source. Without records no dataset
    is written and the directory stays empty, as before.

    Byte for byte: save_to_disk writes slices of one table, and Arrow's IPC writer pads a slice's string
    data to 64 bytes with the bytes that follow it in the table, i.e. the next rows' text. So each batch is
    written as a slice of itself + the next batch. The fingerprint in state.json (downstream `map()`
    caches are named after it) is the one `datasets` gives the same rows held in memory (what
    Dataset.from_list gave) while the data is at most IN_MEMORY_FINGERPRINT_BYTES: small corpora, the tiny
    profile's among them, come out identical to those the list-based stage saved. Computing it needs the
    table in memory, so a larger corpus gets the hash of its shards' bytes instead (a content hash too).
    """

    BATCH_ROWS = 1000                 # datasets.config.DEFAULT_MAX_BATCH_SIZE: save_to_disk's batch
    BATCH_CHARS = 32_000_000          # ... closed early by long records (~100 MB of UTF-8 at most)
    IN_MEMORY_FINGERPRINT_BYTES = 16 << 20  # computing it takes ~3x this in memory for a moment

    def __init__(self, path: Path, features):
        from datasets import config
        from datasets.utils.py_utils import convert_file_size_to_int

        self.path, self.features = Path(path), features
        self.columns = set(features)
        self.max_shard_bytes = convert_file_size_to_int(config.MAX_SHARD_SIZE)  # save_to_disk's 500MB
        self.rows = 0                   # written so far
        self._batch: list[dict] = []    # records of the batch being filled
        self._batch_chars = 0
        self._pending = None            # the last full batch (Arrow), written once the next one is known
        self._shards: list[Path] = []
        self._shard_bytes = 0
        self._writer = None

    def __enter__(self) -> "CorpusWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        elif self._writer is not None:  # the caller's directory is discarded; just release the file
            self._writer.close()

    def write(self, record: dict) -> None:
        extra = record.keys() - self.columns
        if extra:
            raise ValueError(f"{self.path.name}: a record of source {record.get('source')!r} has key(s) "
                             f"{sorted(extra)} outside the columns {sorted(self.columns)} "
                             "(qilin_lib.data.records.CORPUS_COLUMNS)")
        self._batch.append(record)
        self._batch_chars += _chars(record)
        if len(self._batch) >= self.BATCH_ROWS or self._batch_chars >= self.BATCH_CHARS:
            batch = self._table(self._batch)
            if self._pending is not None:
                self._write(self._pending, following=batch)
            self._pending, self._batch, self._batch_chars = batch, [], 0

    def close(self) -> None:
        last = self._table(self._batch) if self._batch else None
        if self._pending is not None:
            self._write(self._pending, following=last)
        if last is not None:
            self._write(last, following=None)
        self._pending, self._batch = None, []
        if self._writer is not None:
            self._close_shard()
        if not self._shards:
            self.path.mkdir(parents=True, exist_ok=True)
            return
        files = []
        for i, part in enumerate(self._shards):
            files.append(part.with_name(f"data-{i:05d}-of-{len(self._shards):05d}.arrow"))
            part.rename(files[-1])
        self._write_json(files, self._fingerprint(files))

    def _write(self, batch, following) -> None:
        """One record batch; its arrays share their buffers with the next batch's (one table, sliced)."""
        import pyarrow as pa

        if following is not None:
            batch = pa.concat_tables([batch, following]).combine_chunks().slice(0, batch.num_rows)
        if self._writer is None:
            self._open_shard()
        self._writer.write_table(batch)
        self.rows += batch.num_rows
        self._shard_bytes += batch.nbytes
        if self._shard_bytes >= self.max_shard_bytes:
            self._close_shard()

    def _table(self, rows: list[dict]):
        """Rows -> an Arrow table of `features`, converted as datasets' ArrowWriter converts a batch."""
        import pyarrow as pa
        from datasets.arrow_writer import OptimizedTypedSequence

        arrays = [pa.array(OptimizedTypedSequence([row.get(name) for row in rows], type=feature, col=name))
                  for name, feature in self.features.items()]
        return pa.Table.from_arrays(arrays, schema=self.features.arrow_schema)

    def _open_shard(self) -> None:
        from datasets.arrow_writer import ArrowWriter

        self.path.mkdir(parents=True, exist_ok=True)
        shard = self.path / f"data-{len(self._shards):05d}.arrow.part"  # renamed once the count is known
        self._shards.append(shard)
        self._shard_bytes = 0
        self._writer = ArrowWriter(features=self.features, path=str(shard), embed_local_files=True)

    def _close_shard(self) -> None:
        self._writer.finalize()
        self._writer.close()
        self._writer = None

    def _fingerprint(self, files: list[Path]) -> str:
        from datasets import Dataset, DatasetInfo
        from datasets.table import InMemoryTable

        if sum(f.stat().st_size for f in files) > self.IN_MEMORY_FINGERPRINT_BYTES:
            return hash_obj([hash_file(f) for f in files])
        import pyarrow as pa

        # Dataset.from_list hashed its table before adding the features metadata, one chunk per column
        table = pa.concat_tables([InMemoryTable.from_file(str(f)).table for f in files]).combine_chunks()
        table = InMemoryTable(table.replace_schema_metadata(None))
        return Dataset(table, info=DatasetInfo(features=self.features))._fingerprint

    def _write_json(self, files: list[Path], fingerprint: str) -> None:
        """state.json and dataset_info.json as save_to_disk writes them."""
        from datasets import DatasetInfo
        from datasets.utils.py_utils import asdict

        state = {"_data_files": [{"filename": f.name} for f in files], "_fingerprint": fingerprint,
                 "_format_columns": None, "_format_kwargs": {}, "_format_type": None,
                 "_output_all_columns": False, "_split": None}
        with open(self.path / "state.json", "w", encoding="utf-8") as fh:
            json.dump(state, fh, indent=2, sort_keys=True)
        info = asdict(DatasetInfo(features=self.features))
        with open(self.path / "dataset_info.json", "w", encoding="utf-8") as fh:
            json.dump({key: info[key] for key in sorted(info)}, fh, indent=2)


def _chars(value) -> int:
    """Characters of text in a record (its nested messages included), to bound a batch's size."""
    kind = type(value)
    if kind is str:
        return len(value)
    if kind is dict:
        value = value.values()
    elif kind is not list and kind is not tuple:
        return 0
    return sum(len(v) if type(v) is str else _chars(v) for v in value)


def infer_features(recs: list[dict]):
    """The columns of a list of records: the union of their keys, sorted, in the types `datasets` infers
    for them (Dataset.from_list's inference, on every row; eval sets are small)."""
    from datasets import Dataset, Features

    if not recs:
        return Features()
    columns = sorted({key for rec in recs for key in rec})
    return Dataset.from_list([{key: rec.get(key) for key in columns} for rec in recs]).features


def write_records(path: Path, recs: Iterable[dict], features) -> int:
    """Write records as a dataset of `features` (CorpusWriter); returns how many were written."""
    with CorpusWriter(path, features) as writer:
        for rec in recs:
            writer.write(rec)
    return writer.rows


# ------------------------------------------------------------------------------------- statistics
class CorpusCounts:
    """Counts behind the paper's Tables 1-3 (ChiMed-CPT / -SFT / -DPO composition), record by record."""

    GROUP = {"cpt": lambda r: (r["subset"], r["source"]),
             "sft": lambda r: (r.get("category", "medical"), r.get("turns", "single"), r["source"]),
             "dpo": lambda r: (r["source"],)}

    def __init__(self, corpus: str):
        self.corpus = corpus
        self.records: Counter = Counter()
        self.chars: Counter = Counter()

    def add(self, rec: dict) -> None:
        group = self.GROUP[self.corpus](rec)
        self.records[group] += 1
        self.chars[group] += len(chimed.dedup_text(rec, self.corpus))

    def as_dict(self) -> dict:
        rows = [{"group": list(g), "records": n, "chars": self.chars[g]} for g, n in sorted(self.records.items())]
        return {"records": sum(self.records.values()), "chars": sum(self.chars.values()), "rows": rows}


class ContentHash:
    """`hash_obj({corpus: [hash_obj(record), ...]})` over the kept records, without holding the records:
    8 bytes per record (its 16-hex-digit hash), serialised at the end exactly as canonical_json would."""

    def __init__(self, corpora: Iterable[str]):
        self._hashes = {corpus: bytearray() for corpus in corpora}

    def add(self, corpus: str, record: dict) -> None:
        self._hashes[corpus] += bytes.fromhex(hash_obj(record))

    def hexdigest(self) -> str:
        digest = hashlib.sha256(b"{")
        for i, corpus in enumerate(sorted(self._hashes)):  # canonical_json sorts keys
            digest.update(("," if i else "").encode() + json.dumps(corpus, ensure_ascii=False).encode() + b":[")
            hashes = self._hashes[corpus]
            for start in range(0, len(hashes), 8 << 16):  # 65,536 records per update
                chunk = hashes[start: start + (8 << 16)]
                items = ",".join(f'"{chunk[j: j + 8].hex()}"' for j in range(0, len(chunk), 8))
                digest.update((b"," if start else b"") + items.encode())
            digest.update(b"]")
        digest.update(b"}")
        return digest.hexdigest()[:16]


def load_corpus(cfg: ProfileConfig, name: str):
    """A built corpus (`cpt`, `sft`, `dpo`) or eval set (`eval/cmexam`, ...) as a datasets.Dataset."""
    from datasets import load_from_disk

    art = data_artifact(cfg)
    if not art.complete:
        raise FileNotFoundError(f"no complete data artifact for profile {cfg.name!r} at {art.path}: "
                                "run notebook 01 (or `qilin reproduce --only 01`) first")
    sub = name if name.startswith("eval/") else f"chimed_{name}"
    return load_from_disk(str(art.path / sub))
