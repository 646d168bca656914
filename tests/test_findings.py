"""Findings in words at the top of each section, and the study's description at the top."""

from __future__ import annotations

import re

import pandas as pd

import minarch
from minarch.analysis import Analysis, AnalysisSpec, hpspace_tables
from minarch.reporting import ReportInput, findings, write_report
from minarch.reporting.sections.accuracy import accuracy_vs_params
from minarch.reporting.sections.hpspace import hyperparameter_space
from minarch.reporting.sections.pruning import pruning_sensitivity
from minarch.reporting.sections.quantization import quantization_robustness
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
    runs.loc[runs["model"] == "cnn w200000", "best_val_acc"] = 0.99
    text = findings_of(accuracy_vs_params(ReportInput(runs, epochs)))
    assert "Digits (8x8): the best architecture is cnn w200000 (200k parameters) at 99.0 %" in text
    assert re.search(r"mlp from \d+\.\d % \(1k parameters\) to \d+\.\d % \(100k\)", text)


def minimal(rows: list[tuple[str, str, float]]) -> Analysis:
    """An Analysis with only the P_min table (and no runs) filled in."""
    table = pd.DataFrame(
        [
            {"dataset": d, "family": f, "n_architectures": 4, "best_acc": 0.9, "p_min": p}
            | {"reached": p == p, "p_min_at_edge": False}
            for d, f, p in rows
        ]
    )
    return Analysis(pd.DataFrame({"regime": []}), pd.DataFrame(), table, AnalysisSpec())


def test_regime_findings_say_how_p_min_moves_along_the_datasets():
    rows = [("digits", "mlp", 1_200.0), ("mnist1d", "mlp", 12_700.0)]
    rows += [("digits", "cnn", 5_000.0), ("mnist1d", "cnn", 5_000.0)]
    rows += [("digits", "vit", float("nan")), ("mnist1d", "vit", 9_000.0)]
    sentences = findings.regimes(minimal(rows), ["digits", "mnist1d"])
    assert "P_min rises from 1.2k on Digits (8x8) to 12.7k on MNIST-1D for mlp." in sentences
    assert "P_min is 5k on Digits (8x8) and MNIST-1D for cnn." in sentences
    assert not any("for vit." in s for s in sentences)  # one dataset reached: no trend
    assert any(s.startswith("vit on Digits (8x8): P_min not reached") for s in sentences)
    assert "mlp on MNIST-1D: P_min = 12,700 parameters (best mean accuracy 90.0 %)." in sentences


def test_a_p_min_that_goes_up_and_down_is_not_called_a_rise():
    """The ladder study's CNNs: 2.7k, 1.1k, 10k, 2.7k, 10.5k along the datasets, easy to hard."""
    datasets = ["digits", "mnist1d", "mnist"]
    rows = [("digits", "cnn", 2_682.0), ("mnist1d", "cnn", 1_050.0), ("mnist", "cnn", 9_962.0)]
    sentences = findings.regimes(minimal(rows), datasets)
    trend = next(s for s in sentences if s.startswith("P_min "))
    assert "rises" not in trend and "falls" not in trend
    assert trend.startswith("P_min does not change monotonically with dataset difficulty: 2.68k")
    assert "2.68k on Digits (8x8), 1.05k on MNIST-1D, 9.96k on MNIST for cnn." in trend


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
