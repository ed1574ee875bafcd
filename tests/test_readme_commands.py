"""The README's commands, litgpt-style: every `qilin ...` and `python benchmarks/...` line it shows must
parse and name shipped profiles and real config keys, and each one runs here at its smallest size (against
the session's tiny reproduction, conftest.tiny_run) or names the test that runs it, so the README cannot rot.

Commands that need GPUs or the hub (the gpu-small / paper runs) are parsed and their overrides loaded, not run.
"""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
from pathlib import Path

import pytest

from qilin_lib.cli import build_parser, main
from qilin_lib.config import PROFILES, load_config

REPO = Path(__file__).resolve().parents[1]
README = (REPO / "README.md").read_text("utf-8")
SHIPPED = sorted(PROFILES)


def _bash_blocks(text: str) -> list[str]:
    return re.findall(r"```bash\n(.*?)```", text, flags=re.S)


def _block_commands(block: str) -> list[list[str]]:
    """The commands of one bash block as argument lists: comments dropped, `&&` chains split, a quoted
    argument may span lines, and `VAR='...'` assignments are expanded where `$VAR` is used later."""
    commands, variables, pending = [], {}, ""
    for line in block.splitlines():
        pending += line + "\n"
        try:
            tokens = shlex.split(pending, comments=True)
        except ValueError:            # an open quote: the argument goes on
            continue
        pending = ""
        if len(tokens) == 1 and re.fullmatch(r"[A-Z_]+=.*", tokens[0]):
            name, value = tokens[0].split("=", 1)
            variables[name] = value
            continue
        tokens = [re.sub(r"\$([A-Z_]+)", lambda m: variables[m.group(1)], t) for t in tokens]
        while tokens:
            cut = tokens.index("&&") if "&&" in tokens else len(tokens)
            commands.append(tokens[:cut])
            tokens = tokens[cut + 1:]
    assert not pending.strip(), f"unterminated quote in a README bash block: {pending!r}"
    return commands


def _normalised(tokens: list[str]) -> list[str]:
    """`.venv/bin/qilin x` -> `qilin x`; `.venv/bin/python benchmarks/b.py` -> `python benchmarks/b.py`."""
    head = tokens[0].removeprefix(".venv/bin/")
    return [head, *tokens[1:]]


def readme_commands() -> list[list[str]]:
    """Every qilin / benchmark command in the README's bash blocks, and the inline `qilin ...` spans that
    carry arguments (a bare `qilin data` in prose names a command, it does not show one)."""
    found = []
    for block in _bash_blocks(README):
        found += [c for c in map(_normalised, _block_commands(block))
                  if c[0] == "qilin" or (c[0] == "python" and c[1:2] and c[1].startswith("benchmarks/"))]
    for span in re.findall(r"`(qilin [^`]+)`", README):
        tokens = shlex.split(" ".join(span.split()))
        if len(tokens) > 2 and not any(t.startswith("<") or t.isupper() for t in tokens):
            found.append(tokens)
    return found


COMMANDS = readme_commands()


def _id(tokens: list[str]) -> str:
    return " ".join(tokens)[:70]


def test_the_readme_shows_the_commands_this_test_knows():
    subcommands = {c[1] for c in COMMANDS if c[0] == "qilin"}
    assert {"reproduce", "data", "train", "evaluate", "plan", "smoke-inputs"} <= subcommands
    assert {c[1] for c in COMMANDS if c[0] == "python"} >= {"benchmarks/bench_dedup.py", "benchmarks/bench_eval.py"}


@pytest.mark.parametrize("tokens", [c for c in COMMANDS if c[0] == "qilin"], ids=_id)
def test_every_qilin_command_in_the_readme_parses_and_its_profile_and_overrides_load(tokens):
    try:
        args = build_parser().parse_args(tokens[1:])
    except SystemExit:
        pytest.fail(f"README command does not parse: {shlex.join(tokens)}")
    profile = getattr(args, "profile", None)
    if profile is not None:
        assert profile in SHIPPED, f"README names profile {profile!r}; shipped: {SHIPPED}"
        params = dict(getattr(args, "param", []))
        overrides = dict(getattr(args, "set", [])) | params.get("overrides", {})
        load_config(profile, overrides)    # unknown keys and wrong types fail here


@pytest.mark.parametrize("tokens", [c for c in COMMANDS if c[0] == "python"], ids=_id)
def test_every_benchmark_script_in_the_readme_exists_and_has_a_smallest_run(tokens):
    script = REPO / tokens[1]
    assert script.is_file(), f"README names {tokens[1]}, which does not exist"
    assert tokens[1] in SMALLEST_RUNS, f"{tokens[1]} is in the README but has no smallest run in this test"


