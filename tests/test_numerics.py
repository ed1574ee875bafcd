"""Pinned CPU numerics: what `pin` sets, what the fingerprint reports, and that child processes inherit it."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from qilin_lib import numerics

FINGERPRINT = "import json, qilin_lib, qilin_lib.numerics as n; print(json.dumps(n.fingerprint()))"


def _fingerprint_in_child(**env) -> dict:
    clean = {k: v for k, v in os.environ.items()
             if k not in (*numerics.PINNED_ENV, *numerics.NUMPY_ENV, *numerics.THREAD_ENV, numerics.OPT_OUT)}
    out = subprocess.run([sys.executable, "-c", FINGERPRINT], env=clean | env, capture_output=True, text=True,
                         check=True, timeout=120)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_pin_sets_the_instruction_set_path_and_threads_but_keeps_what_the_user_set():
    env = {"MKL_ENABLE_INSTRUCTIONS": "AVX512"}
    applied = numerics.pin(env)
    assert env["ATEN_CPU_CAPABILITY"] == "avx2" and env["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == str(numerics.PINNED_THREADS)
    assert env["MKL_ENABLE_INSTRUCTIONS"] == "AVX512" and "MKL_ENABLE_INSTRUCTIONS" not in applied


def test_native_opts_out():
    env = {numerics.OPT_OUT: "native"}
    assert numerics.pin(env) == {} and set(env) == {numerics.OPT_OUT}


def test_importing_qilin_lib_pins_the_child_process_before_torch_computes():
    print_ = _fingerprint_in_child()
    assert print_["threads"] == numerics.PINNED_THREADS
    assert (print_["mkl_instructions"], print_["onednn_max_isa"]) == ("AVX2", "AVX2")
    if "avx2" in numerics.cpu()["flags"]:
        assert print_["cpu_capability"] == "AVX2" and print_["numpy_simd"] == ["X86_V3"]


def test_the_fingerprint_tells_a_simulated_second_cpu_kind_apart():
    pinned = _fingerprint_in_child()
    other = _fingerprint_in_child(QILIN_NUMERICS="native", ATEN_CPU_CAPABILITY="default",
                                  MKL_ENABLE_INSTRUCTIONS="SSE4_2", ONEDNN_MAX_CPU_ISA="SSE41")
    assert other["cpu_capability"] == "DEFAULT" and other["mkl_instructions"] == "SSE4_2"
    if "avx512f" in numerics.cpu()["flags"]:
        assert "X86_V4" in other["numpy_simd"]      # numpy unpinned: its AVX-512 kernels are back
    assert other != pinned


def test_cpu_reports_the_flags_that_choose_kernels():
    info = numerics.cpu()
    assert info["cores"] >= 1 and set(info["flags"]) <= set(numerics.RELEVANT_FLAGS)
    if sys.platform == "linux" and os.uname().machine == "x86_64":
        assert info["vendor"] != "unknown" and "sse4_2" in info["flags"]


def test_a_users_thread_count_is_kept_for_openmp_and_mkl_alike():
    assert _fingerprint_in_child(OMP_NUM_THREADS="1")["threads"] == 1
