"""Pruning and quantization analyses (docs/methods.md A.3-A.4) on hand-made frames."""

from __future__ import annotations

import json
import math

import numpy as np
import pandas as pd
import pytest

from minarch.analysis.compression import COMPRESSION_COLUMNS
from minarch.analysis.pruning import (
    layer_widths,
    phases,
    pruning_curves,
    redundancy,
    redundancy_trend,
)
from minarch.analysis.quantization import bits_trend, int8_comparison, minimal_bits
from minarch.analysis.selection import chosen_configurations, in_configurations
from minarch.errors import MinarchError
from minarch.reporting import ReportInput
from minarch.reporting.prose import describe_redundancy_trend
from minarch.reporting.sections.pruning import pruning_sensitivity
from minarch.reporting.sections.quantization import quantization_robustness
from minarch.spec.schema import AnalysisSpec

EVIL = "<script>alert(1)</script>"
GRID = (0.5, 0.8, 0.9, 0.99)
BITS = (16, 8, 6, 4, 3, 2)


def row(**values) -> dict:
    """One compression row: an unstructured one-shot prune of a 90 % model unless told."""
    base = {
        "run_id": "r",
        "dataset": "digits",
        "family": "mlp",
        "model": "mlp d2",
        "depth": 2.0,
        "params": 1_000,
        "flops": 2_000,
        "seed": 0,
        "lr": 0.1,
        "weight_decay": 1e-4,
        "chance": 0.1,
        "base_val_acc": 0.9,
        "kind": "prune",
        "pipeline": "oneshot",
        "method": "unstructured-global",
        "sparsity": np.nan,
        "flops_remaining": np.nan,
        "bits": np.nan,
        "round": np.nan,
        "val_acc": np.nan,
        "val_loss": 1.0,
        "params_after": np.nan,
        "flops_after": np.nan,
        "latency_ms": np.nan,
        "size_bytes": np.nan,
    }
    assert set(values) <= {*base, "widths", "base_widths"}, set(values) - set(base)
    return {**base, **values}


def pruned(accs: dict[int, list[float]], grid=GRID, **values) -> list[dict]:
    """Rows for each seed's accuracies along ``grid``."""
    return [
        row(seed=seed, sparsity=s, val_acc=a, **values)
        for seed, curve in accs.items()
        for s, a in zip(grid, curve, strict=True)
    ]


def quantized(accs: dict[int, list[float]], bits=BITS, **values) -> list[dict]:
    values = {"kind": "quant", "pipeline": "ptq", "method": "weights-channel", **values}
    return [
        row(seed=seed, bits=b, val_acc=a, **values)
        for seed, curve in accs.items()
        for b, a in zip(bits, curve, strict=True)
    ]


TWO_SEEDS = {0: [0.90, 0.895, 0.85, 0.10], 1: [0.895, 0.88, 0.86, 0.12]}


def parents(frame: pd.DataFrame | None) -> pd.DataFrame:
    """The trained runs the rows came from, as the store's runs table has them."""
    if frame is None or frame.empty:
        return pd.DataFrame()
    keys = ["dataset", "family", "model", "params", "lr", "weight_decay", "seed"]
    runs = frame.drop_duplicates(keys)[[*keys, "base_val_acc"]].reset_index(drop=True)
    runs = runs.rename(columns={"base_val_acc": "final_val_acc"})
    return runs.assign(run_id=[f"p{i}" for i in range(len(runs))], state="done")


# --- pruning -------------------------------------------------------------------------------


def test_redundancy_is_the_plateau_edge_per_seed_with_mean_and_std():
    table = redundancy(pd.DataFrame(pruned(TWO_SEEDS)), delta=0.01)
    (r,) = table.itertuples()
    assert r.n_seeds == 2
    assert (r.r_min, r.r_max) == (0.5, 0.8)  # seed 0 holds to 0.8, seed 1 drops 2 pp at 0.8
    assert r.r_mean == pytest.approx(0.65)
    assert r.r_std == pytest.approx(math.sqrt(2 * 0.15**2))
    assert r.sparsity_at_r == pytest.approx(0.65)
    assert r.measure == "sparsity" and r.n_whole_grid == 0


