"""Simulated quantization (METHODS A.4): fold BN, then fake-quantize or cast the weights.

Other packages use only the names re-exported here.
"""

from minarch.errors import QuantError
from minarch.quant.fold import fold_batchnorm
from minarch.quant.scheme import QuantScheme, quantize
from minarch.quant.weights import cast, fake_quantize, quantize_weights, scale_of

__all__ = [
    "QuantError",
    "QuantScheme",
    "cast",
    "fake_quantize",
    "fold_batchnorm",
    "quantize",
    "quantize_weights",
    "scale_of",
]
