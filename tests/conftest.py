"""Shared fixtures. `shared_data`: the real dataset samples in ../shared/data (read-only, never copied)."""

from __future__ import annotations

import os
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


@pytest.fixture
def sandbox(tmp_path, monkeypatch):
    """results/, figures/ and artifacts/ of a test live under tmp_path, never in the checkout (a test file
    may extend it with a fixture of the same name)."""
    monkeypatch.setenv("QILIN_ROOT", str(tmp_path))
    monkeypatch.setenv("QILIN_ARTIFACTS", str(tmp_path / "artifacts"))
    return tmp_path
