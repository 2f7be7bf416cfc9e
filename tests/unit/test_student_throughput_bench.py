"""The pure parts of bench/student_throughput.py: percentiles, a level's figures, the ratio to vLLM."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "bench"))

import student_throughput as bench  # noqa: E402


def test_percentiles_are_nearest_rank():
    values = [float(v) for v in range(1, 101)]  # 1..100
    assert bench.percentile(values, 0.5) == 50 and bench.percentile(values, 0.99) == 99
    assert bench.percentile(values, 1.0) == 100
    assert bench.percentile([3.0, 1.0, 2.0], 0.5) == 2 and bench.percentile([7.0], 0.99) == 7


def test_a_level_summary():
    latencies = [0.1, 0.2, 0.3, 0.4]
    r = bench.summarise(latencies, wall_s=2.0, tokens=100)
    assert r == {"requests": 4, "seconds": 2.0, "requests_per_s": 2.0, "tokens_per_s": 50.0,
                 "completion_tokens": 100, "p50_ms": 200.0, "p99_ms": 400.0}


def test_ratio_to_vllm_per_level_both_ran():
    service = {"1": {"requests_per_s": 1.0}, "8": {"requests_per_s": 3.0}, "32": {"requests_per_s": 4.0}}
    vllm = {"1": {"requests_per_s": 2.0}, "8": {"requests_per_s": 4.0}, "32": {"requests_per_s": 0.0}}
    assert bench.ratios(service, vllm, "requests_per_s") == {"1": 0.5, "8": 0.75}
    assert bench.ratios(service, {}, "requests_per_s") == {}
    assert bench.ratios(service, vllm, "requests_per_s")["8"] == pytest.approx(3 / 4)