def test_redundancy_ignores_a_recovery_past_the_edge_and_starts_at_zero():
    accs = {
        0: [0.89, 0.80, 0.895, 0.10],  # exactly 1 pp, then 10 pp, then a lucky point
        1: [0.85, 0.9, 0.9, 0.9],  # the first grid point already fails
        2: [0.9, 0.9, 0.9, 0.9],  # never leaves the plateau: a lower bound
    }
    table = redundancy(pd.DataFrame(pruned(accs)), delta=0.01)
    (r,) = table.itertuples()
    assert (r.r_min, r.r_max) == (0.0, 0.99)
    assert r.r_mean == pytest.approx((0.5 + 0.0 + 0.99) / 3)
    assert r.n_whole_grid == 1
    # a looser δ moves the edge
    assert redundancy(pd.DataFrame(pruned({0: accs[0]})), delta=0.2)["r_mean"].item() == 0.9


def test_curves_average_over_seeds_per_grid_point():
    curves = pruning_curves(pd.DataFrame(pruned(TWO_SEEDS)))
    assert curves["compression"].tolist() == list(GRID)
    assert curves["n_seeds"].tolist() == [2] * 4
    assert curves["acc_mean"].tolist() == pytest.approx([0.8975, 0.8875, 0.855, 0.11])
    assert curves["drop_std"].iloc[1] == pytest.approx(np.std([0.005, 0.02], ddof=1))


def test_phases_boundaries_and_labels():
    found = phases(pd.DataFrame(pruned(TWO_SEEDS)), delta=0.01, collapse_margin=0.10)
    (b,) = found.boundaries.itertuples()
    assert b.collapse_threshold == pytest.approx(0.19)  # chance 0.1 + 10 % of 0.9
    assert b.plateau_end == 0.5  # the mean drop at 0.8 is 1.25 pp
    assert b.collapse_start == 0.99
    assert (b.n_plateau, b.n_degradation, b.n_collapse) == (1, 2, 1)
    assert found.points["phase"].tolist() == ["plateau", "degradation", "degradation", "collapse"]


def test_collapse_rule_at_chance_plus_margin_and_no_recovery():
    accs = {0: [0.9, 0.20, 0.19, 0.5]}  # 0.20 is above 0.19; 0.19 collapses; 0.5 stays collapsed
    found = phases(pd.DataFrame(pruned(accs)), delta=0.01, collapse_margin=0.10)
    assert found.boundaries["collapse_start"].item() == 0.9
    assert found.points["phase"].tolist() == ["plateau", "degradation", "collapse", "collapse"]
    never = phases(pd.DataFrame(pruned({0: [0.9, 0.9, 0.5, 0.3]})), delta=0.01)
    assert math.isnan(never.boundaries["collapse_start"].item())
    assert never.boundaries["plateau_end"].item() == 0.8


def test_structured_redundancy_counts_flops_removed_and_matches_seeds_within_tolerance():
    rows = [
        row(
            seed=seed,
            method="structured-global",
            flops_remaining=fr * (1 + 0.009 * (-1) ** seed),  # the pruner hits its target ±1 %
            sparsity=sp,
            val_acc=acc,
        )
        for seed in (0, 1)
        for fr, sp, acc in ((0.75, 0.3, 0.9), (0.5, 0.55, 0.895), (0.25, 0.8, 0.5))
    ]
    curves = pruning_curves(pd.DataFrame(rows))
    assert curves["n_seeds"].tolist() == [2, 2, 2]
    assert curves["compression"].tolist() == pytest.approx([0.25, 0.5, 0.75])
    (r,) = redundancy(pd.DataFrame(rows)).itertuples()
    assert r.measure == "FLOPs removed"
    assert r.r_mean == pytest.approx(0.5)
    assert r.sparsity_at_r == pytest.approx(0.55)


