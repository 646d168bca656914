"""Trend tests (A.5) and the paper's claims (a)-(e) tested on constructed studies."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from minarch.analysis import Analysis, AnalysisSpec, analyze
from minarch.analysis.claims import ClaimInput, claims
from minarch.analysis.difficulty import dataset_order, difficulty
from minarch.analysis.statistics import Relation, spearman, stratified_spearman
from tests.test_analysis import EPOCHS, run_frames
from tests.test_compression import pruned, quantized

# --- statistics -----------------------------------------------------------------------------


def test_exact_p_for_few_points_is_the_permutation_test():
    x, y = [1, 2, 3, 4, 5, 6], [2, 1, 4, 3, 6, 5]
    found = spearman(x, y)
    exact = stats.permutation_test(
        (y,),
        lambda a: stats.spearmanr(x, a).statistic,
        permutation_type="pairings",
        n_resamples=np.inf,
    )
    assert found.rho == pytest.approx(exact.statistic) and found.p == pytest.approx(exact.pvalue)


def test_the_issue_s_trend_is_no_relation():
    """'falls with parameter count (ρ = −0.45, n = 4)' had p = 0.55: no clear relation."""
    found = spearman([1, 2, 3, 4], [0.9, 0.6, 0.95, 0.5])
    assert found.rho == pytest.approx(-0.4)
    assert found.relation() is Relation.NONE
    assert found.evidence() == "ρ = -0.40, n = 4, p = 0.75"
    assert spearman(range(5), range(5)).relation() is Relation.RISES  # p = 2/120
    assert spearman(range(4), range(4)).relation() is Relation.NONE  # p = 2/24, n < 4 never wins
    assert spearman(range(4), range(4)).relation(alpha=0.1, min_n=4) is Relation.RISES


def test_many_points_use_the_normal_approximation():
    rng = np.random.default_rng(0)
    x = np.arange(30)
    y = x + rng.normal(0, 10, 30)
    found = spearman(x, y)
    rho = stats.spearmanr(x, y).statistic
    assert found.rho == pytest.approx(rho)
    assert found.p == pytest.approx(2 * stats.norm.sf(abs(rho) * math.sqrt(29)))


def test_tied_values_share_their_mean_rank_as_in_scipy():
    x, y = [1, 2, 2, 3, 5, 5, 5, 8, 9], [3, 1, 4, 1, 5, 9, 2, 6, 5]
    found = spearman(x, y)
    rho = stats.spearmanr(x, y).statistic
    assert found.rho == pytest.approx(rho)
    assert found.p == pytest.approx(2 * stats.norm.sf(abs(rho) * math.sqrt(8)))
    assert math.isnan(spearman([1, 2, math.nan, 4], [1, 2, 3, 4]).rho)


def test_untestable_trends_give_the_real_reason():
    assert spearman([1, 2, 3, 4], [5, 5, 5, 5], names=("size", "accuracy")).reason == (
        "all accuracy values are equal"
    )
    assert (
        spearman([2, 2, 2], [1, 2, 3], names=("depth", "R")).reason == "all depth values are equal"
    )
    assert spearman([1, 2], [1, 2]).reason == "fewer than 3 points to rank"
    assert spearman([1, 2], [1, 2]).relation() is Relation.UNKNOWN


def test_strata_are_never_pooled_into_a_trend():
    """Two families, each falling with size, the larger family more accurate: no rise."""
    small, large = ([1, 2, 3, 4], [0.5, 0.4, 0.3, 0.2]), ([10, 20, 30, 40], [0.9, 0.8, 0.7, 0.6])
    pooled = spearman([*small[0], *large[0]], [*small[1], *large[1]])
    within = stratified_spearman([small, large])
    assert pooled.rho > 0 and within.rho == pytest.approx(-1.0)
    assert within.n == 8 and within.p == pytest.approx(2 / 24**2)


# --- difficulty -----------------------------------------------------------------------------


def test_difficulty_is_measured_not_the_registered_rank():
    """MNIST-1D (best 62 %) is harder than Fashion-MNIST (84 %), whatever a rank says."""
    specs = [
        ({"dataset": "mnist1d"}, {"val_acc": np.linspace(0.3, 0.62, EPOCHS)}),
        ({"dataset": "fashion-mnist"}, {"val_acc": np.linspace(0.3, 0.84, EPOCHS)}),
        ({"dataset": "digits"}, {"val_acc": np.linspace(0.3, 0.97, EPOCHS)}),
    ]
    runs, _ = run_frames(specs)
    table = difficulty(runs)
    assert table["dataset"].tolist() == ["digits", "fashion-mnist", "mnist1d"]
    assert table["normalised_error"].iloc[2] == pytest.approx(0.38 / 0.9)
    assert dataset_order(runs, order=["mnist1d"]) == ["mnist1d", "digits", "fashion-mnist"]


# --- the claims -----------------------------------------------------------------------------


def study(
    archs: list[tuple[str, str, int, str, float]],
    minimal: pd.DataFrame | None = None,
    t: AnalysisSpec | None = None,
):
    """An Analysis from (dataset, family, params, regime, accuracy) per architecture, 3 seeds."""
    rows = [
        {"dataset": d, "family": f, "model": f"{f} {p}", "params": p, "lr": 0.1}
        | {"weight_decay": 0.0, "regime": r, "acc_mean": a, "chosen": True}
        for d, f, p, r, a in archs
    ]
    table = pd.DataFrame(rows)
    runs = pd.concat(
        [
            table.assign(seed=s, state="done", chance=0.1, final_val_acc=table["acc_mean"])
            for s in range(3)
        ],
        ignore_index=True,
    )
    minimal = minimal if minimal is not None else pd.DataFrame(columns=["family", "p_min_edge"])
    return Analysis(runs, table, minimal, t or AnalysisSpec(bootstrap=200))


def verdicts(analysis: Analysis, compression=None, runs=None, order=()) -> pd.DataFrame:
    data = ClaimInput(analysis, runs if runs is not None else analysis.runs, compression, order)
    return claims(data).set_index("claim")


def test_a_regimes_in_order_along_size():
    regimes = ["unstable", "unstable", "learning", "learning", "overfitting", "overfitting"]
    archs = [("digits", "mlp", 10**i, r, 0.9) for i, r in enumerate(regimes, start=1)]
    row = verdicts(study(archs)).loc["a"]
    assert row["verdict"] == "supported" and row["n"] == 6 and row["p"] < 0.05
    backwards = [("digits", "mlp", 10**i, r, 0.9) for i, r in enumerate(regimes[::-1], start=1)]
    assert verdicts(study(backwards)).loc["a", "verdict"] == "contradicted"
    few = verdicts(study(archs[1:4])).loc["a"]
    assert few["verdict"] == "inconclusive"
    assert "overfitting regime" in few["decide"] and "at least 4 needed" in few["decide"]


def compression_study(r_by_depth: dict[int, int], bits_by_params: dict[int, int]):
    """Pruning curves whose plateau ends at grid point r per depth; bits curves per size."""
    rows = []
    for depth, r in r_by_depth.items():
        curve = [0.9] * r + [0.5] * (4 - r)
        rows += pruned({0: curve}, model=f"mlp d{depth}", depth=float(depth), params=1_000)
    widths = (16, 8, 6, 4, 3, 2)
    for params, bits in bits_by_params.items():
        curve = [0.9 if b >= bits else 0.5 for b in widths]
        rows += quantized({0: curve}, model=f"mlp p{params}", depth=2.0, params=params)
    frame = pd.DataFrame(rows)
    keys = ["dataset", "family", "model", "params", "lr", "weight_decay"]
    runs = frame.drop_duplicates(keys)[keys].reset_index(drop=True)
    runs = runs.assign(run_id=[f"p{i}" for i in range(len(runs))], state="done", seed=0)
    runs["final_val_acc"] = 0.9
    runs["config.model.width"] = 64
    runs["config.model.depth"] = frame.drop_duplicates(keys)["depth"].to_numpy()
    return frame, runs


def test_b_and_c_read_pruning_and_quantization():
    frame, runs = compression_study(
        {1: 0, 2: 1, 3: 2, 4: 3, 5: 4}, {1_000: 8, 2_000: 6, 4_000: 6, 8_000: 4, 16_000: 3}
    )
    table = verdicts(study([("digits", "mlp", 1_000, "learning", 0.9)]), frame, runs)
    assert table.loc["b", "verdict"] == "supported" and table.loc["b", "n"] == 5
    assert table.loc["c-size", "verdict"] == "supported" and table.loc["c-size", "value"] < 0
    assert table.loc["c-difficulty", "verdict"] == "inconclusive"  # one dataset
    frame, runs = compression_study({1: 4, 2: 3, 3: 2, 4: 1, 5: 0}, {})
    table = verdicts(study([("digits", "mlp", 1_000, "learning", 0.9)]), frame, runs)
    assert table.loc["b", "verdict"] == "contradicted"
    assert table.loc["c-size", "decide"].startswith("quantization results")
    absent = verdicts(study([("digits", "mlp", 1_000, "learning", 0.9)]))
    assert absent.loc["b", "decide"] == "pruning results (a prune: section in the study)"


def test_d_p_min_grows_with_difficulty_and_bounds_are_named():
    order = ["digits", "mnist1d", "mnist", "fashion-mnist", "cifar10"]
    minimal = pd.DataFrame(
        {
            "dataset": order,
            "family": "mlp",
            "p_min": [1e3, 2e3, 4e3, 8e3, np.nan],
            "p_min_edge": ["lower", "", "", "", "not_reached"],
        }
    )
    row = verdicts(study([("digits", "mlp", 1_000, "learning", 0.9)], minimal), order=order).loc[
        "d"
    ]
    assert row["verdict"] == "supported" and row["p"] == pytest.approx(2 / 120)
    one = [("digits", "mlp", 1_000, "learning", 0.9)]
    few = verdicts(study(one, minimal.iloc[:3]), order=order).loc["d"]
    assert few["verdict"] == "inconclusive" and few["n"] == 3
    assert few["decide"] == (
        "more datasets of varied difficulty, and sizes that bracket the 1 P_min that are "
        "bounds (n = 3, at least 4 needed)"
    )


def test_e_families_agree_or_differ():
    same = [("digits", "mlp", 100, "learning", 0.90), ("digits", "cnn", 100, "learning", 0.91)]
    assert verdicts(study(same)).loc["e", "verdict"] == "supported"
    apart = [("digits", "mlp", 100, "learning", 0.60), ("digits", "cnn", 100, "learning", 0.91)]
    row = verdicts(study(apart)).loc["e"]
    assert row["verdict"] == "contradicted" and row["value"] == pytest.approx(31.0)
    alone = verdicts(study(same[:1])).loc["e"]
    assert alone["verdict"] == "inconclusive" and alone["decide"] == (
        "a second family on the same dataset"
    )


def test_claims_on_a_real_analysis_have_every_row():
    regimes = {"no": {"train_loss": np.full(EPOCHS, 2.3), "val_acc": np.full(EPOCHS, 0.1)}}
    specs = [({"params": 10, "model": "mlp w1"}, regimes["no"]), ({"params": 100}, {})]
    runs, epochs = run_frames(specs)
    analysis = analyze(runs, epochs, AnalysisSpec(bootstrap=0))
    table = claims(ClaimInput(analysis, runs, pd.DataFrame(), ["digits"]))
    assert table["claim"].tolist() == ["a", "b", "c-size", "c-difficulty", "d", "e"]
    assert set(table["verdict"]) == {"inconclusive"}
    assert table["decide"].str.len().min() > 0
