"""Committed notebooks: paired with their py:percent file, in sync, output-free, papermill-ready."""

import json

import nbformat
import pytest

from qilin_lib import notebooks
from qilin_lib.reproduce import select


def test_every_committed_notebook_is_in_sync_and_clean():
    pairs = notebooks.notebook_pairs()
    assert [py.stem for py, _ in pairs][:1] == ["01_data"]
    assert notebooks.check() == []


def test_check_catches_outputs_and_drift(tmp_path):
    py = tmp_path / "01_demo.py"
    py.write_text('# %% tags=["parameters"]\nx = 1\n\n# %%\nprint(x)\n', encoding="utf-8")
    assert notebooks.sync(tmp_path) == [tmp_path / "01_demo.ipynb"]
    assert notebooks.check(tmp_path) == []

    ipynb = tmp_path / "01_demo.ipynb"
    nb = nbformat.read(ipynb, as_version=4)
    nb.cells[1].outputs = [nbformat.v4.new_output("stream", text="1\n")]
    nbformat.write(nb, ipynb)
    assert any("outputs" in p for p in notebooks.check(tmp_path))

    notebooks.sync(tmp_path)  # sync repairs it
    py.write_text(py.read_text("utf-8") + "\n# %%\nprint(2)\n", encoding="utf-8")
    assert any("cells differ" in p for p in notebooks.check(tmp_path))


def test_check_requires_a_parameters_cell(tmp_path):
    (tmp_path / "02_x.py").write_text("# %%\nx = 1\n", encoding="utf-8")
    notebooks.sync(tmp_path)
    assert any("parameters" in p for p in notebooks.check(tmp_path))


def test_parameters_cells_hold_literals_only():
    import ast

    for _, ipynb in notebooks.notebook_pairs():
        cell = next(c for c in json.loads(ipynb.read_text("utf-8"))["cells"]
                    if "parameters" in c["metadata"].get("tags", []))
        for node in ast.parse("".join(cell["source"])).body:
            assert isinstance(node, ast.Assign), f"{ipynb.name}: parameters cell holds more than assignments"
            ast.literal_eval(node.value)  # raises if not a literal


def test_select_by_only_and_from():
    names = ["01_data", "02_dcpt", "03_sft"]
    assert select(names, start="02") == ["02_dcpt", "03_sft"]
    assert select(names, only=["01", "3"]) == ["01_data", "03_sft"]
    with pytest.raises(ValueError, match="--only 09"):
        select(names, only=["09"])
