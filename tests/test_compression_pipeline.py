"""A study with every pruning and quantization pipeline, run end to end through the API."""

from __future__ import annotations

import shutil
from pathlib import Path

import pandas as pd
import pytest
from rich.console import Console

import minarch
from minarch.analysis import COMPRESSION_COLUMNS

STUDY = """
name: squeeze
datasets: [digits]
models:
  - {family: mlp, width: 32}
  - {family: cnn, channels: 8}
training: {optimizer: adamw, lr: 0.01, weight_decay: 1.0e-4, epochs: 6, schedule: cosine}
seeds: 2
prune:
  structured: {scope: [uniform, global], flops_remaining: [0.5]}
  unstructured: {scope: [global], sparsity: [0.5, 0.99]}
  pipelines: [oneshot, finetune, retrain, imp]
  finetune: {epochs: 1}
  imp: {rounds: 2, rate: 0.5}
quantize:
  bits: [8, 2]
  casts: [fp16]
  qat: {bits: [2], epochs: 1}
"""


pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, Path]:
    folder = tmp_path_factory.mktemp("squeeze")
    (folder / "squeeze.yaml").write_text(STUDY)
    db = f"sqlite:///{folder / 'runs.db'}"
    outcome = minarch.run(
        folder / "squeeze.yaml",
        db=db,
        out=folder / "reports",
        device="cpu",
        console=Console(file=open(folder / "log.txt", "w")),  # noqa: SIM115
    )
    return db, outcome.report


def test_every_run_and_derived_run_finishes(finished: tuple[str, Path]) -> None:
    db, _ = finished
    runs = minarch.runs(db=db, study="squeeze")
    assert set(runs["state"]) == {"done"}, runs.loc[runs["state"] != "done", "message"].tolist()
    variants = runs.groupby("variant").size()
    assert variants["base"] == 4
    assert variants["retrain structured-global 0.5"] == 4
    assert variants["imp unstructured-global 0.75"] == 4  # round 2 at rate 0.5
    assert variants["qat weights-channel 2"] == 4
    retrained = runs[runs["variant"].str.startswith("retrain")]
    base = runs.set_index("run_id").loc[retrained["parent_id"]]
    assert (retrained["params"].to_numpy() < base["params"].to_numpy()).all()
    assert (retrained["flops"].to_numpy() < base["flops"].to_numpy()).all()


def test_compression_table_holds_evaluations_and_derived_runs(finished: tuple[str, Path]) -> None:
    db, _ = finished
    frame = minarch.compression(db=db, study="squeeze")
    assert list(frame.columns[: len(COMPRESSION_COLUMNS)]) == list(COMPRESSION_COLUMNS)
    counts = frame.groupby(["kind", "pipeline"]).size()
    # 4 base runs x (2 structured + 2 unstructured) one-shot settings, and the same fine-tuned
    assert counts[("prune", "oneshot")] == 16 and counts[("prune", "finetune")] == 16
    assert counts[("prune", "retrain")] == 8 and counts[("prune", "imp")] == 8
    assert counts[("quant", "ptq")] == 4 * 3 and counts[("quant", "qat")] == 4
    assert frame["val_acc"].between(0, 1).all() and frame["chance"].eq(0.1).all()
    oneshot = frame[(frame["pipeline"] == "oneshot") & frame["method"].eq("unstructured-global")]
    at = oneshot.groupby("sparsity")["val_acc"].mean()
    assert at[0.5] > at[0.99] + 0.2  # 99 % of the weights gone: near chance
    assert (oneshot["sparsity_measured"] - oneshot["sparsity"]).abs().max() < 1e-3
    structured = frame[
        frame["method"].str.startswith("structured") & frame["pipeline"].eq("oneshot")
    ]
    assert structured["flops_remaining"].between(0.49, 0.51).all()
    assert (structured["params_after"] < structured["params"]).all()
    assert structured["latency_ms"].gt(0).all()
    quant = frame[frame["kind"] == "quant"].groupby(["method", "bits"])["val_acc"].mean()
    base_acc = frame["base_val_acc"].mean()
    assert abs(quant[("weights-channel", 8)] - base_acc) < 0.03
    assert abs(quant[("fp16", 16)] - base_acc) < 0.01


def test_rerunning_trains_and_evaluates_nothing_new(finished: tuple[str, Path]) -> None:
    db, _ = finished
    before = minarch.compression(db=db, study="squeeze")
    folder = Path(db.removeprefix("sqlite:///")).parent
    outcome = minarch.run(
        folder / "squeeze.yaml", db=db, report=False, device="cpu", console=Console(quiet=True)
    )
    assert outcome.summary.trained == {}
    after = minarch.compression(db=db, study="squeeze")
    pd.testing.assert_frame_equal(before, after)


def test_settings_dropped_from_the_study_leave_the_analysis(
    finished: tuple[str, Path], tmp_path: Path
) -> None:
    db, _ = finished
    for file in Path(db.removeprefix("sqlite:///")).parent.glob("runs.db*"):
        shutil.copy(file, tmp_path / file.name)  # a copy: the other tests keep the full study
    copy = f"sqlite:///{tmp_path / 'runs.db'}"
    (tmp_path / "squeeze.yaml").write_text(STUDY.replace("bits: [8, 2]", "bits: [8]"))
    outcome = minarch.run(
        tmp_path / "squeeze.yaml", db=copy, report=False, device="cpu", console=Console(quiet=True)
    )
    assert outcome.summary.trained == {}
    ptq = minarch.compression(db=copy, study="squeeze").query("pipeline == 'ptq'")
    assert set(ptq["bits"]) == {8, 16}  # 8-bit weights and the fp16 cast; 2 bits is gone
    assert 2 in set(minarch.compression(db=db, study="squeeze").query("pipeline == 'ptq'")["bits"])


def test_report_has_pruning_and_quantization_sections(finished: tuple[str, Path]) -> None:
    _, report = finished
    html = report.read_text()
    assert "Pruning" in html and "Quantization" in html
    figures = {p.stem for p in (report.parent / "figures").glob("*.png")}
    if figures:  # PNGs need a browser for kaleido; where one ran, both sections drew theirs
        assert any(name.startswith("pruning-") for name in figures), sorted(figures)
        assert any(name.startswith("quant-") for name in figures), sorted(figures)


def test_an_unreachable_pruning_target_fails_only_its_own_runs(tmp_path: Path) -> None:
    study = tmp_path / "narrow.yaml"
    study.write_text(
        """
name: narrow
datasets: [digits]
models: [{family: cnn, depth: 3, channels: 4}]
training: {epochs: 1}
seeds: 1
prune:
  structured: {scope: [global], flops_remaining: [0.3]}
  pipelines: [oneshot, retrain]
"""
    )
    db = f"sqlite:///{tmp_path / 'runs.db'}"
    quiet = Console(quiet=True)  # one worker: the retrained child waits for its parent anyway
    outcome = minarch.run(study, db=db, report=False, device="cpu", workers=1, console=quiet)
    assert outcome.summary.trained == {"done": 1, "failed": 1}
    runs = minarch.runs(db=db).set_index("variant")
    assert runs.loc["base", "state"] == "done"
    assert "unreachable" in runs.loc["retrain structured-global 0.3", "message"]
    (error,) = minarch.compression(db=db)["error"]  # the one-shot evaluation says why too
    assert "unreachable" in error
