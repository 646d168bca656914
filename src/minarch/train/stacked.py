"""SGD and AdamW over stacked members: leading dim K, per-member lr and weight decay.

The update is written out with the same operations, in the same order, as
``torch.optim.SGD`` (coupled decay, no dampening, not Nesterov) and
``torch.optim.AdamW`` (decoupled decay, eps 1e-8) on a CPU, with each member's
scalars computed in float64 and rounded to float32 once, as torch rounds a
Python float: fused member i's update is plain member i's, bit for bit.
"""

from __future__ import annotations

import torch
from torch import Tensor

from minarch.train.types import Recipe

ADAMW_BETA2 = 0.999
ADAMW_EPS = 1e-8


class StackedOptimizer:
    """One optimizer for a whole fleet; ``keep`` drops members that stopped."""

    def __init__(self, recipe: Recipe, lrs: Tensor, weight_decays: Tensor) -> None:
        """``lrs`` and ``weight_decays``: (K,) float64, the members' Python floats exactly."""
        self.recipe = recipe
        self.lrs = lrs
        self.weight_decays = weight_decays
        self.state: dict[str, dict[str, Tensor]] = {}
        self.steps = 0

    @torch.no_grad()
    def step(self, params: dict[str, Tensor], factor: float) -> None:
        """Apply and clear every ``.grad``, with lr = member lr × ``factor``."""
        self.steps += 1
        lrs = self.lrs * factor  # float64, as the plain loop's member.lr * factor
        for name, param in params.items():
            per_member = (-1,) + (1,) * (param.dim() - 1)
            state = self.state.setdefault(name, {})
            if self.recipe.optimizer == "sgd":
                self._sgd(param, param.grad, lrs.view(per_member), state)
            else:
                self._adamw(param, param.grad, lrs.view(per_member), state)
            param.grad = None

    def _sgd(self, param: Tensor, grad: Tensor, lr: Tensor, state: dict) -> None:
        # torch.optim.SGD: grad.add(param, alpha=wd); buf.mul_(m).add_(grad);
        # param.add_(buf, alpha=-lr). addcmul with a float32 scalar tensor rounds
        # as add with alpha does (one fused multiply-add), and in place on the
        # gradient (discarded after the step) it needs no fleet-sized temporary.
        decay = self.weight_decays.view(lr.shape).float()
        direction = grad.addcmul_(param, decay)
        if self.recipe.momentum > 0.0:
            buffer = state.get("momentum")
            if buffer is None:
                buffer = state["momentum"] = direction.clone()
            else:
                buffer.mul_(self.recipe.momentum).add_(direction)
            direction = buffer
        param.addcmul_(direction, lr.float(), value=-1.0)

    def _adamw(self, param: Tensor, grad: Tensor, lr: Tensor, state: dict) -> None:
        beta1 = self.recipe.momentum
        if not state:
            state["exp_avg"] = torch.zeros_like(param)
            state["exp_avg_sq"] = torch.zeros_like(param)
        exp_avg, exp_avg_sq = state["exp_avg"], state["exp_avg_sq"]
        param.mul_((1 - lr * self.weight_decays.view(lr.shape)).float())
        exp_avg.lerp_(grad, 1 - beta1)
        exp_avg_sq.mul_(ADAMW_BETA2).addcmul_(grad, grad, value=1 - ADAMW_BETA2)
        bias_correction1 = 1 - beta1**self.steps
        bias_correction2_sqrt = (1 - ADAMW_BETA2**self.steps) ** 0.5
        denom = (exp_avg_sq.sqrt() / bias_correction2_sqrt).add_(ADAMW_EPS)
        # addcdiv(exp_avg, denom, value=-step_size) computes (value * exp_avg) / denom.
        step = exp_avg * (-(lr / bias_correction1)).float()
        param.addcdiv_(step, denom)

    def snapshot(self) -> tuple[dict[str, dict[str, Tensor]], int]:
        """Copies of the state and the step count, for one ``restore``."""
        state = {name: {k: v.clone() for k, v in s.items()} for name, s in self.state.items()}
        return state, self.steps

    def restore(self, saved: tuple[dict[str, dict[str, Tensor]], int]) -> None:
        """Back to a ``snapshot``, whose tensors become the optimizer's own."""
        self.state, self.steps = saved

    def keep(self, index: Tensor) -> None:
        """Keep only the members at ``index`` (and their optimizer state)."""
        self.lrs = self.lrs[index]
        self.weight_decays = self.weight_decays[index]
        self.state = {
            name: {key: value[index] for key, value in state.items()}
            for name, state in self.state.items()
        }
