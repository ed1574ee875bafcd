"""The artifact cache: keyed by config and inputs, complete only when fully written, atomic on failure,
safe under concurrent writers and readers, and clean after killed runs."""

import json
import multiprocessing
import os
import signal
import time

import pytest

from qilin_lib.cache import MANIFEST, StageArtifact, atomic_write_json, hash_file, hash_obj

# fork: the children only write files, and start in milliseconds instead of re-importing the package
FORK = multiprocessing.get_context("fork")


def test_key_depends_on_config_and_inputs(tmp_path):
    a = StageArtifact("tiny", "data", {"x": 1}, {"kb": "h1"}, root=tmp_path)
    assert a.key == StageArtifact("tiny", "data", {"x": 1}, {"kb": "h1"}, root=tmp_path).key
    assert a.key != StageArtifact("tiny", "data", {"x": 2}, {"kb": "h1"}, root=tmp_path).key
    assert a.key != StageArtifact("tiny", "data", {"x": 1}, {"kb": "h2"}, root=tmp_path).key
    assert a.key != StageArtifact("tiny", "sft", {"x": 1}, {"kb": "h1"}, root=tmp_path).key


def test_complete_only_after_writing_finishes(tmp_path):
    art = StageArtifact("tiny", "data", {"x": 1}, root=tmp_path)
    assert not art.complete
    with art.writing() as out:
        (out / "a.txt").write_text("hello", encoding="utf-8")
        assert not art.complete and not art.path.exists()
    assert art.complete
    manifest = art.manifest
    assert manifest["files"]["a.txt"]["bytes"] == 5
    assert manifest["output_hash"] == hash_obj(manifest["files"])


def test_failure_leaves_nothing_behind(tmp_path):
    art = StageArtifact("tiny", "data", {"x": 1}, root=tmp_path)
    with pytest.raises(RuntimeError):
        with art.writing() as out:
            (out / "half.txt").write_text("half", encoding="utf-8")
            raise RuntimeError("crash mid-write")
    assert not art.complete and not art.path.exists()
    assert [p.name for p in tmp_path.iterdir()] == [art.lock_path.name]  # no temp directory either


def test_forced_rebuild_replaces_the_old_artifact(tmp_path):
    art = StageArtifact("tiny", "data", {"x": 1}, root=tmp_path)
    with art.writing() as out:
        (out / "old.txt").write_text("old", encoding="utf-8")
    with art.writing() as out:
        (out / "new.txt").write_text("new", encoding="utf-8")
    assert sorted(p.name for p in art.path.iterdir()) == ["manifest.json", "new.txt"]


def test_a_directory_without_a_complete_manifest_is_not_complete(tmp_path):
    art = StageArtifact("tiny", "data", {"x": 1}, root=tmp_path)
    art.path.mkdir(parents=True)
    (art.path / "manifest.json").write_text(json.dumps({"complete": False}), encoding="utf-8")
    assert not art.complete
    (art.path / "manifest.json").write_text("{truncated", encoding="utf-8")
    assert not art.complete


def test_atomic_write_json_roundtrip(tmp_path):
    path = atomic_write_json(tmp_path / "sub" / "r.json", {"b": 1, "a": "中文"})
    assert json.loads(path.read_text("utf-8")) == {"a": "中文", "b": 1}
    assert [p.name for p in path.parent.iterdir()] == ["r.json"]


def test_model_hash_follows_the_weights_not_the_run_record(tmp_path):
    """Retraining to identical weights keeps later stages' cache keys: wall times, a dated training_args.bin
    and an adapter config naming an absolute path change the artifact's output hash but not model_hash."""
    from qilin_lib.train.common import METRICS_FILE, model_hash

    hashes = []
    for run, weights in (("a", b"same weights"), ("b", b"same weights"), ("c", b"other weights")):
        art = StageArtifact("tiny", "sft", {"run": run}, root=tmp_path)
        with art.writing() as out:
            (out / "adapter").mkdir()
            (out / "model.safetensors").write_bytes(weights)
            (out / "tokenizer.json").write_text("{}", encoding="utf-8")
            (out / METRICS_FILE).write_text(f'{{"wall_s": "{run}"}}', encoding="utf-8")
            (out / "adapter" / "training_args.bin").write_bytes(run.encode())
            (out / "adapter" / "adapter_config.json").write_text(f'{{"base": "/{run}/dcpt"}}', encoding="utf-8")
        hashes.append((model_hash(art.path), art.manifest["output_hash"]))
    assert hashes[0][0] == hashes[1][0] != hashes[2][0]
    assert hashes[0][1] != hashes[1][1]


