"""Real int8 inference on x86 CPUs: torchao's PT2E flow, lowered to oneDNN int8 kernels.

The model is exported with a free batch dimension, annotated by torchao's
``X86InductorQuantizer`` (configured to match the simulated scheme
``QuantScheme(8, activations=8)``: weights symmetric per channel at ±127,
activations affine uint8 per tensor, both min/max calibrated), converted, and
lowered by Inductor's freezing passes, which replace each quantize/dequantize
pattern by a oneDNN ``qconv``/``qlinear`` call on prepacked int8 weights. The
result runs eagerly: no C++ compiler, no ``torch.compile`` (which took 40-60 s
per model here and was not faster). torchao's XNNPACK quantizer is not used:
it ships only as a test utility, and its int8 graph is fast only under
ExecuTorch, not in PyTorch.
"""

from __future__ import annotations

import copy
import logging
import types
import warnings
from collections.abc import Callable

import torch
from torch import nn

from minarch.errors import QuantError
from minarch.quant.acts import CALIBRATION_BATCH
from minarch.quant.fold import fold_batchnorm
from minarch.quant.registry import QUANTIZERS, Calibrate, Quantizer
from minarch.quant.weights import LAYERS
from minarch.spec.settings import Float32, Int8

TORCHAO = "torchao==0.18.0"
# Lowered int8 kernels; a layer left out of them computes in float.
_INT8_OPS = ("onednn.qconv", "onednn.qlinear")


def _torchao() -> tuple[Callable, Callable, object]:
    """prepare_pt2e, convert_pt2e and the configured quantizer, imported on first use.

    torchao warns on import about CUDA-only kernels it cannot load on a CPU
    build and about deprecated torch APIs; irrelevant here, so silenced.
    """
    noisy = [logging.getLogger("torchao"), logging.getLogger("torch.utils._pytree")]
    levels = [logger.level for logger in noisy]
    for logger in noisy:
        logger.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            from torchao.quantization.pt2e import MinMaxObserver, PerChannelMinMaxObserver
            from torchao.quantization.pt2e.quantize_pt2e import convert_pt2e, prepare_pt2e
            from torchao.quantization.pt2e.quantizer import QuantizationConfig, QuantizationSpec
            from torchao.quantization.pt2e.quantizer.x86_inductor_quantizer import (
                X86InductorQuantizer,
            )
    except ImportError as error:
        raise QuantError(
            f"int8: torchao is not installed ({error}); install it with "
            f"pip install 'minarch[int8]' ({TORCHAO})"
        ) from error
    finally:
        for logger, level in zip(noisy, levels, strict=True):
            logger.setLevel(level)
    eps = torch.finfo(torch.float32).eps
    activations = QuantizationSpec(
        dtype=torch.uint8,
        quant_min=0,
        quant_max=255,
        qscheme=torch.per_tensor_affine,
        observer_or_fake_quant_ctr=MinMaxObserver.with_args(eps=eps),
    )
    weights = QuantizationSpec(
        dtype=torch.int8,
        quant_min=-127,
        quant_max=127,
        qscheme=torch.per_channel_symmetric,
        ch_axis=0,
        observer_or_fake_quant_ctr=PerChannelMinMaxObserver.with_args(eps=eps),
    )
    quantizer = X86InductorQuantizer()
    quantizer.set_global(QuantizationConfig(activations, activations, weights, None, False))
    return prepare_pt2e, convert_pt2e, quantizer


def _lower(model: torch.fx.GraphModule, example: tuple, dynamic: tuple) -> torch.fx.GraphModule:
    """torchao's ``lower_pt2e_quantized_to_x86``, but keeping the batch dimension free."""
    from torch._export.utils import _is_cia_op
    from torch._inductor.constant_folding import constant_fold
    from torch._inductor.fx_passes.freezing_patterns import freezing_passes

    # Decompose only the ops PyTorch marks as composite, so the patterns stay matchable.
    table = {op: f for op, f in torch.export.default_decompositions().items() if _is_cia_op(op)}
    exported = torch.export.export(model, example, dynamic_shapes=dynamic, strict=True)
    lowered = exported.run_decompositions(table).module()
    graph = lowered.graph
    for node in list(graph.nodes):
        if node.target == torch.ops.aten.t.default:  # the patterns expect permute
            with graph.inserting_before(node):
                permuted = graph.call_function(
                    torch.ops.aten.permute.default, args=(node.args[0], [1, 0])
                )
            node.replace_all_uses_with(permuted)
            graph.erase_node(node)
    graph.lint()
    lowered.recompile()
    freezing_passes(lowered, example)
    constant_fold(lowered)
    return lowered


