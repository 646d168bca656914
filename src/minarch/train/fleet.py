"""K models of one architecture held as stacked tensors, with one forward for the fleet.

Fused (``batched=False``): the members run one after another, each through
the plain model's own calls on its slices of the stacks: batched or widened,
a matmul or a convolution rounds differently (libraries pick kernels by
shape), and a fused member must give plain's bits. Batched: a chain of linear
layers (an MLP) runs as explicit matmuls, and when every member sees the same
batch its first layer is ONE matmul against all members' weights side by
side; any other model runs under ``torch.func.vmap`` of ``functional_call``,
which turns convolutions into grouped convolutions. BatchNorm needs no
special case: its running statistics are stacked buffers, and both forwards
update each member's slice in place.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import torch
import torch.fx
import torch.nn.functional as F
from torch import Tensor, nn
from torch.func import functional_call, vmap

from minarch.train.layout import in_layout

# vmap's warning for an op without a batching rule (the ViT's CPU attention kernel),
# which it then runs member by member. Not shown to users: for the small ViTs that
# train batched, that loop measured as fast as attention written out in ops that
# have batching rules (benchmarks/RESULTS.md, "Batched attention"). The filter costs
# about 2 µs a forward, against steps of milliseconds.
_NO_BATCHING_RULE = "There is a performance drop because we have not yet implemented the batching"

# Modules a linear chain may contain besides Linear: parameter-free and elementwise.
_ELEMENTWISE = (nn.ReLU, nn.GELU, nn.Tanh, nn.Sigmoid, nn.Identity)


def linear_chain(model: nn.Module) -> list[tuple[str, nn.Module]] | None:
    """The model's layers if its forward is exactly Flatten? → (Linear | elementwise)*, else None.

    Decided from the traced graph, not from class names, so a model that only
    looks like an MLP (a skip connection, a reshape) takes the generic path.
    Traced in both modes, since fx fixes Python branches on ``self.training``.
    """
    training, chains = model.training, []
    for mode in (True, False):
        model.train(mode)
        chains.append(_traced_chain(model))
    model.train(training)
    return chains[0] if chains[0] is not None and chains[0] == chains[1] else None


def _traced_chain(model: nn.Module) -> list[tuple[str, nn.Module]] | None:
    try:
        graph = torch.fx.symbolic_trace(model).graph
    except Exception:  # anything fx cannot trace simply takes the generic path
        return None
    placeholder, *calls, output = graph.nodes
    previous = placeholder
    layers: list[tuple[str, nn.Module]] = []
    for node in calls:
        if node.op != "call_module" or node.args != (previous,) or node.kwargs:
            return None
        module = model.get_submodule(node.target)
        flatten_first = isinstance(module, nn.Flatten) and not layers
        if flatten_first and (module.start_dim, module.end_dim) != (1, -1):
            return None
        if not (flatten_first or isinstance(module, (nn.Linear, *_ELEMENTWISE))):
            return None
        layers.append((node.target, module))
        previous = node
    if output.args != (previous,) or not any(isinstance(m, nn.Linear) for _, m in layers):
        return None
    return layers


class Fleet:
    """Stacked parameters (leaves with grad), stacked buffers and the fleet's forward."""

    def __init__(
        self,
        models: Sequence[nn.Module],
        device: torch.device,
        *,
        batched: bool,
        per_lane_inputs: bool = False,
        layout: torch.memory_format = torch.contiguous_format,
    ) -> None:
        """``batched``: one forward for the fleet, else member after member.
        ``per_lane_inputs``: a shared batch is copied to every member, so the
        kernels see the same shapes whether or not members share their batch.
        ``layout``: member after member, the memory format of each member's
        4-d weights and inputs (the plain loop's, ``plain.memory_format``)."""
        template = models[0]
        self.keys = list(template.state_dict())
        named = [dict(m.named_parameters()) for m in models]
        self.params = {
            name: torch.stack([n[name].detach() for n in named]).to(device).requires_grad_()
            for name in named[0]
        }
        buffers = [dict(m.named_buffers()) for m in models]
        self.buffers = {
            name: torch.stack([b[name] for b in buffers]).to(device) for name in buffers[0]
        }
        self.chain = linear_chain(template)
        self.flatten_first = self.chain is not None and isinstance(self.chain[0][1], nn.Flatten)
        self.batched = batched
        self.per_lane_inputs = per_lane_inputs
        self.layout = layout
        # The stacked tensors replace every parameter and buffer, so the skeleton holds none.
        self.skeleton = template.to("meta")

    def __len__(self) -> int:
        return next(iter(self.params.values())).shape[0]

    def logits(self, x: Tensor, *, shared: bool, train: bool) -> Tensor:
        """(K, B, classes) logits of one batch seen by every member (``shared``) or of
        (K, B, ...) batches, one per member."""
        self.skeleton.train(train)
        if shared and self.per_lane_inputs:
            x, shared = x.expand(len(self), *x.shape), False
        if not self.batched:
            return self._member_logits(x, shared)
        if self.chain is not None:
            return self._chain_logits(x, shared)

        def member(params: dict, buffers: dict, inputs: Tensor) -> Tensor:
            return functional_call(self.skeleton, (params, buffers), (inputs,))

        in_dims = (0, 0, None if shared else 0)
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=_NO_BATCHING_RULE, category=UserWarning)
            return vmap(member, in_dims=in_dims)(self.params, self.buffers, x)

    def _member_logits(self, x: Tensor, shared: bool) -> Tensor:
        """Member after member, each the plain model's calls on its slices of the stacks.

        BatchNorm updates its running statistics in place, so in the stacked buffers.
        A chain takes its own path when its Linear layers see 2-d batches per member,
        except under autocast, which that path's explicit matmuls would bypass.
        """
        chain_shaped = x.dim() == (2 if shared else 3) or self.flatten_first
        if self.chain is not None and chain_shaped and not torch.is_autocast_enabled(x.device.type):
            return self._member_chain_logits(x, shared)
        params = {name: p.unbind(0) for name, p in self.params.items()}
        buffers = {name: b.unbind(0) for name, b in self.buffers.items()}
        logits = []
        if self.layout != torch.contiguous_format:
            params = {name: [in_layout(p, self.layout) for p in v] for name, v in params.items()}
        for k, inputs in enumerate([x] * len(self) if shared else x.unbind(0)):
            inputs = in_layout(inputs, self.layout)
            tensors = {name: v[k] for name, v in params.items()}
            tensors |= {name: v[k] for name, v in buffers.items()}
            logits.append(functional_call(self.skeleton, tensors, (inputs,)))
        return torch.stack(logits)

    def _member_chain_logits(self, x: Tensor, shared: bool) -> Tensor:
        """A chain without ``functional_call``'s overhead and with no copies of the gradients."""
        h = x
        for name, module in self.chain:
            if isinstance(module, nn.Flatten):
                h = h.flatten(1 if shared else 2)
            elif isinstance(module, nn.Linear):
                h = MemberLinear.apply(
                    h, self.params[f"{name}.weight"], self.params.get(f"{name}.bias")
                )
                shared = False
            elif shared:
                h = module(h)
            else:  # on each member's slice: a vectorised kernel may round a tail differently
                h = torch.stack([module(member) for member in h.unbind(0)])
        return h

    def _chain_logits(self, x: Tensor, shared: bool) -> Tensor:
        h = x
        for name, module in self.chain:
            if isinstance(module, nn.Flatten):
                h = h.flatten(1 if shared else 2)
            elif isinstance(module, nn.Linear):
                weight, bias = self.params[f"{name}.weight"], self.params.get(f"{name}.bias")
                if shared:
                    k, out, features = weight.shape
                    flat_bias = None if bias is None else bias.reshape(k * out)
                    h = F.linear(h, weight.reshape(k * out, features), flat_bias)
                    h = h.view(h.shape[0], k, out).transpose(0, 1)
                    shared = False
                else:
                    h = torch.bmm(h, weight.transpose(1, 2))
                    h = h if bias is None else h + bias.unsqueeze(1)
            else:
                h = module(h)
        return h

    def member_state(self, index: int) -> dict[str, Tensor]:
        """Member ``index``'s state dict on the CPU, keys in the model's own order."""
        tensors = self.params | self.buffers
        return {key: tensors[key][index].detach().to("cpu", copy=True) for key in self.keys}

    def snapshot(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Copies of the parameters and buffers, for one ``restore``."""
        params = {name: p.detach().clone() for name, p in self.params.items()}
        return params, {name: b.clone() for name, b in self.buffers.items()}

    def restore(self, saved: tuple[dict[str, Tensor], dict[str, Tensor]]) -> None:
        """Back to a ``snapshot``, whose tensors become the fleet's own."""
        params, buffers = saved
        self.params = {name: p.requires_grad_() for name, p in params.items()}
        self.buffers = buffers

    def keep(self, index: Tensor) -> None:
        """Keep only the members at ``index``; parameters become new leaves."""
        self.params = {n: p.detach()[index].requires_grad_() for n, p in self.params.items()}
        self.buffers = {n: b[index] for n, b in self.buffers.items()}


class MemberLinear(torch.autograd.Function):
    """``F.linear`` on each member's slice: (B, in) shared or (K, B, in) inputs, (K, B, out) out.

    Forward and backward make the very calls autograd makes for one
    ``nn.Linear`` on a 2-d input (``addmm``; then grad^T @ input, grad @ weight
    and the bias gradient's sum over the batch), each member's written straight
    into its slice of the stacked result: a member's bits are the plain loop's,
    and no per-member gradient is copied into the stack afterwards.
    """

    @staticmethod
    def forward(ctx, h: Tensor, weight: Tensor, bias: Tensor | None) -> Tensor:
        ctx.save_for_backward(h, weight)
        ctx.has_bias = bias is not None
        inputs = [h] * len(weight) if h.dim() == 2 else h.unbind(0)
        out = h.new_empty(len(weight), inputs[0].shape[0], weight.shape[1])
        for k, member in enumerate(inputs):
            if bias is None:
                torch.mm(member, weight[k].t(), out=out[k])
            else:
                torch.addmm(bias[k], member, weight[k].t(), out=out[k])
        return out

    @staticmethod
    def backward(ctx, grad: Tensor) -> tuple[Tensor | None, Tensor, Tensor | None]:
        h, weight = ctx.saved_tensors
        grad = grad.contiguous()
        inputs = [h] * len(weight) if h.dim() == 2 else h.unbind(0)
        grad_weight = torch.empty_like(weight)
        grad_bias = weight.new_empty(weight.shape[:2]) if ctx.has_bias else None
        # A shared input is the data, which takes no gradient.
        grad_h = torch.empty_like(h) if ctx.needs_input_grad[0] and h.dim() == 3 else None
        for k, member in enumerate(inputs):
            torch.mm(grad[k].t(), member, out=grad_weight[k])
            if grad_bias is not None:
                torch.sum(grad[k], dim=0, out=grad_bias[k])
            if grad_h is not None:
                torch.mm(grad[k], weight[k], out=grad_h[k])
        return grad_h, grad_weight, grad_bias
