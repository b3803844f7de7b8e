"""The JPEG-DL layer: a pure functional core (:mod:`.functional`) and a thin module (:class:`JpegLayer`)."""

from .functional import bpda_quantize, hard_quantize, jpeg_dl, soft_quantize
from .layer import JpegConfig, JpegLayer
from .tables import paper_tables, standard_tables, to_jpeg_integer_table

__all__ = [
    "JpegConfig",
    "JpegLayer",
    "jpeg_dl",
    "soft_quantize",
    "hard_quantize",
    "bpda_quantize",
    "paper_tables",
    "standard_tables",
    "to_jpeg_integer_table",
]
