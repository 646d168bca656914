"""Typed compression settings: canonical dicts, pinned keys, and every registry entry covered."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest
import torch

from minarch.errors import PruneError, QuantError, SpecError
from minarch.execute import compress as compress_module
from minarch.execute.compress import compress, measure
from minarch.models import build_model
from minarch.prune import CRITERIA, PRUNERS
from minarch.quant import QUANTIZERS
from minarch.registry import Registry
from minarch.spec import expand, parse_study
from minarch.spec.derive import derived_runs, oneshot_settings, setting_key
from minarch.spec.identity import digest
from minarch.spec.schema import StructuredPruning
from minarch.spec.settings import (
    Calibration,
    Cast,
    Float32,
    ImpRound,
    Int8,
    PrunedThenQuantized,
    StructuredPrune,
    UnstructuredPrune,
    WeightQuant,
    from_dict,
)
from minarch.train import evaluate
from minarch.train.layout import memory_format
from tests.synthetic import class_patterns

pytestmark = pytest.mark.usefixtures("one_thread")

ROOT = Path(__file__).resolve().parents[1]
BUILTIN = sorted(
    {
        path.resolve()
        for path in [*(ROOT / "src/minarch/studies").glob("*.yaml"), *ROOT.glob("studies/*.yaml")]
    }
)

# Every method, scope, pipeline and non-default option at once.
EVERYTHING = """
name: everything
datasets: [digits]
models: [{family: mlp, width: 8}, {family: cnn, channels: 4}]
training: {lr: [0.1, 0.01], weight_decay: [1.0e-4, 0.0], epochs: 2}
seeds: 2
prune:
  structured:
    {scope: [uniform, global], flops_remaining: [0.5, 0.3], residual: keep, tolerance: 0.05}
  unstructured: {scope: [global, layer], sparsity: [0.5, 0.9]}
  pipelines: [oneshot, finetune, retrain, imp]
  imp: {rounds: 3, rate: 0.3, scope: layer}
quantize:
  bits: [8, 4, 2]
  granularity: [channel, tensor]
  activations: true
  casts: [fp16, bf16]
  calibration: {method: percentile, percentile: 99.9, batches: 2}
  fold_batchnorm: false
  qat: {bits: [4, 2], epochs: 1}
  int8: true
  with_pruning: true
"""


def settings_of(text: str) -> list:
    study = parse_study(text)
    derived = [run.derived.setting for run in derived_runs(study, expand(study))]
    return oneshot_settings(study) + derived


@pytest.mark.parametrize("path", BUILTIN, ids=lambda p: p.name)
def test_every_builtin_setting_round_trips(path: Path):
    for setting in settings_of(path.read_text()):
        stored = setting.to_dict()
        assert from_dict(stored) == setting
        assert from_dict(stored).to_dict() == stored


def test_builtin_settings_and_derived_ids_are_pinned():
    """Digests of each study's sorted setting keys and derived run ids, from the dict-era code.

    A changed digest orphans stored evaluations or derived runs: only with a migration.
    """
    pinned = {path.stem: _digest(path.read_text()) for path in BUILTIN}
    assert {name: value for name, value in pinned.items() if value} == {
        "compression-cpu": "c0e8ad7490875acd",
        "compression-ladder-cpu": "42ac269b4880a248",
        "hpspace-cifar10-cpu": "8a098a775d52f4cb",  # 8 epochs and a lower grid since 2026-11-30
        "hpspace-cpu": "f08776091321fff8",
        "thesis-mobilenetv2-cifar10": "5763855a7de29663",
        # ResNet-CIFAR's default shortcut became option A (docs/methods.md B.2, issue 15): new
        # base runs, so new derived ids; "shortcut: B" keeps the dict-era id 49422ffa5bdbd77e.
        "thesis-resnet56-cifar10": "0959d2442bf8483d",
    }


def test_an_option_b_resnet_study_keeps_its_dict_era_ids():
    text = next(p for p in BUILTIN if p.stem == "thesis-resnet56-cifar10").read_text()
    option_b = text.replace("- family: resnet_cifar\n", "- family: resnet_cifar\n    shortcut: B\n")
    assert option_b != text
    assert _digest(option_b) == "49422ffa5bdbd77e"


def _digest(text: str) -> str | None:
    """One digest of a study's sorted setting keys and derived run ids; None if it has none."""
    study = parse_study(text)
    keys = sorted(setting_key(s) for s in oneshot_settings(study))
    ids = sorted(run.id for run in derived_runs(study, expand(study)))
    return digest([keys, ids]) if keys or ids else None


PERCENTILE = Calibration(method="percentile", percentile=99.9, batches=2)


