"""What each arm of a paired run puts in front of the shared backbone (the arms themselves: ``run_format.ARMS``).

Every arm is built from the same seed, recipe and data order; they differ only in the front end:

* ``baseline``: nothing;
* ``jpegdl``: the JPEG-DL layer of the config, its tables trained jointly (Adam) with the backbone.
"""

from __future__ import annotations

from ..config import ConfigError, TrainConfig
from ..jpeg import JpegConfig
from ..run_format import ARMS, BASELINE, JPEGDL

__all__ = ["arm_jpeg_config", "learns_tables", "TRAINABLE_ARMS"]

TRAINABLE_ARMS = (BASELINE, JPEGDL)


def arm_jpeg_config(arm: str, config: TrainConfig) -> JpegConfig | None:
    """The JPEG layer configuration of ``arm`` (None: no layer)."""
    if arm == BASELINE:
        return None
    if arm == JPEGDL:
        return config.jpeg
    raise ConfigError(f"arm {arm!r} cannot be trained (arms: {', '.join(TRAINABLE_ARMS)})")


def learns_tables(arm: str) -> bool:
    return ARMS[arm].learns_tables
