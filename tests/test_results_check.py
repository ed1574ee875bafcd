"""The committed-results check on every machine: exact where the numerics fingerprints match, the claims
within measured tolerances where they do not, and a stale number caught either way."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qilin_lib import numerics
from qilin_lib.results_check import (check_results, family, load_tolerances, measure_tolerances,
                                     tree_numerics)

AVX2 = {"machine": "x86_64", "torch": "2.13.0+cpu", "blas": "mkl", "cpu_capability": "AVX2",
        "mkl_instructions": "AVX2", "onednn_max_isa": "AVX2", "threads": 2}
SCALAR = AVX2 | {"cpu_capability": "DEFAULT", "mkl_instructions": "SSE4_2", "onednn_max_isa": "SSE41"}
TOLERANCES = {"families": {"eval_cmexam:metrics/accuracy": {"relative": False, "tolerance": 3.0},
                           "train_sft:final_loss": {"relative": True, "tolerance": 0.01},
                           "table eval_cmexam:accuracy": {"relative": False, "tolerance": 3.0}}}


def _tree(root: Path, numerics_print: dict, accuracy: float, loss: float, answer: str) -> Path:
    (root / "tables").mkdir(parents=True)
    (root / "predictions").mkdir()
    prov = {"provenance": {"numerics": numerics_print, "git_commit": "x"}}
    (root / "eval_sft_cmexam.json").write_text(json.dumps({"metrics": {"accuracy": accuracy, "n": 300},
                                                           "model_hash": answer, **prov}))
    (root / "train_sft.json").write_text(json.dumps({"final_loss": loss, "global_steps": 100, **prov}))
    (root / "tables" / "eval_cmexam.csv").write_text(f"model,accuracy\nsft,{accuracy}\n")
    (root / "predictions" / "sft_cmexam.jsonl").write_text(json.dumps({"id": 1, "output": answer}) + "\n")
    return root


def test_same_numerics_compare_everything_exactly(tmp_path):
    a = _tree(tmp_path / "a", AVX2, 40.0, 0.70, "B")
    b = _tree(tmp_path / "b", AVX2, 40.0, 0.70, "B")
    report = check_results(a, b, TOLERANCES)
    assert (report.mode, report.problems) == ("exact", [])
    shutil.rmtree(b)
    _tree(b, AVX2, 41.0, 0.70, "C")                       # within the tolerance, but the numerics match
    problems = check_results(a, b, TOLERANCES).problems
    assert any("eval_sft_cmexam.json.metrics.accuracy" in p for p in problems)
    assert any("sft_cmexam.jsonl" in p for p in problems)  # predictions count when the numerics match


def test_other_numerics_compare_the_claims_within_measured_tolerances(tmp_path):
    a = _tree(tmp_path / "a", AVX2, 40.0, 0.700, "B")
    b = _tree(tmp_path / "b", SCALAR, 41.5, 0.703, "C")     # other low bits: other answers and hashes
    report = check_results(a, b, TOLERANCES)
    assert (report.mode, report.problems) == ("claims", [])
    shutil.rmtree(b)
    _tree(b, SCALAR, 47.0, 0.703, "C")                     # 7 points off: stale or hand-edited
    problems = check_results(a, b, TOLERANCES).problems
    assert any("metrics.accuracy" in p and "tolerance 3" in p for p in problems)
    assert any("eval_cmexam.csv" in p for p in problems)


def test_a_metric_without_a_measured_tolerance_fails_when_it_differs(tmp_path):
    a = _tree(tmp_path / "a", AVX2, 40.0, 0.70, "B")
    b = _tree(tmp_path / "b", SCALAR, 40.0, 0.70, "B")
    data = json.loads((b / "train_sft.json").read_text())
    data["global_steps"] = 101
    (b / "train_sft.json").write_text(json.dumps(data))
    report = check_results(a, b, TOLERANCES)
    assert any("no measured tolerance for 'train_sft:global_steps'" in p for p in report.problems)


def test_a_tree_without_one_fingerprint_is_compared_by_its_claims(tmp_path):
    a = _tree(tmp_path / "a", AVX2, 40.0, 0.70, "B")
    b = _tree(tmp_path / "b", AVX2, 40.0, 0.70, "B")
    data = json.loads((b / "train_sft.json").read_text())
    data["provenance"]["numerics"] = SCALAR                 # one notebook rerun elsewhere: a mixed tree
    (b / "train_sft.json").write_text(json.dumps(data))
    assert tree_numerics(b) is None and check_results(a, b, TOLERANCES).mode == "claims"


def test_interval_bounds_are_held_to_their_metrics_tolerance(tmp_path):
    a = _tree(tmp_path / "a", AVX2, 40.0, 0.70, "B")
    b = _tree(tmp_path / "b", SCALAR, 41.5, 0.70, "C")

    def add_bounds(root: Path, lo: float, hi: float) -> None:
        data = json.loads((root / "eval_sft_cmexam.json").read_text())
        data["metrics"]["accuracy_ci95"] = [lo, hi]
        (root / "eval_sft_cmexam.json").write_text(json.dumps(data))
        (root / "tables" / "eval_cmexam.csv").write_text(
            f"model,accuracy,accuracy ci95_lo,accuracy ci95_hi\nsft,{data['metrics']['accuracy']},{lo},{hi}\n")
    assert family("eval_sft_cmexam.json", ("metrics", "accuracy_ci95", 1)) == "eval_cmexam:metrics/accuracy"
    assert family("tables/eval_cmexam.csv", (0, "accuracy ci95_lo")) == "table eval_cmexam:accuracy"
    add_bounds(a, 34.5, 45.6)
    add_bounds(b, 36.0, 47.0)                              # moved with the metric, within its 3 points
    assert check_results(a, b, TOLERANCES).problems == []
    add_bounds(b, 30.0, 47.0)                              # a bound 4.5 points off: beyond the metric's 3
    problems = check_results(a, b, TOLERANCES).problems
    assert any("accuracy_ci95[0]" in p for p in problems) and any("accuracy ci95_lo" in p for p in problems)


def test_measured_tolerances_are_twice_the_largest_difference_per_family(tmp_path):
    a = _tree(tmp_path / "a", AVX2, 40.0, 0.70, "B")
    v1 = _tree(tmp_path / "v1", SCALAR, 42.0, 0.71, "C")
    v2 = _tree(tmp_path / "v2", SCALAR, 39.0, 0.70, "D")
    measured = measure_tolerances(a, [v1, v2], how="test")
    fams = measured["families"]
    accuracy, loss = fams["eval_cmexam:metrics/accuracy"], fams["train_sft:final_loss"]
    assert accuracy["tolerance"] == pytest.approx(4.0) and not accuracy["relative"]
    assert loss["relative"] and loss["tolerance"] == pytest.approx(2 * 0.01 / 0.71)
    assert fams["eval_cmexam:metrics/n"]["tolerance"] == 0 and measured["variants"][0]["numerics"] == SCALAR


def test_the_shipped_tolerances_cover_the_tiny_claims():
    shipped = load_tolerances()
    committed = Path(__file__).resolve().parents[1] / "results" / "tiny"
    assert shipped["families"], "qilin_lib/results_tolerances.json is missing or empty"
    assert len(shipped["variants"]) >= 2 and shipped["how"]
    families = {family("tables/eval_knowledge_cmexam.csv", (3, "cloze_sum")), family("train_dcpt.json", ("final_loss",)),
                family("eval_dcpt_cmexam.json", ("metrics", "cloze_sum", "accuracy"))}
    assert families <= set(shipped["families"]), families - set(shipped["families"])
    assert tree_numerics(committed) is not None, "the committed tiny results carry no numerics fingerprint"


# ------------------------------------------------------------------ a second CPU kind, simulated
OTHER_CPU = {"QILIN_NUMERICS": "native", "ATEN_CPU_CAPABILITY": "default", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
             "ONEDNN_MAX_CPU_ISA": "SSE41"}


def _small_run(root: Path, **env) -> Path:
    """Data stage + 40 DCPT steps through the CLI in a sandbox, on the pinned or the simulated machine."""
    clean = {k: v for k, v in os.environ.items()
             if k not in (*numerics.PINNED_ENV, *numerics.NUMPY_ENV, *numerics.THREAD_ENV, numerics.OPT_OUT)}
    clean |= {"QILIN_ROOT": str(root), "QILIN_ARTIFACTS": str(root / "artifacts"), **env}
    for args in (["data"], ["train", "dcpt", "--set", "dcpt.max_steps=40", "--set", "dcpt.save_steps=1000",
                            "--no-progress"]):
        subprocess.run([sys.executable, "-m", "qilin_lib.cli", *args, "--profile", "tiny"], env=clean,
                       check=True, capture_output=True, timeout=600)
    return root / "results" / "tiny"


def _plant_stale_loss(tree: Path, factor: float) -> None:
    path = tree / "train_dcpt.json"
    data = json.loads(path.read_text())
    data["final_loss"] *= factor
    path.write_text(json.dumps(data))


@pytest.mark.slow
def test_the_check_passes_and_catches_a_stale_number_on_both_machines(tmp_path):
    committed = _small_run(tmp_path / "committed")            # the pinned path, as results/ are committed
    same_kind = _small_run(tmp_path / "same")                 # a fresh run on a machine of the same kind
    other_kind = _small_run(tmp_path / "other", **OTHER_CPU)  # a fresh run on another instruction set
    exact, claims = check_results(committed, same_kind), check_results(committed, other_kind)
    assert (exact.mode, exact.problems) == ("exact", [])
    assert (claims.mode, claims.problems) == ("claims", [])
    curve = lambda tree: json.loads((tree / "train_dcpt.json").read_text())["loss_curve"]  # noqa: E731
    assert curve(committed) == curve(same_kind) and curve(committed) != curve(other_kind)

    tol = load_tolerances()["families"]["train_dcpt:final_loss"]["tolerance"]
    _plant_stale_loss(committed, 1 + max(0.05, 3 * tol))     # a committed number the code no longer gives
    for fresh in (same_kind, other_kind):
        assert any("train_dcpt.json.final_loss" in p for p in check_results(committed, fresh).problems)