def test_redundancy_trend_spearman_sign_p_and_too_few_models():
    rows = []
    for i, d in enumerate((2, 4, 6, 8, 10)):
        edge = [0.9] * i + [0.5] * (4 - i)  # R_δ grows with depth
        rows += pruned({0: edge}, model=f"mlp d{d}", depth=float(d), params=1_000 * (i + 1))
    trend = redundancy_trend(redundancy(pd.DataFrame(rows)))
    (t,) = trend.itertuples()
    assert t.n_models == 5
    assert t.rho_depth == pytest.approx(1.0)
    assert t.p_depth == pytest.approx(2 / 120)  # exact: 2 of 5! orderings are as extreme
    assert (
        "rises with depth (ρ = 1.00, n = 5, p = 0.017)"
        in describe_redundancy_trend(trend, AnalysisSpec())[0]
    )
    # four models at ρ = 1 were called a rise; their exact p is 2 / 4! = 0.083
    four = redundancy_trend(redundancy(pd.DataFrame([r for r in rows if r["depth"] < 10])))
    text = describe_redundancy_trend(four, AnalysisSpec())[0]
    assert "shows no clear relation with depth (ρ = 1.00, n = 4, p = 0.083)" in text
    shallow = redundancy(pd.DataFrame([r for r in rows if r["depth"] < 6]))
    few = redundancy_trend(shallow).iloc[0]
    assert few["n_models"] == 2 and math.isnan(few["rho_depth"]) and math.isnan(few["rho_params"])
    assert few["why_depth"] == "fewer than 3 points to rank"


def test_layer_widths_uniform_against_global_and_absent():
    base = json.dumps({"conv1": 16, "conv2": {"out_channels": 32}})
    rows = [
        row(
            seed=seed,
            method=method,
            flops_remaining=0.5,
            sparsity=0.5,
            val_acc=0.8,
            widths=json.dumps({"conv1": kept[0] + seed, "conv2": {"out_channels": kept[1]}}),
            base_widths=base,
        )
        for seed in (0, 1)
        for method, kept in (("structured-uniform", (8, 16)), ("structured-global", (12, 8)))
    ]
    table = layer_widths(pd.DataFrame(rows))
    assert table["layer"].tolist() == ["conv1", "conv2"]
    assert table["structured-uniform @ 50 %: kept"].tolist() == [8.5, 16]
    assert table["structured-global @ 50 %: fraction"].tolist() == [12.5 / 16, 8 / 32]
    assert layer_widths(pd.DataFrame(pruned(TWO_SEEDS))).empty


def test_missing_column_and_unknown_kind_are_user_errors():
    frame = pd.DataFrame(pruned(TWO_SEEDS)).drop(columns="base_val_acc")
    with pytest.raises(MinarchError, match="base_val_acc"):
        redundancy(frame)
    with pytest.raises(MinarchError, match="distill"):
        pruning_curves(pd.DataFrame(pruned(TWO_SEEDS, kind="distill")))
    assert redundancy(pd.DataFrame(columns=list(COMPRESSION_COLUMNS))).empty


def test_chosen_configuration_is_the_best_trained_parent():
    rows = pruned(TWO_SEEDS) + pruned({0: [0.1] * 4}, lr=0.01, base_val_acc=0.5)
    frame = pd.DataFrame(rows)
    chosen = in_configurations(frame, chosen_configurations(parents(frame)))
    assert set(chosen["lr"]) == {0.1}
    assert len(pruning_curves(pd.DataFrame(rows))) == 8  # configurations are never pooled


# --- quantization --------------------------------------------------------------------------


def test_minimal_bits_needs_every_wider_width_and_uses_the_seed_mean():
    accs = {
        0: [0.9, 0.898, 0.895, 0.85, 0.895, 0.1],  # 3 bits is lucky under a failing 4
        1: [0.9, 0.896, 0.885, 0.85, 0.895, 0.1],  # 6 bits: mean drop 1 pp exactly
    }
    (m,) = minimal_bits(pd.DataFrame(quantized(accs)), delta=0.01).itertuples()
    assert m.min_bits == 6 and m.qualifies
    assert m.acc_at_min == pytest.approx(0.89)
    assert m.base_acc == 0.9
    assert m.bits_tested == "16, 8, 6, 4, 3, 2"
    strict = minimal_bits(pd.DataFrame(quantized(accs)), delta=0.005)
    assert strict["min_bits"].item() == 8