@pytest.mark.parametrize(
    ("setting", "stored", "key"),
    [
        (
            StructuredPrune("uniform", 0.6, "keep"),
            {"kind": "prune", "method": "structured-uniform", "flops_remaining": 0.6,
             "residual": "keep"},
            "2902f214780ca22b",
        ),
        (
            StructuredPrune("uniform", 0.9, "prune", 0.03),
            {"kind": "prune", "method": "structured-uniform", "flops_remaining": 0.9,
             "residual": "prune", "tolerance": 0.03},
            "f49356c8f01ab8da",
        ),
        (
            UnstructuredPrune("global", 0.1),
            {"kind": "prune", "method": "unstructured-global", "sparsity": 0.1},
            "d85103120e9f60b5",
        ),
        (
            ImpRound("layer", 0.51, 2),
            {"kind": "prune", "method": "unstructured-layer", "sparsity": 0.51, "round": 2,
             "rewind": "init"},
            "9ddb5245fba0a3e8",
        ),
        (
            WeightQuant(8, "channel", True),
            {"kind": "quant", "method": "weights-channel", "bits": 8, "fold_bn": True},
            "5fbb867e6428b092",
        ),
        (
            WeightQuant(8, "channel", False, PERCENTILE),
            {"kind": "quant", "method": "weights+acts-channel", "bits": 8, "fold_bn": False,
             "calibration": {"method": "percentile", "percentile": 99.9, "batches": 2}},
            "2ef2e5d371bddcd0",
        ),
        (Cast("fp16"), {"kind": "quant", "method": "fp16", "bits": 16}, "337f1b34669e966c"),
        (Float32(), {"kind": "quant", "method": "fp32", "bits": 32}, "bafe7935df4c3f97"),
        (
            Int8(Calibration()),
            {"kind": "quant", "method": "int8", "bits": 8,
             "calibration": {"method": "minmax", "percentile": 99.99, "batches": 4}},
            "afd438b6b8cdef35",
        ),
        (
            PrunedThenQuantized(
                UnstructuredPrune("layer", 0.9), WeightQuant(2, "tensor", False, PERCENTILE)
            ),
            {"kind": "quant", "method": "weights+acts-tensor", "bits": 2, "fold_bn": False,
             "calibration": {"method": "percentile", "percentile": 99.9, "batches": 2},
             "after": {"kind": "prune", "method": "unstructured-layer", "sparsity": 0.9}},
            "29c47c312c63cc27",
        ),
    ],
)  # fmt: skip
def test_setting_dicts_and_keys_are_pinned(setting, stored, key):
    assert setting.to_dict() == stored
    assert setting_key(setting) == key
    assert from_dict(stored) == setting


def test_derived_run_ids_are_pinned():
    """Fine-tuned, retrained, IMP and QAT runs of every kind of setting, from the dict-era code."""
    study = parse_study(EVERYTHING)
    runs = derived_runs(study, expand(study))
    keys = sorted(setting_key(s) for s in oneshot_settings(study))
    assert digest([keys, sorted(run.id for run in runs)]) == "44150b94f5817f95"
    pinned = {0: "finetune", 128: "retrain", 193: "imp", 250: "qat"}
    assert {i: runs[i].derived.pipeline for i in pinned} == pinned
    assert [runs[i].id for i in pinned] == [
        "25cd1d07d2b76fff",
        "b976b114c0e8d4c1",
        "2509d974fd0e12f7",
        "74ce7365879ce57b",
    ]
    assert runs[193].derived.setting == ImpRound("layer", 0.51, 2)


def test_a_non_default_criterion_is_part_of_the_setting_and_its_label():
    l1 = StructuredPrune("global", 0.5, "prune")
    l2 = StructuredPrune("global", 0.5, "prune", criterion="l2")
    assert "criterion" not in l1.to_dict() and l2.to_dict()["criterion"] == "l2"
    assert setting_key(l1) != setting_key(l2)
    assert (l1.label, l2.label) == ("structured-global 0.5", "structured-global 0.5 l2")
    study = parse_study(EVERYTHING.replace("tolerance: 0.05", "tolerance: 0.05, criterion: l2"))
    structured = [s for s in oneshot_settings(study) if isinstance(s, StructuredPrune)]
    assert structured and all(s.criterion == "l2" for s in structured)


@pytest.mark.parametrize(
    "stored",
    [
        {"kind": "quant", "method": "fp16", "bits": 8},
        {"kind": "prune", "method": "structured", "flops_remaining": 0.5, "residual": "prune"},
        {"kind": "quant", "method": "weights+acts-channel", "bits": 8, "fold_bn": True},
        {"kind": "prune", "method": "unstructured-global", "sparsity": 0.5, "extra": 1},
        {"kind": "prune", "method": "structured-global", "flops_remaining": 0.5,
         "residual": "prune", "tolerance": 0.01},
        {"kind": "distill", "method": "kd"},
    ],
)  # fmt: skip
def test_from_dict_refuses_what_no_setting_writes(stored):
    with pytest.raises(SpecError, match="not a compression setting") as info:
        from_dict(stored)
    assert "\n" not in str(info.value)