# How each README command runs at its smallest size here. A value is either the argument list run
# against the session's tiny reproduction, or the test that runs it already (kept in one place, so a
# README command with neither fails `test_every_readme_command_is_run_somewhere`).
SMALLEST_RUNS = {
    "qilin reproduce --profile tiny": "tests/test_reproduce.py (conftest.tiny_run: the whole reproduction)",
    "qilin reproduce --only": ["qilin", "reproduce", "--profile", "tiny", "--only", "06"],
    "qilin reproduce --profile paper-smoke": "tests/test_paper_smoke.py (the whole paper-smoke reproduction)",
    "qilin reproduce --profile gpu-small": "needs a GPU and the hub: parsed and its overrides loaded",
    "qilin reproduce --profile paper": "needs 8 GPUs and the hub: parsed and loaded",
    "qilin smoke-inputs": "tests/test_paper_smoke.py",
    "qilin data": ["qilin", "data", "--profile", "tiny"],
    "qilin train dcpt --profile tiny": ["qilin", "train", "dcpt", "--profile", "tiny"],
    "qilin train dcpt --profile tiny --launcher": "tests/test_launch.py (torchrun with 2 CPU processes)",
    "qilin train adapt --profile paper-smoke": "tests/test_paper_smoke.py",
    "qilin train sft --profile gpu-small": "needs a GPU: parsed and loaded",
    "qilin train dcpt --profile paper": "needs 8 GPUs: parsed and loaded",
    "qilin evaluate --profile gpu-small": "needs a GPU and the hub: parsed and loaded (tests/test_external_eval.py runs --model)",
    "qilin evaluate": ["qilin", "evaluate", "--profile", "tiny", "--set", "evaluation.max_items=3"],
    "qilin report": ["qilin", "report", "--profile", "tiny"],
    "qilin check-results": ["qilin", "check-results", str(REPO / "results" / "tiny"), str(REPO / "results" / "tiny")],
    "qilin plan": ["qilin", "plan", "--profile", "tiny"],
    "qilin convert": "tests/test_convert_baichuan.py (Baichuan's own code vs the converted Llama)",
    "qilin notebooks": ["qilin", "notebooks", "check"],
    "benchmarks/bench_dedup.py": ["python", "benchmarks/bench_dedup.py", "--quick", "--mb", "0.3", "--loop-mb", "0.1",
                                  "--repeats", "1"],
    "benchmarks/bench_training.py": ["python", "benchmarks/bench_training.py", "--steps", "2"],
    "benchmarks/bench_eval.py": ["python", "benchmarks/bench_eval.py", "--items", "6", "--repeat", "1", "--served"],
    "benchmarks/bench_numerics.py": ["python", "benchmarks/bench_numerics.py", "--steps", "2", "--rounds", "1"],
    "benchmarks/bench_data.py": ["python", "benchmarks/bench_data.py", "--sizes", "0.002"],
    "benchmarks/gpu_check.py": "tests/test_gpu_check.py (--small on the CPU)",
}


def _entry(tokens: list[str]) -> str:
    """The SMALLEST_RUNS key of a README command: its longest matching prefix."""
    text = " ".join(tokens if tokens[0] == "qilin" else tokens[1:2])
    keys = [k for k in SMALLEST_RUNS if text == k or text.startswith(k + " ")]
    assert keys, f"README command {text!r} has no entry in SMALLEST_RUNS"
    return max(keys, key=len)


def test_every_readme_command_is_run_somewhere():
    for tokens in COMMANDS:
        value = SMALLEST_RUNS[_entry(tokens)]
        if isinstance(value, str) and value.startswith("tests/"):
            assert (REPO / value.split()[0]).is_file(), value


@pytest.mark.slow
def test_the_readme_commands_run_at_their_smallest_size(in_tiny_run):
    """Run in this order: read-only commands first, then those that rewrite the run's results."""
    ran = set()
    for key in dict.fromkeys(_entry(c) for c in COMMANDS):
        run = SMALLEST_RUNS[key]
        if isinstance(run, str) or key in ran:
            continue
        ran.add(key)
        if run[0] == "qilin":
            assert main(run[1:]) == 0, f"README command failed at its smallest size: {shlex.join(run)}"
        else:
            done = subprocess.run([sys.executable, *run[1:]], cwd=REPO, capture_output=True, text=True, timeout=600)
            assert done.returncode == 0, f"{shlex.join(run)} failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}"
    assert ran, "no README command ran"
