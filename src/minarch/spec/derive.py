"""Compression settings and derived runs: what the ``prune:`` and ``quantize:`` sections ask for.

A *setting* is a small JSON-able dict that says what is done to a trained
model (``{"kind": "prune", "method": "structured-global", "flops_remaining":
0.6, ...}``). One-shot settings become evaluations of a trained run; the
pipelines that train (fine-tune, retrain, iterative pruning, quantization-aware
fine-tuning) become derived runs whose configuration names their parent.
"""

from __future__ import annotations

import math
from collections import defaultdict
from typing import Any

from minarch.spec.expand import Derivation, RunConfig
from minarch.spec.identity import digest
from minarch.spec.schema import PruneSpec, QuantizeSpec, StudySpec, TrainingConfig, grid_values

Setting = dict[str, Any]


def prune_settings(spec: PruneSpec | None) -> list[Setting]:
    """One setting per (method, scope, target) of the ``prune:`` section."""
    if spec is None:
        return []
    settings: list[Setting] = []
    if spec.structured is not None:
        settings += [
            {
                "kind": "prune",
                "method": f"structured-{scope}",
                "flops_remaining": target,
                "residual": spec.structured.residual,
                # only when not the default, so existing settings keep their keys
                **({"tolerance": tol} if (tol := spec.structured.tolerance) != 0.01 else {}),
            }
            for scope in spec.structured.scope
            for target in spec.structured.flops_remaining
        ]
    if spec.unstructured is not None:
        settings += [
            {"kind": "prune", "method": f"unstructured-{scope}", "sparsity": target}
            for scope in spec.unstructured.scope
            for target in spec.unstructured.sparsity
        ]
    return settings


def quant_settings(spec: QuantizeSpec | None, prune: PruneSpec | None = None) -> list[Setting]:
    """Post-training quantization settings: bit widths x granularities, casts, int8."""
    if spec is None:
        return []
    parts = ["weights", "weights+acts"] if spec.activations else ["weights"]
    calibration = spec.calibration.model_dump()
    weights = [
        {
            "kind": "quant",
            "method": f"{part}-{granularity}",
            "bits": bits,
            "fold_bn": spec.fold_batchnorm,
            **({"calibration": calibration} if part == "weights+acts" else {}),
        }
        for part in parts
        for granularity in spec.granularity
        for bits in spec.bits
    ]
    settings = list(weights)
    settings += [{"kind": "quant", "method": cast, "bits": 16} for cast in spec.casts]
    if spec.int8:
        settings += [
            {"kind": "quant", "method": "fp32", "bits": 32},
            {
                "kind": "quant",
                "method": "int8",
                "bits": 8,
                "calibration": spec.calibration.model_dump(),
            },
        ]
    if spec.with_pruning:
        unstructured = [s for s in prune_settings(prune) if s["method"].startswith("unstructured")]
        settings += [{**w, "after": u} for u in unstructured for w in weights]
    return settings


def oneshot_settings(study: StudySpec) -> list[Setting]:
    """What each trained run of the study is measured under without training it."""
    oneshot = study.prune is not None and "oneshot" in study.prune.pipelines
    return [
        *(prune_settings(study.prune) if oneshot else []),
        *quant_settings(study.quantize, study.prune),
    ]


def setting_key(setting: Setting) -> str:
    return digest(setting)


def setting_label(setting: Setting) -> str:
    """Short and readable: 'structured-global 0.6', 'unstructured-layer 0.9', 'fp16 16'."""
    if setting["kind"] == "prune":
        target = setting.get("flops_remaining", setting.get("sparsity"))
        return f"{setting['method']} {target:g}"
    label = f"{setting['method']} {setting['bits']}" if "bits" in setting else setting["method"]
    if "after" in setting:
        label += f" after {setting_label(setting['after'])}"
    return label


def derived_runs(study: StudySpec, base: list[RunConfig]) -> list[RunConfig]:
    """The training pipelines of ``prune:`` and ``quantize:``, each child after its parent."""
    runs: list[RunConfig] = []
    prune, quantize = study.prune, study.quantize
    if prune is not None:
        structured = [s for s in prune_settings(prune) if s["method"].startswith("structured")]
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
            if setting["method"].startswith("weights-")  # QAT learns the weights only
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
        setting = {
            "kind": "prune",
            "method": f"unstructured-{prune.imp.scope}",
            "sparsity": round(1 - (1 - prune.imp.rate) ** round_, 10),
            "round": round_,
            "rewind": "init",
        }
        parent = _child(parent, "imp", setting, run.training, base=run)
        chain.append(parent)
    return chain


def _retrain_over_grid(
    study: StudySpec, base: list[RunConfig], structured: list[Setting]
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