def test_reuse_or_start_decides_reuse_lookup_and_forced_restart(tmp_path):
    from qilin_lib.config import load_config
    from qilin_lib.train.common import METRICS_FILE, StageNotTrained, reuse_or_start, work_dir

    cfg = load_config("tiny")
    art = StageArtifact("tiny", "sft", {"x": 1}, root=tmp_path)
    with pytest.raises(StageNotTrained, match="qilin train sft"):
        reuse_or_start(cfg, "sft", art, force=False, reuse_only=True)     # a lookup never trains
    work_dir(art).mkdir(parents=True)
    assert reuse_or_start(cfg, "sft", art, force=False, reuse_only=False) is None
    assert work_dir(art).exists()                                        # checkpoints kept for resuming
    assert reuse_or_start(cfg, "sft", art, force=True, reuse_only=False) is None
    assert not work_dir(art).exists()                                    # a forced run starts over
    with art.writing() as out:
        (out / METRICS_FILE).write_text('{"final_loss": 0.5}', encoding="utf-8")
    run = reuse_or_start(cfg, "sft", art, force=False, reuse_only=True)
    assert run.reused and run.path == art.path and run.metrics == {"final_loss": 0.5}
    assert reuse_or_start(cfg, "sft", art, force=True, reuse_only=False) is None


# ---------------------------------------------------------------- concurrency and killed runs

def _publish(root, tag: str, times: int) -> None:
    art = StageArtifact("tiny", "data", {"x": 1}, root=root)
    for i in range(times):
        with art.writing() as out:
            for n in range(4):  # contents differ per writer and round: a mixed version shows up
                (out / f"part{n}.txt").write_text(f"{tag}{i}-{n}" * 2000, encoding="utf-8")


def _matches_manifest(art: StageArtifact) -> bool:
    files = art.manifest["files"]
    on_disk = {str(p.relative_to(art.path)) for p in art.path.rglob("*") if p.is_file()} - {MANIFEST}
    return on_disk == set(files) and all(hash_file(art.path / n) == f["sha256"] for n, f in files.items())


def _tmp_dirs(root) -> set[str]:
    return {p.name for p in root.glob(".*.tmp")}


def test_concurrent_forced_publishes_all_succeed_and_readers_see_one_version(tmp_path):
    writers = [FORK.Process(target=_publish, args=(tmp_path, tag, 8)) for tag in "abcd"]
    for w in writers:
        w.start()
    art = StageArtifact("tiny", "data", {"x": 1}, root=tmp_path)
    while any(w.is_alive() for w in writers):
        with art.reading():
            assert not art.complete or _matches_manifest(art)
    for w in writers:
        w.join()
    assert [w.exitcode for w in writers] == [0, 0, 0, 0]
    assert art.complete and _matches_manifest(art)
    assert _tmp_dirs(tmp_path) == set()


def _write_and_hang(root, config: dict, ready) -> None:
    with StageArtifact("tiny", "data", config, root=root).writing() as out:
        (out / "half.txt").write_text("half", encoding="utf-8")
        ready.set()
        time.sleep(120)


def _hanging_writer(root, config: dict):
    ready = FORK.Event()
    proc = FORK.Process(target=_write_and_hang, args=(root, config, ready))
    proc.start()
    assert ready.wait(30)
    return proc


def test_leftovers_of_killed_writers_are_removed_and_live_writers_kept(tmp_path):
    live = _hanging_writer(tmp_path, {"x": 4})  # holds its key's lock while its tmp dir fills
    try:
        live_tmp = _tmp_dirs(tmp_path)
        killed = _hanging_writer(tmp_path, {"x": 1})  # the key published below, killed mid-write
        os.kill(killed.pid, signal.SIGKILL)
        killed.join()
        other = StageArtifact("tiny", "data", {"x": 3}, root=tmp_path)
        (tmp_path / f".{other.path.name}.abc123.tmp").mkdir()  # another key's run, killed long ago
        assert len(live_tmp) == 1 and len(_tmp_dirs(tmp_path) - live_tmp) == 2
        art = StageArtifact("tiny", "data", {"x": 1}, root=tmp_path)
        with art.writing() as out:
            (out / "a.txt").write_text("a", encoding="utf-8")
        assert _tmp_dirs(tmp_path) == live_tmp
        assert art.complete and _matches_manifest(art)
    finally:
        live.kill()
        live.join()


def test_a_reader_inside_its_own_writer_does_not_deadlock(tmp_path):
    art = StageArtifact("tiny", "data", {"x": 1}, root=tmp_path)
    with art.writing() as out:
        (out / "a.txt").write_text("a", encoding="utf-8")
        with art.reading():
            assert not art.complete
        with pytest.raises(RuntimeError, match="already holds"):
            with art.writing():
                pass
    with art.reading():
        assert art.manifest["files"]["a.txt"]["bytes"] == 1