def _dense_state(module: nn.Module, state: dict, prefix: str, metadata: dict) -> None:
    # Prepacked oneDNN weights are opaque tensors torch.save cannot write; their
    # dense int8 copies can, so serialized_size measures the int8 model.
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and value.is_mkldnn:
            state[key] = value.to_dense()


def convert_int8(
    model: nn.Module, input_shape: tuple[int, ...], calibration: torch.Tensor
) -> nn.Module:
    """A CPU int8 copy of ``model``: BN folded, int8 weights per channel, uint8 activations.

    ``calibration`` is a batch of normalized inputs (N >= 2, *input_shape) that
    sets the activation ranges. The result takes any batch size; its state dict
    holds the int8 weights (for ``serialized_size``) but cannot be loaded back:
    convert again instead. Raises ``QuantError`` when torchao is missing or a
    layer would not run as int8 (ViT: oneDNN's int8 Linear takes 2-D inputs only).
    """
    name = type(model).__name__
    shape = tuple(input_shape)
    if tuple(calibration.shape[1:]) != shape or len(calibration) < 2:
        raise QuantError(
            f"int8: calibration has shape {tuple(calibration.shape)}, expected (N >= 2, *{shape})"
        )
    prepare_pt2e, convert_pt2e, quantizer = _torchao()
    try:
        folded = fold_batchnorm(model).cpu()
    except QuantError as error:
        raise QuantError(f"int8: {name} not supported: {error}") from error
    layers = sum(isinstance(m, LAYERS) for m in folded.modules())
    calibration = calibration.detach().float().cpu()
    example = (calibration[:2],)
    dynamic = ({0: torch.export.Dim("batch", min=1)},)
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", FutureWarning)
        try:
            exported = torch.export.export(folded, example, dynamic_shapes=dynamic).module()
        except Exception as error:  # export's errors are many and version-specific
            reason = str(error).strip().splitlines()[0]
            raise QuantError(
                f"int8: {name} not supported: torch.export failed: {reason}"
            ) from error
        prepared = prepare_pt2e(exported, quantizer)
        for batch in calibration.split(CALIBRATION_BATCH):
            prepared(batch)
        lowered = _lower(convert_pt2e(prepared), example, dynamic)
    kernels = sum(
        node.op == "call_function" and str(node.target).startswith(_INT8_OPS)
        for node in lowered.graph.nodes
    )
    if kernels < layers:
        raise QuantError(
            f"int8: {name} not supported: {layers - kernels} of {layers} Conv/Linear layers "
            "would still compute in float (oneDNN int8 kernels take 2-D Linear inputs and "
            "1-D/2-D convolutions)"
        )
    lowered.register_state_dict_post_hook(_dense_state)
    # torch.export's modules refuse train()/eval(); this graph was exported in eval
    # mode with BN folded, so the mode is only a flag and evaluation loops still work.
    lowered.train = types.MethodType(nn.Module.train, lowered)
    lowered.eval = types.MethodType(nn.Module.eval, lowered)
    return lowered.eval()


def _apply(
    model: nn.Module, setting: Int8, input_shape: tuple[int, ...], calibrate: Calibrate
) -> nn.Module:
    calibration = calibrate(setting.calibration.batches * CALIBRATION_BATCH)
    return convert_int8(model.cpu(), input_shape, calibration.cpu())


def _reference(
    model: nn.Module, setting: Float32, input_shape: tuple[int, ...], calibrate: Calibrate
) -> nn.Module:
    """The float model as it is: what int8 is compared with, measured the same way."""
    return copy.deepcopy(model)


QUANTIZERS.register(Int8.quantizer, Quantizer(_apply, deployed=True))
QUANTIZERS.register(Float32.quantizer, Quantizer(_reference, deployed=True))
