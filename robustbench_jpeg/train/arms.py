"""What each arm of a paired run puts in front of the shared backbone (the arms themselves: ``runfolder.ARMS``).

Every arm is built from the same seed, recipe and data order; they differ only in the front end:

* ``baseline``: nothing;
* ``jpegdl``: the JPEG-DL layer of the config, its tables trained jointly (Adam) with the backbone;
* ``jpeg-frozen``: the same layer with its tables fixed at their initial values (does learning the tables matter?);
* ``jpeg-standard``: a fixed standard JPEG front end: the IJG tables at ``jpeg_standard_quality``, hard rounding,
  no chroma offset (the classic JPEG-compression defence of Dziugaite et al. 2016, Das et al. 2017, Guo et al. 2018,
  broken by BPDA in Athalye et al. 2018; does JPEG-DL beat plain JPEG?).
"""

from __future__ import annotations

import dataclasses

from ..config import ConfigError, TrainConfig
from ..jpeg import JpegConfig
from ..runfolder import ARMS, BASELINE, JPEG_FROZEN, JPEG_STANDARD, JPEGDL

__all__ = ["arm_jpeg_config", "learns_tables", "TRAINABLE_ARMS"]

TRAINABLE_ARMS = (BASELINE, JPEGDL, JPEG_FROZEN, JPEG_STANDARD)


def arm_jpeg_config(arm: str, config: TrainConfig) -> JpegConfig | None:
    """The JPEG layer configuration of ``arm`` (None: no layer)."""
    if arm == BASELINE:
        return None
    if arm in (JPEGDL, JPEG_FROZEN):
        return config.jpeg
    if arm == JPEG_STANDARD:
        return dataclasses.replace(
            JpegConfig(),
            q_init="standard",
            quality=config.jpeg_standard_quality,
            quantizer="hard",
            chroma_offset=0.0,
            paper_table=None,
        )
    raise ConfigError(f"arm {arm!r} cannot be trained (arms: {', '.join(TRAINABLE_ARMS)})")


def learns_tables(arm: str) -> bool:
    return ARMS[arm].learns_tables
