"""The set-up the README promises: pins mirrored in environment.yml, CI running the README's test command."""

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _pins() -> list[str]:
    return [line.strip() for line in (ROOT / "requirements.txt").read_text("utf-8").splitlines()
            if line.strip() and not line.startswith("#")]


def test_every_requirement_is_pinned_exactly_and_torch_is_the_cpu_pin():
    pins = _pins()
    assert all(re.fullmatch(r"[A-Za-z0-9_.\-]+==[0-9][0-9A-Za-z.\-+]*", p) for p in pins), pins
    assert "torch==2.13.0" in pins


def test_environment_yml_mirrors_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text("utf-8"))
    pip_section = next(d for d in env["dependencies"] if isinstance(d, dict))["pip"]
    assert [p for p in pip_section if p != "-e ."] == _pins()
    assert "python=3.11" in env["dependencies"]


def test_readme_has_two_commands_and_ci_runs_the_test_one():
    readme = (ROOT / "README.md").read_text("utf-8")
    blocks = re.findall(r"```bash\n(.*?)\n```", readme.split("## The two commands")[1].split("\n## ")[0], re.S)
    assert len(blocks) == 2, blocks
    reproduce, test = blocks
    assert "qilin reproduce --profile tiny" in reproduce and "pytest" in test
    assert test in (ROOT / ".ci" / "run").read_text("utf-8")


def test_licence_and_citation_match_the_package_metadata():
    import tomllib

    meta = tomllib.loads((ROOT / "pyproject.toml").read_text("utf-8"))["project"]
    assert meta["license"]["text"] == "Apache-2.0"
    assert (ROOT / "LICENSE").read_text("utf-8").lstrip().startswith("Apache License\n                           Version 2.0")
    citation = yaml.safe_load((ROOT / "CITATION.cff").read_text("utf-8"))
    assert citation["cff-version"] == "1.2.0" and citation["license"] == "Apache-2.0"
    cited = {ref["identifiers"][0]["value"] for ref in citation["references"]}
    assert cited == {"arXiv:2310.09089", "arXiv:2312.01040"}  # Qilin-Med and AntGLM-Med
    assert all(ref["authors"] for ref in citation["references"])
