"""One CPU numerics path for every x86 machine, so that the tiny profile's numbers are the same everywhere.

Why: torch's CPU kernels (ATen), MKL (GEMM) and oneDNN each pick an instruction set at run time. The AVX2
and AVX-512 kernels round differently, and 350 DCPT steps amplify the last bits: on an AVX-512 machine the
tiny DCPT loss left the committed curve at step ~100 and ended at 0.59226 instead of 0.59115, and every
later number followed (issue 10). Capping all three at AVX2 (the common floor of x86 machines in use) and
fixing the thread count gives bit-identical results on AVX2 and AVX-512 machines alike;
benchmarks/bench_numerics.py measures what that costs and which settings change the numbers.

    pin()              # before torch loads: qilin_lib/__init__.py calls it, so importing qilin_lib suffices
    fingerprint()      # what ran: recorded in every result's provenance; the committed-results check
                       # compares numbers exactly only between runs with the same fingerprint

Opt out with QILIN_NUMERICS=native (e.g. for speed on a GPU node, where the GPU's numerics dominate
anyway); variables the user set explicitly are kept as they are, and the fingerprint records them.
"""

from __future__ import annotations

import os
import platform
import sys
from pathlib import Path

# The variables each library reads once, at its first use: they must be in the environment before torch
# computes anything (child processes inherit them: papermill kernels, torchrun / accelerate workers).
PINNED_ENV = {
    "ATEN_CPU_CAPABILITY": "avx2",       # torch's own vectorised kernels
    "MKL_ENABLE_INSTRUCTIONS": "AVX2",   # MKL's dispatch (GEMMs)
    "ONEDNN_MAX_CPU_ISA": "AVX2",        # oneDNN (mkldnn) primitives
}
# numpy picks SIMD kernels per CPU too (numpy 2.4 dispatch groups: X86_V3 = AVX2, X86_V4 and the named
# AVX-512 targets above it): its float32 sums in BM25 scoring (bm25s) differ in the last bit between AVX2 and
# AVX-512, enough to swap two near-tied passages in RAG retrieval. Capped at X86_V3 on x86 only: numpy
# refuses names it does not dispatch (ARM), and ignores targets the CPU lacks.
NUMPY_ENV = {"NPY_DISABLE_CPU_FEATURES": "X86_V4 AVX512_ICL AVX512_SPR"}
# Two intra-op threads: the committed results were computed with two, and a 2-core runner is the smallest
# machine we support. (bench_numerics.py: the thread count did not change the tiny numbers; it is pinned
# so that a kernel that splits its reduction by thread cannot make it matter.)
PINNED_THREADS = 2
THREAD_ENV = ("OMP_NUM_THREADS", "MKL_NUM_THREADS")
OPT_OUT = "QILIN_NUMERICS"


def pin(env: dict | None = None) -> dict[str, str]:
    """Set the pinned instruction-set path and thread count where the user has not set them; returns what
    was set. A no-op with QILIN_NUMERICS=native. If torch is already imported, its thread count is set
    too (the instruction-set variables are read at torch's first CPU kernel, not at import)."""
    env = os.environ if env is None else env
    if env.get(OPT_OUT, "").lower() == "native":
        return {}
    # One thread count for OpenMP and MKL (torch reads both): the user's OMP_NUM_THREADS if set.
    threads = env.get("OMP_NUM_THREADS") or str(PINNED_THREADS)
    wanted = PINNED_ENV | {name: threads for name in THREAD_ENV}
    if platform.machine().lower() in ("x86_64", "amd64"):
        wanted |= NUMPY_ENV
    applied = {k: v for k, v in wanted.items() if k not in env}
    env.update(applied)
    if "torch" in sys.modules and env is os.environ:
        import torch

        torch.set_num_threads(int(env["OMP_NUM_THREADS"]))
    return applied


def fingerprint() -> dict:
    """What decides the low bits of a CPU run: architecture, torch build, the kernels' instruction set as
    torch reports it, the MKL / oneDNN caps, the thread count, numpy's active SIMD targets. Equal fingerprints => bitwise-equal tiny
    results (measured); the CPU model is kept apart in `cpu()` because it does not enter (an AMD EPYC with
    AVX-512 reproduced results made on another machine bit for bit once capped at AVX2)."""
    import torch

    from numpy._core._multiarray_umath import __cpu_dispatch__, __cpu_features__

    return {
        "machine": platform.machine(),
        "numpy_simd": [f for f in __cpu_dispatch__ if __cpu_features__.get(f)],
        "torch": torch.__version__,
        "blas": "mkl" if torch.backends.mkl.is_available() else "other",
        "cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "mkl_instructions": os.environ.get("MKL_ENABLE_INSTRUCTIONS", "native"),
        "onednn_max_isa": os.environ.get("ONEDNN_MAX_CPU_ISA", "native"),
        "threads": torch.get_num_threads(),
    }


# Flags that choose kernels (the full /proc/cpuinfo list is ~150 words).
RELEVANT_FLAGS = ("sse4_2", "avx", "avx2", "fma", "f16c", "avx512f", "avx512bw", "avx512vl", "avx512_vnni",
                  "avx512_bf16", "amx_tile", "amx_bf16", "avx_vnni")


def cpu() -> dict:
    """The processor: model name, vendor, core count and the instruction-set flags that choose kernels."""
    info = {"model": platform.processor() or "unknown", "vendor": "unknown", "cores": os.cpu_count(),
            "flags": []}
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        fields = {}
        for line in cpuinfo.read_text(errors="replace").splitlines():
            key, _, value = line.partition(":")
            fields.setdefault(key.strip(), value.strip())
        flags = set(fields.get("flags", "").split())
        info |= {"model": fields.get("model name", info["model"]), "vendor": fields.get("vendor_id", "unknown"),
                 "flags": [f for f in RELEVANT_FLAGS if f in flags]}
    return info
