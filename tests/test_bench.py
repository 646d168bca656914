"""The benchmark suite runs end to end at quick size; no timing is asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

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
        assert r["engine"] in ("plain", "fused", "batched")  # what "auto" chose, by name


def test_forced_engine_is_used() -> None:
    (result,) = run_benchmarks(["cnn"], quick=True, engine="fused")
    assert result["engine"] == "fused"


def test_unknown_workload_lists_valid_ones() -> None:
    with pytest.raises(BenchError, match="mlp-grid, cnn, resnet20, vit"):
        run_benchmarks(["warp"], quick=True)
    with pytest.raises(MinarchError):
        run_benchmarks(["warp"], quick=True)


LADDER_SLICE = """
name: ladder-slice
datasets: [{name: digits, validation: 0.2}]
models:
  - {family: mlp, depth: 1, width: 4}
  - {family: cnn, depth: 2, channels: 2}
  - {family: vit, patch_size: 4, depth: 1, dim: 4, heads: 2}
training: {optimizer: adamw, lr: 0.003, batch_size: 128, epochs: 20}
seeds: 3
"""


def test_ladder_benchmark_prints_rates_per_family_and_the_roofline(tmp_path) -> None:
    study = tmp_path / "slice.yaml"
    study.write_text(LADDER_SLICE)
    script = Path(__file__).parents[1] / "benchmarks" / "bench_ladder.py"
    done = subprocess.run(
        [sys.executable, str(script), "--study", str(study), "--epochs", "1", "--workers", "2",
         "--precision", "fp32", "bf16"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert set(result["families"]) == {"mlp", "cnn", "vit"}
    # Every pack trains once per precision, in turns.
    assert [r["precision"] for r in result["packs"]] == ["fp32", "bf16"] * 3
    fp32 = [r for r in result["packs"] if r["precision"] == "fp32"]
    # Packs this small may train batched: 3 seeds fill one fleet, which two workers never cut.
    assert [r["members"] for r in fp32] == [3, 3, 3]
    for rates in result["families"].values():
        assert rates["gflops_per_s"] > 0 and rates["peak_fraction"] > 0
    # The rates and the roofline are the first precision's.
    seconds = sum(r["seconds"] for r in fp32)
    bound = sum(r["gflop"] for r in fp32) / result["matmul_peak_gflops"]
    assert result["total"]["seconds"] == pytest.approx(seconds, abs=0.01)
    assert result["total"]["roofline_ratio"] == pytest.approx(seconds / bound, rel=0.02)
    ratios = result["bf16_over_fp32"]
    assert {"all", "mlp", "cnn", "vit", "cnn/digits"} <= set(ratios)
    bf16 = sum(r["seconds"] for r in result["packs"] if r["precision"] == "bf16")
    assert ratios["all"] == pytest.approx(bf16 / seconds, abs=0.002)


@pytest.mark.parametrize(
    ("compare", "first", "second", "workload", "flops", "seeds"),
    [
        ("engines", "plain", "batched", "digits-cnn-c4", 9296, 3),
        ("layout", "contiguous", "channels_last", "digits-cnn-c4", 9296, 3),
        ("fused", "plain", "fused", "digits-mlp-w16", 2368, 2),
    ],
)
def test_engine_benchmark_prints_paired_ratios(compare, first, second, workload, flops, seeds):
    script = Path(__file__).parents[1] / "benchmarks" / "bench_engines.py"
    done = subprocess.run(
        [sys.executable, str(script), "--compare", compare, "--seeds", str(seeds), workload],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    (row,) = [json.loads(line) for line in done.stdout.splitlines()]
    assert row["workload"] == workload and row["flops_per_sample"] == flops
    assert row["members"] == seeds
    assert row[f"{first}_s"] > 0 and row[f"{second}_s"] > 0
    assert row[f"{second}_over_{first}"] > 0
