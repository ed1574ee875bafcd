"""The model step of the paper profiles (`model.convert: baichuan`): the Baichuan checkpoint the profile names is
converted once into the artifact cache, and every stage loads the converted native Llama without remote code.

The checkpoint is a small random-weight Baichuan built with the authors' code (tests/test_convert_baichuan.py);
the hub is never contacted: `snapshot_download` is replaced by a fake that serves that directory.
"""

from __future__ import annotations

import json
import os
import re
from fnmatch import fnmatch

import pytest
import torch
from test_convert_baichuan import _load_reference_model, _reference_tokenizer, ref, write_checkpoint  # noqa: F401
from transformers import LlamaForCausalLM

from qilin_lib import convert
from qilin_lib.config import ConfigError, load_config
from qilin_lib.modeling import load_model_and_tokenizer
from qilin_lib.train.common import base_model_dir

HUB_ID = "baichuan-inc/Baichuan-7B"
LATEST = "f" * 40  # the commit the fake hub's main branch points at
PROMPTS = ["高血压患者常有头痛，应如何处理？", " <reserved_102> 头痛怎么办？ <reserved_103> "]


@pytest.fixture(scope="module")
def baichuan(ref, shared_data, tmp_path_factory):  # noqa: F811 (ref: the imported fixture)
    return write_checkpoint(ref, tmp_path_factory.mktemp("baichuan"), shared_data)


@pytest.fixture
def conversions(monkeypatch):
    """The source directories convert_baichuan was called with."""
    calls, real = [], convert.convert_baichuan
    monkeypatch.setattr(convert, "convert_baichuan", lambda src, dst: calls.append(src) or real(src, dst))
    return calls


def _fake_hub(monkeypatch, root, source=None):
    """snapshot_download serving `source`'s files under root/snapshots/<commit>, as the hub cache lays them
    out; only the files allow_patterns asks for. Returns the calls (repo, revision, patterns)."""
    calls = []

    def snapshot_download(repo_id, *, revision=None, allow_patterns=None):
        calls.append((repo_id, revision, allow_patterns))
        snapshot = root / "snapshots" / (revision or LATEST)
        snapshot.mkdir(parents=True, exist_ok=True)
        for file in source.iterdir() if source else ():
            if any(fnmatch(file.name, p) for p in allow_patterns) and not (snapshot / file.name).exists():
                (snapshot / file.name).symlink_to(file)
        return str(snapshot)

    monkeypatch.setattr(convert, "snapshot_download", snapshot_download)
    return calls


def _manifest(path):
    return json.loads((path / "manifest.json").read_text("utf-8"))


def test_a_local_checkpoint_is_converted_once_and_loads_as_native_llama(sandbox, ref, baichuan,  # noqa: F811
                                                                         conversions):
    # random weights predict at chance: the paper profile's perplexity load check is off for them
    cfg = load_config("paper", {"model.name_or_path": str(baichuan), "model.max_probe_perplexity": 0.0})
    assert cfg.model.convert == "baichuan" and cfg.model.trust_remote_code is False
    path = base_model_dir(cfg)
    manifest = _manifest(path)
    assert manifest["complete"] and path.parent == sandbox / "artifacts" / "paper"
    assert manifest["config"]["source"] == str(baichuan) and conversions == [baichuan]
    assert "auto_map" not in json.loads((path / "config.json").read_text())  # nothing points at hub code

    stamp = (path / "manifest.json").stat().st_mtime_ns
    assert base_model_dir(cfg) == path and conversions == [baichuan]  # reused, not rewritten
    assert (path / "manifest.json").stat().st_mtime_ns == stamp

    model, tokenizer = load_model_and_tokenizer(cfg.model, path)  # bfloat16 -> float32 on CPU
    assert type(model) is LlamaForCausalLM and model.config._attn_implementation == "sdpa"
    assert model.dtype == torch.float32
    reference, reference_tokenizer = _load_reference_model(ref, baichuan), _reference_tokenizer(ref, baichuan)
    with torch.no_grad():
        for prompt in PROMPTS:
            ids = tokenizer(prompt)["input_ids"]
            assert ids == reference_tokenizer(prompt)["input_ids"]
            diff = (model(torch.tensor([ids])).logits - reference(torch.tensor([ids])).logits).abs().max().item()
            assert diff <= 1e-5, prompt

    weights = baichuan / "pytorch_model.bin"  # other weights of the same size: converted again
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 10**9))
    assert base_model_dir(cfg) != path and len(conversions) == 2


def test_a_hub_id_is_downloaded_at_the_profile_revision(sandbox, baichuan, conversions, monkeypatch):
    calls = _fake_hub(monkeypatch, sandbox / "hub", baichuan)
    meta, safetensors, bins = convert.META_FILES, convert.SAFETENSORS_FILES, convert.BIN_FILES
    pinned = "0123456789abcdef" * 2 + "01234567"
    cfg = load_config("paper", {"model.revision": pinned})
    path = base_model_dir(cfg)
    # config + tokenizer fix the commit; then safetensors, and the .bin weights since the repo has none
    assert calls == [(HUB_ID, pinned, meta), (HUB_ID, pinned, meta + safetensors), (HUB_ID, pinned, meta + bins)]
    manifest = _manifest(path)
    assert manifest["inputs"]["commit"] == pinned and manifest["config"]["source"] == HUB_ID

    calls.clear()
    assert base_model_dir(cfg) == path and len(conversions) == 1
    assert calls == [(HUB_ID, pinned, meta)]  # a reuse downloads no weights

    calls.clear()
    latest = base_model_dir(load_config("paper"))  # revision "": the latest commit, resolved once
    assert [c[1] for c in calls] == [None, LATEST, LATEST] and latest != path
    assert _manifest(latest)["inputs"]["commit"] == LATEST


def test_errors_name_the_source_and_what_it_lacks(sandbox, tmp_path, monkeypatch):
    src = tmp_path / "checkpoint"
    src.mkdir()
    (src / "config.json").write_text(json.dumps({"model_type": "baichuan"}))
    cfg = load_config("paper", {"model.name_or_path": str(src)})
    with pytest.raises(FileNotFoundError, match=re.escape(f"{src}: not a convertible Baichuan checkpoint, missing "
                                                          "tokenizer.model, weights")):
        base_model_dir(cfg)
    (src / "tokenizer.model").write_bytes(b"")
    (src / "pytorch_model.bin").write_bytes(b"")
    (src / "config.json").write_text(json.dumps({"model_type": "llama"}))
    with pytest.raises(ValueError, match=re.escape(f"{src}: config.json has model_type 'llama', expected 'baichuan'")):
        base_model_dir(cfg)

    calls = _fake_hub(monkeypatch, tmp_path / "hub")  # a repo without the files: fails before any weights
    lacking = f"{HUB_ID} at commit {LATEST}: .*missing config.json, tokenizer.model$"
    with pytest.raises(FileNotFoundError, match=lacking):
        base_model_dir(load_config("paper"))
    assert calls == [(HUB_ID, None, convert.META_FILES)]

    with pytest.raises(ValueError, match="tiny model is built by the repo"):
        base_model_dir(load_config("tiny", {"model.convert": "baichuan"}))
    with pytest.raises(ConfigError, match="model.convert"):
        load_config("paper", {"model.convert": "llama"})
