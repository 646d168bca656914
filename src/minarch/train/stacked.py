"""SGD and AdamW over stacked members: leading dim K, per-member lr and weight decay.

The update is written out with the same operations, in the same order, as
``torch.optim.SGD`` (coupled decay, no dampening, not Nesterov) and
``torch.optim.AdamW`` (decoupled decay, eps 1e-8), so fused member i follows
the plain loop's member i up to float rounding.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from minarch.train.types import Recipe

ADAMW_BETA2 = 0.999
ADAMW_EPS = 1e-8


class StackedOptimizer:
    """One optimizer for a whole fleet; ``keep`` drops members that stopped."""

    def __init__(self, recipe: Recipe, lrs: Tensor, weight_decays: Tensor) -> None:
        self.recipe = recipe
        self.lrs = lrs
        self.weight_decays = weight_decays
        self.state: dict[str, dict[str, Tensor]] = {}
        self.steps = 0

    @torch.no_grad()
    def step(self, params: dict[str, Tensor], factor: float) -> None:
        """Apply and clear every ``.grad``, with lr = member lr × ``factor``."""
        self.steps += 1
        lrs = self.lrs * factor
        for name, param in params.items():
            per_member = (-1,) + (1,) * (param.dim() - 1)
            lr, decay = lrs.view(per_member), self.weight_decays.view(per_member)
            state = self.state.setdefault(name, {})
            if self.recipe.optimizer == "sgd":
                self._sgd(param, param.grad, lr, decay, state)
            else:
                self._adamw(param, param.grad, lr, decay, state)
            param.grad = None

    def _sgd(self, param: Tensor, grad: Tensor, lr: Tensor, decay: Tensor, state: dict) -> None:
        # In place on the gradient (discarded after the step): no fleet-sized temporaries.
        direction = grad.addcmul_(param, decay)
        if self.recipe.momentum > 0.0:
            buffer = state.get("momentum")
            if buffer is None:
                buffer = state["momentum"] = direction.clone()
            else:
                buffer.mul_(self.recipe.momentum).add_(direction)
            direction = buffer
        param.addcmul_(direction, lr, value=-1.0)

    def _adamw(self, param: Tensor, grad: Tensor, lr: Tensor, decay: Tensor, state: dict) -> None:
        beta1 = self.recipe.momentum
        if not state:
            state["exp_avg"] = torch.zeros_like(param)
            state["exp_avg_sq"] = torch.zeros_like(param)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        param.mul_(1.0 - lr * decay)
        exp_avg.lerp_(grad, 1.0 - beta1)
        exp_avg_sq.mul_(ADAMW_BETA2).addcmul_(grad, grad, value=1.0 - ADAMW_BETA2)
        correction1 = 1.0 - beta1**self.steps
        correction2_sqrt = math.sqrt(1.0 - ADAMW_BETA2**self.steps)
        denom = exp_avg_sq.sqrt().div_(correction2_sqrt).add_(ADAMW_EPS)
        param.addcdiv_(exp_avg, denom.div_(lr / correction1), value=-1.0)

    def keep(self, index: Tensor) -> None:
        """Keep only the members at ``index`` (and their optimizer state)."""
        self.lrs = self.lrs[index]
        self.weight_decays = self.weight_decays[index]
        self.state = {
            name: {key: value[index] for key, value in state.items()}
            for name, state in self.state.items()
        }
