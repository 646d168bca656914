"""Findings in words at the top of each section, and the study's description at the top."""

from __future__ import annotations

import re

import pandas as pd
import pytest

import minarch
from minarch.analysis import Analysis, AnalysisSpec, analyze, hpspace_tables, summary
from minarch.reporting import ReportInput, findings, write_report
from minarch.reporting.sections.accuracy import accuracy_vs_params
from minarch.reporting.sections.hpspace import hyperparameter_space
from minarch.reporting.sections.pruning import pruning_sensitivity
from minarch.reporting.sections.quantization import quantization_robustness
from minarch.reporting.sections.summary import summary_tables
from minarch.spec import parse_study
from tests.cli import TINY_STUDY
from tests.test_compression import report_input, synthetic
from tests.test_hpspace import two_variants
from tests.test_report import frames


def findings_of(section) -> str:
    assert section.findings
    return "\n".join(section.findings)


def test_accuracy_findings_name_the_best_architecture_and_growth_with_size():
    runs, epochs = frames(datasets=("digits",))
    runs.loc[runs["model"] == "cnn w200000", "final_val_acc"] = 0.99
    runs.loc[runs["model"] == "mlp w1000", "best_val_acc"] = 1.0  # a best epoch: not shown
    text = findings_of(accuracy_vs_params(ReportInput(runs, epochs)))
    assert "Digits (8x8): the best architecture is cnn w200000 (200k parameters) at 99.0 %" in text
    assert re.search(r"mlp from \d+\.\d % \(1k parameters\) to \d+\.\d % \(100k\)", text)
    # three sizes: ρ = 1 is no evidence (p = 0.33), and the sentence says so
    assert (
        "accuracy shows no clear relation with parameter count (ρ = 1.00, n = 3, p = 0.33)" in text
    )


def test_one_accuracy_everywhere_the_report_and_analyze_agree():
    """The same model showed as 87.3 % (best epoch) in the findings and 86.92 % in analyze."""
    runs, epochs = frames(datasets=("digits",))
    last = epochs["epoch"] == epochs["epoch"].max()  # the store's final accuracy ends the curve
    epochs.loc[last, "val_acc"] = epochs.loc[last, "run_id"].map(
        runs.set_index("run_id")["final_val_acc"]
    )
    runs["best_val_acc"] = runs["final_val_acc"] + 0.05  # best epochs differ from the final
    data = ReportInput(runs, epochs)
    mean = analyze(runs, epochs, AnalysisSpec(bootstrap=0)).architectures
    mean = mean[mean["chosen"]].set_index("model")["acc_mean"]
    shown = summary.architectures(runs).set_index("model")["acc_mean"]
    assert shown.to_dict() == pytest.approx(mean.to_dict())
    text = findings_of(accuracy_vs_params(data))
    best = mean.idxmax()
    assert f"the best architecture is {best} " in text and f"at {100 * mean.max():.1f} %" in text
    table = "".join(p for p in summary_tables(data).parts if isinstance(p, str))
    assert f"{100 * mean[best]:.2f}" in table


def test_tied_best_architectures_are_named_as_ties():
    runs, epochs = frames(datasets=("digits",))
    runs["final_val_acc"] = 0.2  # every model at 20 %
    text = findings_of(accuracy_vs_params(ReportInput(runs, epochs)))
    assert "Digits (8x8): the best architectures are 9 tied models at 20.0 %" in text
    # the real reason no relation can be claimed, not "at least 3 varying models needed"
    assert "cannot be related to parameter count (n = 3; all accuracy values are equal)" in text


def minimal(rows: list[tuple[str, str, float]], edges=None) -> Analysis:
    """An Analysis with only the P_min table (and no runs) filled in."""
    edges = edges or {}
    table = pd.DataFrame(
        [
            {"dataset": d, "family": f, "n_architectures": 4, "largest_params": 100_000}
            | {"best_acc": 0.9, "accuracy_bar": 0.81, "bar_source": "all families"}
            | {"p_min": p, "p_min_edge": edges.get((d, f), "" if p == p else "not_reached")}
            | {"p_stable": p, "p_stable_edge": "" if p == p else "not_reached"}
            | {"p_over": float("nan"), "interleaved": False}
            for d, f, p in rows
        ]
    )
    return Analysis(pd.DataFrame({"regime": []}), pd.DataFrame(), table, AnalysisSpec())


