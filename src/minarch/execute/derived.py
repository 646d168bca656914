"""How a derived run's pack gets its starting model from the trained parent.

- finetune: the parent's weights, pruned; zeros stay zero while training.
- retrain: the parent's pruned architecture, freshly He-initialised per member.
- imp: the parent's weights pruned further, rewound to the member's initial weights.
- qat: the parent's weights with fake-quantized forward passes (straight-through).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn

from minarch.data import Dataset
from minarch.execute.compress import compress, load_trained
from minarch.models import build_model
from minarch.models.init import initialise
from minarch.prune import imp_step, keep_pruned
from minarch.quant import finish_qat, prepare_qat, scheme_of
from minarch.spec import RunConfig
from minarch.spec.settings import ImpRound, UnstructuredPrune, WeightQuant
from minarch.store import Store


@dataclass(frozen=True)
class Start:
    """What ``train_pack`` needs for a pack, and how to turn a trained member into a model."""

    make_model: Callable[[torch.Generator], nn.Module]
    engine: str  # masked and fake-quantized models train in the plain loop
    finished: Callable[[dict[str, torch.Tensor]], nn.Module]


def ordinary_start(config: RunConfig, data: Dataset) -> Start:
    info = data.info

    def make_model(generator: torch.Generator | None = None) -> nn.Module:
        return build_model(
            config.model.family,
            config.model.config,
            info.input_shape,
            info.num_classes,
            generator=generator,
        )

    return Start(make_model, "auto", lambda state: _loaded(make_model(), state))


def derived_start(config: RunConfig, parent: RunConfig, store: Store, data: Dataset) -> Start:
    """The starting model of a derived pack (every member shares its parent).

    Models are built on the member generator's device, as ordinary ones are.
    """
    derived = config.derived
    assert derived is not None
    trained = load_trained(parent, store, data)
    setting = derived.setting
    if derived.pipeline == "qat":
        assert isinstance(setting, WeightQuant)
        template = prepare_qat(trained, scheme_of(setting))
        return Start(
            lambda generator: copy.deepcopy(template),
            "plain",
            lambda state: finish_qat(_loaded(copy.deepcopy(template), state)),
        )
    if derived.pipeline == "imp":
        assert isinstance(setting, ImpRound)
        fresh = ordinary_start(config, data).make_model

        def rewound(generator: torch.Generator) -> nn.Module:
            initial = fresh(generator).state_dict()
            rate = 1 - (1 - setting.sparsity) / (1 - _parent_sparsity(parent))
            parent_model = trained.to(generator.device)
            return keep_pruned(imp_step(parent_model, initial, rate=rate, scope=setting.scope))

        template = fresh(torch.Generator())
        return Start(rewound, "plain", lambda state: _loaded(copy.deepcopy(template), state))
    pruned = compress(trained, setting, data).model
    if derived.pipeline == "retrain":

        def fresh_pruned(generator: torch.Generator) -> nn.Module:
            model = copy.deepcopy(pruned).to(generator.device)
            initialise(model, generator)
            return model

        return Start(fresh_pruned, "auto", lambda state: _loaded(copy.deepcopy(pruned), state))
    masked = isinstance(setting, UnstructuredPrune)
    return Start(
        lambda generator: keep_pruned(copy.deepcopy(pruned)) if masked else copy.deepcopy(pruned),
        "plain" if masked else "auto",
        lambda state: _loaded(copy.deepcopy(pruned), state),
    )


def _parent_sparsity(parent: RunConfig) -> float:
    derived = parent.derived
    return derived.setting.sparsity if derived and isinstance(derived.setting, ImpRound) else 0.0


def _loaded(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    model.load_state_dict(state)
    return model
