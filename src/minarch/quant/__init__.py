"""Quantization (docs/methods.md A.4): fold BN, fake-quantize weights and activations, cast, QAT,
and real int8 CPU inference.

Other packages use only the names re-exported here; ``QUANTIZERS`` applies a
quantization setting by its quantizer's name.
"""

from minarch.errors import QuantError
from minarch.quant.acts import ActivationQuantizer
from minarch.quant.fold import fold_batchnorm
from minarch.quant.int8 import convert_int8
from minarch.quant.qat import finish_qat, prepare_qat
from minarch.quant.registry import QUANTIZERS, Quantizer
from minarch.quant.scheme import QuantScheme, quantize, scheme_of
from minarch.quant.weights import cast, fake_quantize, quantize_weights, scale_of

__all__ = [
    "QUANTIZERS",
    "ActivationQuantizer",
    "QuantError",
    "QuantScheme",
    "Quantizer",
    "cast",
    "convert_int8",
    "fake_quantize",
    "finish_qat",
    "fold_batchnorm",
    "prepare_qat",
    "quantize",
    "quantize_weights",
    "scale_of",
    "scheme_of",
]
