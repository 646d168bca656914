"""The benchmark suite runs end to end at quick size; no timing is asserted."""

from __future__ import annotations

import pytest

from minarch.bench import BenchError, run_benchmarks
from minarch.errors import MinarchError

KEYS = {
    "workload",
    "members",
    "baseline_samples_per_s",
    "minarch_samples_per_s",
    "speedup",
    "peak_fraction",
}


def test_quick_suite_reports_every_workload() -> None:
    results = run_benchmarks(quick=True)
    assert [r["workload"] for r in results] == ["mlp-grid", "cnn", "resnet20", "vit"]
    for r in results:
        assert r.keys() >= KEYS
        assert r["members"] >= 1
        assert all(r[k] > 0 for k in KEYS - {"workload", "members"})
        assert r["engine"] in ("fused", "plain")


def test_forced_engine_is_used() -> None:
    (result,) = run_benchmarks(["cnn"], quick=True, engine="fused")
    assert result["engine"] == "fused"


def test_unknown_workload_lists_valid_ones() -> None:
    with pytest.raises(BenchError, match="mlp-grid, cnn, resnet20, vit"):
        run_benchmarks(["warp"], quick=True)
    with pytest.raises(MinarchError):
        run_benchmarks(["warp"], quick=True)
