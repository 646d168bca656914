"""Compression settings and derived runs: what the ``prune:`` and ``quantize:`` sections ask for.

A setting (spec/settings.py) says what is done to a trained model, say
``StructuredPrune("global", 0.6, "prune")``. One-shot settings become evaluations of a
trained run; the pipelines that train (fine-tune, retrain, iterative pruning,
quantization-aware fine-tuning) become derived runs whose configuration names
their parent.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from minarch.spec.expand import Derivation, RunConfig
from minarch.spec.identity import digest
from minarch.spec.schema import PruneSpec, QuantizeSpec, StudySpec, TrainingConfig, grid_values
from minarch.spec.settings import (
    Cast,
    Float32,
    ImpRound,
    Int8,
    PrunedThenQuantized,
    PruneSetting,
    QuantSetting,
    Setting,
    StructuredPrune,
    UnstructuredPrune,
    WeightQuant,
)


def prune_settings(spec: PruneSpec | None) -> list[PruneSetting]:
    """One setting per (method, scope, target) of the ``prune:`` section."""
    if spec is None:
        return []
    settings: list[PruneSetting] = []
    if (structured := spec.structured) is not None:
        settings += [
            StructuredPrune(
                scope,
                target,
                structured.residual,
                structured.tolerance,
                structured.criterion,
            )
            for scope in structured.scope
            for target in structured.flops_remaining
        ]
    if spec.unstructured is not None:
        settings += [
            UnstructuredPrune(scope, target)
            for scope in spec.unstructured.scope
            for target in spec.unstructured.sparsity
        ]
    return settings


def quant_settings(spec: QuantizeSpec | None, prune: PruneSpec | None = None) -> list[QuantSetting]:
    """Post-training quantization settings: bit widths x granularities, casts, int8."""
    if spec is None:
        return []
    calibrations = [None, spec.calibration] if spec.activations else [None]
    weights = [
        WeightQuant(bits, granularity, spec.fold_batchnorm, calibration)
        for calibration in calibrations
        for granularity in spec.granularity
        for bits in spec.bits
    ]
    settings: list[QuantSetting] = [*weights, *(Cast(dtype) for dtype in spec.casts)]
    if spec.int8:
        settings += [Float32(), Int8(spec.calibration)]
    if spec.with_pruning:
        unstructured = [s for s in prune_settings(prune) if isinstance(s, UnstructuredPrune)]
        settings += [PrunedThenQuantized(u, w) for u in unstructured for w in weights]
    return settings


def oneshot_settings(study: StudySpec) -> list[Setting]:
    """What each trained run of the study is measured under without training it."""
    oneshot = study.prune is not None and "oneshot" in study.prune.pipelines
    return [
        *(prune_settings(study.prune) if oneshot else []),
        *quant_settings(study.quantize, study.prune),
    ]


def setting_key(setting: Setting) -> str:
    """The digest of the setting's canonical dict: one evaluation per (run, key)."""
    return digest(setting.to_dict())


def derived_runs(study: StudySpec, base: list[RunConfig]) -> list[RunConfig]:
    """The training pipelines of ``prune:`` and ``quantize:``, each child after its parent."""
    runs: list[RunConfig] = []
    prune, quantize = study.prune, study.quantize
    if prune is not None:
        structured = [s for s in prune_settings(prune) if isinstance(s, StructuredPrune)]
        if "finetune" in prune.pipelines:
            runs += [
                _child(run, "finetune", s, _short(run.training, prune.finetune))
                for run in base
                for s in prune_settings(prune)
            ]
        if "retrain" in prune.pipelines and prune.retrain.over == "parent":
            runs += [_child(run, "retrain", s, run.training) for run in base for s in structured]
        if "retrain" in prune.pipelines and prune.retrain.over == "grid":
            runs += _retrain_over_grid(study, base, structured)
        if "imp" in prune.pipelines:
            runs += [child for run in base for child in _imp_chain(run, prune)]
    if quantize is not None and quantize.qat is not None:
        runs += [
            _child(run, "qat", setting, _short(run.training, quantize.qat))
            for run in base
            for setting in quant_settings(quantize.model_copy(update={"bits": quantize.qat.bits}))
            if isinstance(setting, WeightQuant) and not setting.activations  # weights only
        ]
    return runs


def _child(
    parent: RunConfig,
    pipeline: str,
    setting: Setting,
    training: TrainingConfig,
    base: RunConfig | None = None,
) -> RunConfig:
    root = base or parent
    derivation = Derivation(parent=parent.id, pipeline=pipeline, setting=setting, base=root.id)
    return RunConfig(parent.dataset, parent.model, training, parent.seed, derivation)


def _short(training: TrainingConfig, stage: Any) -> TrainingConfig:
    """A fine-tuning recipe: the study's, shorter, at a fraction of the parent's lr, no warmup."""
    return training.model_copy(
        update={
            "epochs": stage.epochs,
            "lr": training.lr * stage.lr_factor,
            "warmup_epochs": 0.0,
        }
    )


def _imp_chain(run: RunConfig, prune: PruneSpec) -> list[RunConfig]:
    """Rounds of iterative magnitude pruning: round k keeps (1 - rate)^k of the weights."""
    chain, parent = [], run
    for round_ in range(1, prune.imp.rounds + 1):
        sparsity = round(1 - (1 - prune.imp.rate) ** round_, 10)
        setting = ImpRound(prune.imp.scope, sparsity, round_)
        parent = _child(parent, "imp", setting, run.training, base=run)
        chain.append(parent)
    return chain


def _retrain_over_grid(
    study: StudySpec, base: list[RunConfig], structured: list[StructuredPrune]
) -> list[RunConfig]:
    """The thesis's study: prune the run at the prior, retrain the result at every grid point.

    Runs are grouped by (dataset, model, seed); the parent of a group is its
    run nearest the prior in log10 space (the prior defaults to the centre of
    the study's own lr and wd grids, so extending the grid never moves it).
    """
    prior_lr, prior_wd = prior(study)
    groups: dict[tuple, list[RunConfig]] = defaultdict(list)
    for run in base:
        groups[(run.dataset, run.model, run.seed)].append(run)
    runs = []
    for group in groups.values():
        parent = min(
            group,
            key=lambda r: (
                abs(math.log10(r.training.lr) - math.log10(prior_lr))
                + abs(_log_wd(r.training.weight_decay) - _log_wd(prior_wd)),
                r.training.lr,
                r.training.weight_decay,
            ),
        )
        runs += [
            _child(parent, "retrain", s, run.training, base=run)
            for s in structured
            for run in group
        ]
    return runs


def prior(study: StudySpec) -> tuple[float, float]:
    """The (lr, weight decay) the study's hyperparameter space is centred on."""
    given = study.hpspace.prior
    lrs = sorted(grid_values(study.training.lr))
    wds = sorted(grid_values(study.training.weight_decay))
    return given.get("lr", lrs[(len(lrs) - 1) // 2]), given.get(
        "weight_decay", wds[(len(wds) - 1) // 2]
    )


def _log_wd(value: float) -> float:
    return math.log10(value) if value > 0 else -12.0