def test_minimal_bits_none_qualifies():
    (m,) = minimal_bits(pd.DataFrame(quantized({0: [0.85, 0.9, 0.9, 0.9, 0.9, 0.9]}))).itertuples()
    assert not m.qualifies and math.isnan(m.min_bits) and math.isnan(m.acc_at_min)


def test_bits_trend_falls_with_size():
    rows = []
    for dataset in ("cifar10", "digits"):
        for i, params in enumerate((1_000, 10_000, 100_000, 1_000_000)):
            # larger models hold to fewer bits (8, 6, 4); the smallest never qualifies
            curve = [0.9] * (1 + i) + [0.5] * (5 - i) if i else [0.5] * 6
            rows += quantized({0: curve}, dataset=dataset, model=f"m{i}", params=params)
    trend = bits_trend(minimal_bits(pd.DataFrame(rows)))
    assert trend.by_params["rho_params"].tolist() == pytest.approx([-1.0, -1.0])
    assert trend.by_dataset["n_qualified"].tolist() == [3, 3]
    assert trend.by_dataset["mean_bits"].iloc[0] == pytest.approx((8 + 6 + 4) / 3)
    few = bits_trend(minimal_bits(pd.DataFrame([r for r in rows if r["params"] < 50_000])))
    assert few.by_params["rho_params"].isna().all()


def test_int8_against_its_float_reference():
    rows = [
        row(kind="quant", pipeline="int8", method="int8", bits=8, val_acc=0.88, size_bytes=1e3,
            latency_ms=1.0),
        row(kind="quant", pipeline="ptq", method="fp32", bits=32, val_acc=0.9, size_bytes=4e3,
            latency_ms=2.0),
        row(kind="quant", pipeline="ptq", method="weights+acts-channel", bits=8, val_acc=0.885),
        row(kind="quant", pipeline="ptq", method="weights+acts-channel", bits=4, val_acc=0.7),
    ]  # fmt: skip
    (r,) = int8_comparison(pd.DataFrame(rows)).itertuples()
    assert (r.acc_fp32, r.acc_int8, r.size_ratio, r.speedup) == (0.9, 0.88, 0.25, 2.0)
    assert r.acc_simulated == 0.885  # the 8-bit twin, not the 4-bit setting
    alone = int8_comparison(pd.DataFrame(rows[:1])).iloc[0]
    assert alone["acc_fp32"] == 0.9 and math.isnan(alone["speedup"])  # the parent's accuracy
    assert math.isnan(alone["acc_simulated"])


# --- report sections -----------------------------------------------------------------------


def synthetic() -> pd.DataFrame:
    """Two datasets, two MLPs (one with an evil name), every kind of row."""
    rows = []
    base = json.dumps({"fc1": 64, "fc2": 32})
    for dataset in ("mnist", "digits"):
        for depth, model in ((2, "mlp d2"), (4, EVIL)):
            common = {"dataset": dataset, "model": model, "depth": float(depth)}
            common["params"] = 1_000 * depth
            rows += pruned(TWO_SEEDS, **common)
            rows += pruned(TWO_SEEDS, pipeline="finetune", **common)
            for method in ("structured-uniform", "structured-global"):
                for seed in (0, 1):
                    for fr, acc in ((0.75, 0.9), (0.5, 0.85), (0.25, 0.2)):
                        widths = json.dumps({"fc1": round(64 * fr), "fc2": 32})
                        rows.append(
                            row(seed=seed, method=method, flops_remaining=fr, sparsity=1 - fr,
                                val_acc=acc, widths=widths, base_widths=base, **common)
                        )  # fmt: skip
            accs = {0: [0.9, 0.9, 0.89, 0.8, 0.5, 0.1], 1: [0.9, 0.9, 0.88, 0.82, 0.5, 0.1]}
            rows += quantized(accs, **common)
            rows += quantized(accs, method="weights+acts-tensor", pipeline="qat", **common)
            for sparsity in (0.5, 0.9):
                rows += quantized(accs, sparsity=sparsity, **common)
            for method in ("fp16", "bf16"):
                rows += quantized({0: [0.9]}, bits=(16,), method=method, **common)
            rows.append(row(kind="quant", pipeline="int8", method="int8", bits=8, val_acc=0.88,
                            size_bytes=1e3, latency_ms=1.0, **common))  # fmt: skip
            rows.append(row(kind="quant", pipeline="ptq", method="fp32", bits=32, val_acc=0.9,
                            size_bytes=4e3, latency_ms=2.0, **common))  # fmt: skip
    return pd.DataFrame(rows)