def test_the_study_file_offers_every_registered_criterion():
    field = StructuredPruning.model_fields["criterion"]
    assert sorted(typing.get_args(field.annotation)) == CRITERIA.names()
    assert field.default == "l1"
    with pytest.raises(SpecError, match=r"prune\.structured\.criterion"):
        parse_study(EVERYTHING.replace("tolerance: 0.05", "tolerance: 0.05, criterion: l3"))


def test_registries_refuse_duplicates_and_list_valid_names():
    registry: Registry[int] = Registry("widget", QuantError)
    registry.register("a", 1)
    with pytest.raises(QuantError, match="widget 'a' is already registered"):
        registry.register("a", 2)
    with pytest.raises(QuantError, match="unknown widget 'b'; valid: a"):
        registry["b"]
    with pytest.raises(PruneError, match="valid: bn-scale, l1, l2"):
        CRITERIA["l3"]


def entries(setting) -> set[str]:
    """The registry names (pruners and quantizers) a setting is applied through."""
    if isinstance(setting, PrunedThenQuantized):
        return entries(setting.pruning) | entries(setting.quantization)
    return {setting.pruner if setting.kind == "prune" else setting.quantizer}


def test_every_registered_pruner_and_quantizer_is_reachable_from_a_study():
    """A new registry entry fails here until a study can ask for it."""
    reached = set().union(*(entries(s) for s in settings_of(EVERYTHING)))
    assert reached == set(PRUNERS.names()) | set(QUANTIZERS.names())


EACH = """
name: each
datasets: [digits]
models: [{family: cnn, channels: 8}]
prune:
  structured: {scope: [global], flops_remaining: [0.6], tolerance: 0.1}
  unstructured: {scope: [global], sparsity: [0.5]}
quantize: {bits: [4], activations: true, casts: [fp16], int8: true, with_pruning: true}
"""


def test_every_registered_pruner_and_quantizer_compresses_a_model():
    """One setting per registry entry (and the combination), applied through ``compress``."""
    pytest.importorskip("torchao")
    data = class_patterns((1, 8, 8), 4, 600, 40, noise=20)
    model = build_model("cnn", {"depth": 2, "channels": 8}, (1, 8, 8), 4)
    settings = oneshot_settings(parse_study(EACH))
    assert set().union(*(entries(s) for s in settings)) == set(PRUNERS.names()) | set(
        QUANTIZERS.names()
    )
    costs = {"size_bytes", "latency_ms", "params_after", "flops_after"}
    measured = {  # the metrics each kind of evaluation has always stored
        "structured-global 0.6": {"sparsity", "flops_remaining", "widths", "base_widths", *costs},
        "unstructured-global 0.5": {"sparsity_measured"},
        "weights-channel 4": set(),
        "weights+acts-channel 4": set(),
        "fp16 16": set(),
        "fp32 32": costs,
        "int8 8": costs,
        "weights-channel 4 after unstructured-global 0.5": {"sparsity_measured"},
        "weights+acts-channel 4 after unstructured-global 0.5": {"sparsity_measured"},
    }
    inputs = data.normalize(data.val_x[:2])
    assert sorted(s.label for s in settings) == sorted(measured)
    for setting in settings:
        result = compress(model, setting, data)
        with torch.no_grad():
            assert result.model.eval()(inputs).shape == (2, 4), setting.label
        assert set(result.metrics) == measured[setting.label], setting.label
        assert result.cpu_only == (setting.label in ("fp32 32", "int8 8"))


def test_measure_evaluates_convolutions_in_the_training_layout(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The layout training uses on a CPU (channels-last where the convolutions are wide
    enough, about twice as fast), a deployed model as it is; the numbers agree with a
    contiguous evaluation to float32 round-off."""
    pytest.importorskip("torchao")
    data = class_patterns((1, 8, 8), 4, 600, 40, noise=20)
    model = build_model("cnn", {"depth": 2, "channels": 8}, (1, 8, 8), 4)
    layouts: list[torch.memory_format] = []

    def recording(model: torch.nn.Module, data, **kwargs):
        layouts.append(kwargs["layout"])
        return evaluate(model, data, **kwargs)

    monkeypatch.setattr(compress_module, "evaluate", recording)
    for setting in oneshot_settings(parse_study(EACH)):
        compressed = compress(model, setting, data)
        measured = measure(compressed, data)
        trained_in = memory_format(compressed.model, torch.device("cpu"))
        expected = torch.contiguous_format if compressed.cpu_only else trained_in
        assert layouts[-1] == expected, setting.label
        contiguous = compressed.model.to(memory_format=torch.contiguous_format)
        loss, accuracy, _ = evaluate(contiguous, data)
        assert measured["val_acc"] == pytest.approx(accuracy, abs=1.5 / 40), setting.label
        assert measured["val_loss"] == pytest.approx(loss, rel=1e-3, abs=1e-4), setting.label
    assert torch.channels_last in layouts  # 8 channels: the unpruned settings
