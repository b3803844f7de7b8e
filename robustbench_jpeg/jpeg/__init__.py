"""The JPEG-DL layer: a pure functional core (:mod:`.functional`) and a thin module (:class:`JpegLayer`).

:mod:`.hardness` audits where the deployed soft quantizer is flat (the mechanism of gradient masking).
"""

from .functional import (
    QUANT_MODES,
    bpda_hard_quantize,
    bpda_quantize,
    coefficients_to_rgb,
    hard_quantize,
    jpeg_coefficients,
    jpeg_dl,
    prepare_dct,
    soft_quantize,
    surrogate_hard_quantize,
    surrogate_quantize,
)
from .layer import JpegConfig, JpegLayer
from .tables import paper_tables, standard_tables, to_jpeg_integer_table

__all__ = [
    "QUANT_MODES",
    "JpegConfig",
    "JpegLayer",
    "jpeg_dl",
    "prepare_dct",
    "jpeg_coefficients",
    "coefficients_to_rgb",
    "soft_quantize",
    "hard_quantize",
    "bpda_quantize",
    "bpda_hard_quantize",
    "surrogate_quantize",
    "surrogate_hard_quantize",
    "paper_tables",
    "standard_tables",
    "to_jpeg_integer_table",
]
