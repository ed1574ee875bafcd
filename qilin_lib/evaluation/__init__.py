"""Evaluation: benchmarks, scoring modes, RAG, VoC and metrics (DESIGN.md section 4)."""