def report_input(compression: pd.DataFrame | None) -> ReportInput:
    return ReportInput(parents(compression), pd.DataFrame(), None, compression)


def test_pruning_section_builds_with_figures_and_tables():
    section = pruning_sensitivity(report_input(synthetic()))
    slugs = [f.slug for f in section.figures]
    for dataset in ("digits", "mnist"):
        for kind in ("unstructured", "structured", "redundancy"):
            assert f"pruning-{kind}-{dataset}" in slugs
    assert len(slugs) == len(set(slugs))
    assert slugs.index("pruning-unstructured-digits") < slugs.index("pruning-unstructured-mnist")
    html = "".join(p for p in section.parts if isinstance(p, str))
    assert html.count('<table class="summary">') == 2 * 3  # R_δ, widths of both models
    assert (
        "δ = 1 pp" in html
        and "cannot be related to depth (n = 2; fewer than 3 points to rank)" in html
        and "fc1" in html
    )
    assert EVIL not in html and "&lt;script&gt;" in html
    for fig in section.figures:
        assert fig.figure.data
        assert EVIL not in fig.figure.to_json()


def test_quantization_section_builds_with_figures_and_tables():
    spec = AnalysisSpec(quant_delta=0.02)
    study = type("Study", (), {"analysis": spec})()  # only .analysis is read
    section = quantization_robustness(
        ReportInput(parents(synthetic()), pd.DataFrame(), study, synthetic())
    )
    slugs = [f.slug for f in section.figures]
    assert "quant-bits-vs-dataset" in slugs
    for dataset in ("digits", "mnist"):
        for kind in ("accuracy", "min-bits", "pruned"):
            assert f"quant-{kind}-{dataset}" in slugs
    html = "".join(p for p in section.parts if isinstance(p, str))
    assert html.count('<table class="summary">') == 2 * 2  # minimal bits, int8
    assert "δ = 2 pp" in html and "study's thresholds" in html
    assert "2,000" in html and "4,000" in html  # parameters with separators
    assert EVIL not in html
    for fig in section.figures:
        assert fig.figure.data
        assert EVIL not in fig.figure.to_json()


def test_sections_return_none_without_their_rows():
    frame = synthetic()
    for build in (pruning_sensitivity, quantization_robustness):
        assert build(report_input(None)) is None
        assert build(report_input(pd.DataFrame())) is None
    assert pruning_sensitivity(report_input(frame[frame["kind"] == "quant"])) is None
    assert quantization_robustness(report_input(frame[frame["kind"] == "prune"])) is None


def test_quantization_section_draws_no_empty_figure():
    int8 = [row(kind="quant", pipeline="int8", method="int8", bits=8, val_acc=0.88)]
    section = quantization_robustness(report_input(pd.DataFrame(int8)))
    assert not section.figures and any("Real int8" in p for p in section.parts)
    casts = quantized({0: [0.9]}, bits=(16,), method="fp16")
    (fig,) = quantization_robustness(report_input(pd.DataFrame(casts))).figures
    assert fig.slug == "quant-accuracy-digits" and len(fig.figure.data) == 1