def test_regime_findings_give_each_p_min_with_its_edges():
    rows = [("digits", "mlp", 1_200.0), ("mnist1d", "mlp", 12_700.0)]
    rows += [("digits", "vit", float("nan")), ("mnist1d", "vit", 9_000.0)]
    rows += [("digits", "cnn", 1_210.0), ("mnist1d", "cnn", 100_000.0)]
    edges = {("digits", "cnn"): "lower", ("mnist1d", "cnn"): "upper"}
    sentences = findings.regimes(minimal(rows, edges), ["digits", "mnist1d"])
    # two datasets are no evidence of a rise
    assert (
        "For mlp, P_min cannot be related to dataset difficulty (n = 2; fewer than 3 points to "
        "rank): 1,200 on Digits (8x8), 12,700 on MNIST-1D."
    ) in sentences
    assert any(
        s.startswith("vit on Digits (8x8): P_min not reached (> 100,000): none of its 4 sizes")
        for s in sentences
    )
    assert any(
        s.startswith(
            "mlp on MNIST-1D: P_min = 12,700 parameters (accuracy bar 81.0 %, 90 % of the best "
            "of any family)"
        )
        for s in sentences
    )
    low = next(s for s in sentences if s.startswith("cnn on Digits (8x8)"))
    assert low.startswith("cnn on Digits (8x8): P_min ≤ 1,210 parameters")
    assert "the smallest size tested already qualifies" in low
    assert any(s.startswith("cnn on MNIST-1D: P_min ≥ 100,000 parameters") for s in sentences)


def test_a_p_min_trend_is_a_relation_only_when_significant():
    """The ladder's CNNs went up and down; four points at |ρ| = 0.45 had p = 0.55."""
    datasets = ["digits", "mnist1d", "mnist", "fashion-mnist", "cifar10"]
    wobbly = [2_682.0, 1_050.0, 9_962.0, 2_700.0, 10_500.0]
    rising = [1_000.0, 2_000.0, 4_000.0, 8_000.0, 16_000.0]
    rows = [(d, "cnn", p) for d, p in zip(datasets, wobbly, strict=True)]
    rows += [(d, "mlp", p) for d, p in zip(datasets, rising, strict=True)]
    sentences = findings.regimes(minimal(rows), datasets)
    cnn = next(s for s in sentences if s.startswith("For cnn"))
    assert cnn.startswith(
        "For cnn, P_min shows no clear relation with dataset difficulty (ρ = 0.80, n = 5, p = 0.13)"
    )
    mlp = next(s for s in sentences if s.startswith("For mlp"))
    assert mlp.startswith(
        "For mlp, P_min rises with dataset difficulty (ρ = 1.00, n = 5, p = 0.017)"
    )


def test_pruning_and_quantization_findings_quote_their_tables():
    frame = synthetic()
    pruning = findings_of(pruning_sensitivity(report_input(frame)))
    assert (
        "Digits (8x8), unstructured-global (oneshot): accuracy stays within 1 pp up to 65 % of the "
        "weights removed for both models; removing 99 % of the weights costs"
    ) in pruning
    quant = findings_of(quantization_robustness(report_input(frame)))
    assert "Digits (8x8), weights-channel (ptq): both models need 8 bits." in quant


def test_hpspace_findings_give_theta_star_as_numbers_the_move_and_the_cost():
    section = hyperparameter_space(ReportInput(runs=two_variants(), epochs=pd.DataFrame()))
    text = findings_of(section)
    result = hpspace_tables(two_variants())
    d = result.risk["d_mean"].iloc[1]
    assert "resnet56 on CIFAR-10: the best configuration is lr 0.0398, weight decay 0.000631" in (
        text
    )
    assert "pruning moved the optimum by more than one grid step for 1 of 1 variant" in text
    assert f"costs at most {d:.2f} pp on average" in text


def test_the_study_description_opens_the_report(tmp_path):
    study = parse_study(TINY_STUDY + "description: Does width help? <b>n</b>\n", "tiny.yaml")
    runs, epochs = frames(datasets=("digits",))
    html = write_report(runs, epochs, tmp_path, title="t", study=study, png=False).read_text()
    header = html[html.index("<header>") : html.index("</header>")]
    assert '<p class="description">Does width help? &lt;b&gt;n&lt;/b&gt;</p>' in header
    first = html.index("<section")
    assert html.index('<div class="findings"><p><b>Findings</b></p><ul><li>Digits (8x8): ') > first


def test_the_description_is_not_part_of_run_ids(tmp_path):
    plain, described = tmp_path / "a.yaml", tmp_path / "b.yaml"
    plain.write_text(TINY_STUDY)
    described.write_text(TINY_STUDY + "description: a different text\n")
    ids = [{r.config.id for r in minarch.plan(p).runs} for p in (plain, described)]
    assert ids[0] == ids[1]
