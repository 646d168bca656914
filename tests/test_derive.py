"""Compression settings and derived runs planned from the prune: and quantize: sections."""

from __future__ import annotations

import math

import pytest

from minarch.errors import SpecError
from minarch.execute import plan_study
from minarch.spec import expand, parse_study
from minarch.spec.derive import (
    derived_runs,
    prior,
    prune_settings,
    quant_settings,
    setting_key,
)

BASE = """
name: derive
datasets: [digits]
models: [{family: mlp, width: 8}]
training:
  epochs: 4
  lr: {log10: {center: -1, half_width: 0.2, step: 0.2}}
  weight_decay: [1.0e-4, 1.0e-3]
seeds: 2
"""


def study(extra: str = ""):
    return parse_study(BASE + extra)


def test_log10_grid_around_a_prior():
    s = study()
    assert [round(math.log10(v), 6) for v in s.training.lr.log10.values()] == [-1.2, -1.0, -0.8]
    with pytest.raises(SpecError, match=r"training\.lr.*start and stop, or center and half_width"):
        parse_study(BASE.replace("half_width: 0.2, ", ""))


def test_settings_cover_every_method_scope_and_target():
    s = study(
        """
prune:
  structured: {scope: [uniform, global], flops_remaining: [0.5, 0.25]}
  unstructured: {scope: [global, layer], sparsity: [0.9]}
quantize: {bits: [8, 2], granularity: [channel, tensor], casts: [fp16], with_pruning: true}
"""
    )
    prune = prune_settings(s.prune)
    assert [p.label for p in prune] == [
        "structured-uniform 0.5",
        "structured-uniform 0.25",
        "structured-global 0.5",
        "structured-global 0.25",
        "unstructured-global 0.9",
        "unstructured-layer 0.9",
    ]
    quant = quant_settings(s.quantize, s.prune)
    labels = [q.label for q in quant]
    assert labels[:5] == [
        "weights-channel 8",
        "weights-channel 2",
        "weights-tensor 8",
        "weights-tensor 2",
        "fp16 16",
    ]
    assert "weights-tensor 2 after unstructured-layer 0.9" in labels
    assert len(quant) == 4 + 1 + 4 * 2  # weights, casts, weights after each unstructured
    assert len({setting_key(q) for q in quant}) == len(quant)


def test_finetune_and_qat_children_start_from_every_run_at_a_fraction_of_its_lr():
    s = study(
        """
prune:
  unstructured: {sparsity: [0.5, 0.9]}
  pipelines: [oneshot, finetune]
  finetune: {epochs: 2, lr_factor: 0.5}
quantize: {bits: [8], qat: {bits: [4, 2], epochs: 1}}
"""
    )
    base = expand(s)
    children = derived_runs(s, base)
    finetune = [c for c in children if c.derived.pipeline == "finetune"]
    qat = [c for c in children if c.derived.pipeline == "qat"]
    assert len(finetune) == len(base) * 2 and len(qat) == len(base) * 2
    by_id = {b.id: b for b in base}
    for child in finetune:
        parent = by_id[child.derived.parent]
        assert child.training.epochs == 2 and child.training.warmup_epochs == 0
        assert child.training.lr == pytest.approx(parent.training.lr * 0.5)
        assert (child.seed, child.training.weight_decay) == (
            parent.seed,
            parent.training.weight_decay,
        )
        assert child.derived.base == parent.id
    assert {c.derived.setting.bits for c in qat} == {4, 2}
    assert all(c.training.epochs == 1 for c in qat)


def test_retrain_over_the_grid_prunes_the_run_at_the_prior_per_seed():
    s = study(
        """
prune:
  structured: {scope: [global], flops_remaining: [0.5]}
  pipelines: [retrain]
  retrain: {over: grid}
"""
    )
    assert prior(s) == pytest.approx((0.1, 1e-4))
    base = expand(s)
    children = derived_runs(s, base)
    assert len(children) == len(base)  # one retraining per grid point and seed
    by_id = {b.id: b for b in base}
    for child in children:
        parent = by_id[child.derived.parent]
        assert parent.training.lr == pytest.approx(0.1)
        assert parent.training.weight_decay == pytest.approx(1e-4)
        assert parent.seed == child.seed
        compared = by_id[child.derived.base]
        assert compared.training == child.training and compared.seed == child.seed
    assert len({c.pack_key for c in children}) == 2  # one pack per seed: the fused grid


def test_iterative_pruning_chains_rounds_with_compounding_sparsity():
    s = study(
        """
prune:
  pipelines: [imp]
  imp: {rounds: 3, rate: 0.2}
"""
    )
    base = expand(s)
    children = derived_runs(s, base)
    assert len(children) == 3 * len(base)
    first = base[0]
    chain, parent = [], first.id
    for child in children:
        if child.derived.parent == parent:
            chain.append(child)
            parent = child.id
    assert [c.derived.setting.sparsity for c in chain] == pytest.approx([0.2, 0.36, 0.488])
    assert all(c.derived.base == first.id and c.training == first.training for c in chain)


def test_plan_orders_parents_first_labels_variants_and_keeps_base_ids():
    plain = plan_study(study(), BASE)
    s = study(
        """
prune:
  structured: {scope: [uniform], flops_remaining: [0.5]}
  pipelines: [oneshot, retrain]
"""
    )
    the_plan = plan_study(s, BASE)
    base = [r for r in the_plan.runs if r.variant == "base"]
    assert [r.config.id for r in base] == [r.config.id for r in plain.runs]
    position = {r.config.id: i for i, r in enumerate(the_plan.runs)}
    derived = [r for r in the_plan.runs if r.variant != "base"]
    assert {r.variant for r in derived} == {"retrain structured-uniform 0.5"}
    for run in derived:
        assert position[run.config.derived.parent] < position[run.config.id]
        assert run.new_run().parent_id == run.config.derived.parent
        assert run.flops == round(base[0].flops * 0.5)


@pytest.mark.parametrize(
    ("section", "message"),
    [
        ("prune: {pipelines: [retrain], unstructured: {}}", "needs structured"),
        ("prune: {structured: {flops_remaining: [1.5]}}", "flops_remaining"),
        ("prune: {unstructured: {sparsity: [0.5, 0.5]}}", "must not repeat"),
        ("quantize: {bits: [1]}", r"quantize\.bits"),
        ("prune: {}", "structured and/or unstructured"),
    ],
)
def test_bad_compression_sections_name_the_field(section: str, message: str):
    with pytest.raises(SpecError, match=message) as info:
        parse_study(BASE + section)
    assert "\n" not in str(info.value)
