"""Shared fixtures. `shared_data`: the real dataset samples in ../shared/data (read-only, never copied)."""

from __future__ import annotations

import os
import shutil
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

import qilin_lib  # noqa: F401  (first: pins the CPU numerics before any test module imports torch)


@pytest.fixture(scope="session")
def shared_data() -> Path:
    """Path of ../shared/data next to the checkout ($QILIN_SHARED_DATA overrides); skips when absent."""
    default = Path(__file__).resolve().parents[2] / "shared" / "data"
    path = Path(os.environ.get("QILIN_SHARED_DATA") or default)
    if not path.is_dir():
        pytest.skip("../shared/data (real dataset samples) is absent on this machine")
    return path


REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """results/, figures/ and artifacts/ of a test live under tmp_path, never in the checkout; the published
    numbers (results/paper/reference.json) are there for the tables and the report (a test file may extend
    this with a fixture of the same name)."""
    monkeypatch.setenv("QILIN_ROOT", str(tmp_path))
    monkeypatch.setenv("QILIN_ARTIFACTS", str(tmp_path / "artifacts"))
    (tmp_path / "results" / "paper").mkdir(parents=True)
    shutil.copy(REPO / "results" / "paper" / "reference.json", tmp_path / "results" / "paper" / "reference.json")
    return tmp_path


@dataclass
class TinyRun:
    """A fresh `qilin reproduce --profile tiny` in its own root, and its committed-results check, taken
    before any test could touch the tree."""
    root: Path
    check: object            # qilin_lib.results_check.CheckReport of results/tiny vs this run

    @property
    def results(self) -> Path:
        return self.root / "results" / "tiny"


@contextmanager
def _env(**values: str):
    old = {k: os.environ.get(k) for k in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in old.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def root_env(root: Path) -> dict:
    """The environment that points results/, figures/ and artifacts/ at `root`."""
    return {"QILIN_ROOT": str(root), "QILIN_ARTIFACTS": str(root / "artifacts")}


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory) -> TinyRun:
    """The tiny reproduction, run once per test session (notebooks 01-06 from the checkout's notebooks):
    the committed-results check, the resume test and the README's commands all read this one run."""
    from qilin_lib.cli import main
    from qilin_lib.results_check import check_results

    root = tmp_path_factory.mktemp("tiny_run")
    shutil.copytree(REPO / "notebooks", root / "notebooks")
    shutil.copytree(REPO / "results" / "paper", root / "results" / "paper")   # the report reads it
    with _env(**root_env(root)):
        if main(["reproduce", "--profile", "tiny"]) != 0:
            pytest.fail(f"the tiny reproduction failed; executed notebooks in {root / 'results/tiny/notebooks'}")
    return TinyRun(root, check_results(REPO / "results" / "tiny", root / "results" / "tiny"))


@pytest.fixture
def in_tiny_run(tiny_run, monkeypatch) -> TinyRun:
    """tiny_run, with this test's QILIN_ROOT / QILIN_ARTIFACTS pointing at it."""
    for key, value in root_env(tiny_run.root).items():
        monkeypatch.setenv(key, value)
    return tiny_run
