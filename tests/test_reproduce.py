"""`qilin reproduce`: the failure path, the resume path, the report, and the committed-results check."""

from __future__ import annotations

import json
from pathlib import Path

import nbformat
import pytest

from qilin_lib import notebooks
from qilin_lib.cli import main
from qilin_lib.paths import results_dir
from qilin_lib.reproduce import NotebookFailed, run_notebooks
from qilin_lib.results_check import compare_trees

REPO = Path(__file__).resolve().parents[1]
HEADER = '# %% tags=["parameters"]\nprofile = "tiny"\nforce = False\n\n'


@pytest.fixture
def sandbox(sandbox):
    (sandbox / "notebooks").mkdir()
    return sandbox


def _notebook(directory: Path, name: str, body: str) -> None:
    (directory / f"{name}.py").write_text(HEADER + "# %%\n" + body + "\n", encoding="utf-8")


def test_a_failing_notebook_stops_the_run_and_keeps_earlier_results(sandbox):
    nbdir = sandbox / "notebooks"
    _notebook(nbdir, "01_ok", "from qilin_lib.paths import results_dir\n"
                              "(results_dir(profile) / 'ok.json').write_text('{\"value\": 1}')")
    _notebook(nbdir, "02_fail", "x = 1\n\n# %%\nraise ZeroDivisionError('planted failure')")
    _notebook(nbdir, "03_never", "(results_dir(profile) / 'never.json').write_text('{}')")
    notebooks.sync(nbdir)
    with pytest.raises(NotebookFailed) as err:
        run_notebooks("tiny", progress=False)
    assert err.value.notebook == "02_fail" and "ZeroDivisionError" in str(err.value) and "cell" in err.value.cell
    executed = nbformat.read(results_dir("tiny") / "notebooks" / "02_fail.ipynb", as_version=4)
    assert "planted failure" in json.dumps(executed.cells[-1]["outputs"])    # the traceback is kept
    assert json.loads((results_dir("tiny") / "ok.json").read_text()) == {"value": 1}
    assert not (results_dir("tiny") / "never.json").exists()
    assert set(json.loads((results_dir("tiny") / "timings.json").read_text())) == {"01_ok"}
    assert main(["reproduce", "--profile", "tiny", "--from", "02"]) == 1     # the CLI exits non-zero


@pytest.mark.slow
def test_a_second_run_reuses_completed_stages_and_force_rebuilds_the_same_content(in_tiny_run):
    manifest = next((in_tiny_run.root / "artifacts" / "tiny").glob("data-*/manifest.json"))
    first = manifest.read_text()
    run_notebooks("tiny", only=["01"], progress=False)
    assert manifest.read_text() == first                                         # not rebuilt
    executed = nbformat.read(results_dir("tiny") / "notebooks" / "01_data.ipynb", as_version=4)
    assert "reused from cache" in json.dumps([c.get("outputs") for c in executed.cells])
    assert main(["data", "--profile", "tiny", "--force"]) == 0                    # --force rebuilds ...
    rebuilt = json.loads(manifest.read_text())
    assert rebuilt != json.loads(first)
    assert rebuilt["output_hash"] == json.loads(first)["output_hash"]            # ... the same files


def test_compare_trees_flags_changed_missing_and_extra_numbers(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    for root in (a, b):
        (root / "tables").mkdir(parents=True)
    (a / "eval.json").write_text(json.dumps({"metrics": {"acc": 41.0, "n": 3}, "wall_s": 1.0, "path": "/x/artifacts/1",
                                             "provenance": {"git_commit": "abc"}}))
    (b / "eval.json").write_text(json.dumps({"metrics": {"acc": 41.0 + 1e-9, "n": 3}, "wall_s": 9.0,
                                             "path": "/y/artifacts/2", "provenance": {"git_commit": "def"}}))
    (a / "tables" / "t.csv").write_text("model,acc\nsft,12.5\n")
    (b / "tables" / "t.csv").write_text("model,acc\nsft,12.5\n")
    (a / "timings.json").write_text('{"01": 1}')
    assert compare_trees(a, b) == []                      # tolerance, volatile keys, paths, timings ignored
    (b / "tables" / "t.csv").write_text("model,acc\nsft,13.5\n")
    (b / "extra.json").write_text("{}")
    problems = compare_trees(a, b)
    assert any("t.csv" in p and "12.5" in p and "13.5" in p for p in problems)
    assert any("extra.json" in p and "not committed" in p for p in problems)
    (b / "eval.json").unlink()
    assert any("eval.json" in p and "not written" in p for p in compare_trees(a, b))


@pytest.mark.slow
def test_committed_tiny_results_match_a_fresh_reproduction(tiny_run):
    """CI's honesty check: the whole tiny reproduction, run fresh (once per session, conftest.tiny_run),
    gives every committed number."""
    if not (REPO / "results" / "tiny").is_dir():
        pytest.fail("results/tiny is not committed")
    report = tiny_run.check
    assert not report.problems, (f"{len(report.problems)} committed numbers differ from a fresh run ({report.mode} "
                                 f"mode; numerics committed {report.committed_numerics}, here "
                                 f"{report.fresh_numerics}):\n" + "\n".join(report.problems[:40]))
    assert (tiny_run.results / "REPORT.md").exists()
    executed = {p.stem for p in (tiny_run.results / "notebooks").glob("*.ipynb")}
    assert executed == {p.stem for p in (REPO / "notebooks").glob("0*.ipynb")}


def test_reproduce_refuses_to_write_committed_results_from_dirty_code(sandbox, capsys):
    """Committed results must come from committed code: results/ and figures/ may differ (the run
    rewrites them), anything else makes `qilin reproduce` stop unless --allow-dirty."""
    import subprocess

    _notebook(sandbox / "notebooks", "01_ok", "from qilin_lib.paths import results_dir\n"
                                             "(results_dir(profile) / 'ok.json').write_text('{}')")
    notebooks.sync(sandbox / "notebooks")
    (sandbox / "results" / "tiny").mkdir(parents=True)
    (sandbox / "results" / "tiny" / "old.json").write_text("{}")
    (sandbox / ".gitignore").write_text("artifacts/\n")
    git = ["git", "-c", "user.email=t@t", "-c", "user.name=t"]
    subprocess.run([*git, "init", "-q"], cwd=sandbox, check=True)
    subprocess.run([*git, "add", "-A"], cwd=sandbox, check=True)
    subprocess.run([*git, "commit", "-qm", "x"], cwd=sandbox, check=True)
    (sandbox / "results" / "tiny" / "old.json").write_text('{"changed": 1}')     # results only: allowed
    assert main(["reproduce", "--profile", "tiny"]) == 0
    (sandbox / "notebooks" / "01_ok.py").write_text((sandbox / "notebooks" / "01_ok.py").read_text() + "\n# edit\n")
    assert main(["reproduce", "--profile", "tiny"]) == 2
    assert "notebooks/01_ok.py" in capsys.readouterr().err
    assert main(["reproduce", "--profile", "tiny", "--allow-dirty"]) == 0
