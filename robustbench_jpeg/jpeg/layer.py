"""``JpegLayer``: the thin ``nn.Module`` over the functional core; ``layer(x)`` equals
:func:`robustbench_jpeg.jpeg.functional.jpeg_dl` with the layer's tables, and is split as ``decode(encode(x))``.

It holds the 128 learnable step sizes (an 8x8 luma table and an 8x8 chroma table shared by Cb and Cr) as
parameters and the fixed softness alpha as buffers (so checkpoints carry it; the official code kept alpha out of
its checkpoints, so a robustness evaluation could silently run with the wrong one). See docs/jpeg-layer.md.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from dataclasses import dataclass

import torch
from torch import nn

from .functional import QUANT_MODES, _check_coefficients, _check_image, coefficients_to_rgb, jpeg_coefficients, quantize
from .tables import paper_tables, standard_tables, to_jpeg_integer_table

__all__ = ["JpegConfig", "JpegLayer", "Q_INITS"]

Q_INITS = ("paper", "standard", "constant", "sensitivity")


@dataclass(frozen=True)
class JpegConfig:
    """Configuration of the JPEG-DL layer. Defaults are the paper's CIFAR-100 setting (docs/jpeg-layer.md).

    Attributes:
        alpha: soft-quantizer softness (fixed, not trained). 5.0 for CIFAR-100.
        window: candidate points per coefficient (5, as the official code); None = full alphabet [-127, 127].
        num_bits: index alphabet bits b (8 -> reconstruction indices in [-127, 127]).
        chroma_offset: +0.5 on the +/-128 scale as the official code; 0.0 = standard JPEG.
        q_init: ``paper`` (the authors' sensitivity-derived tables), ``standard`` (IJG table at ``quality``),
            ``constant`` (every step = ``q_constant``) or ``sensitivity`` (set from our own trained baseline;
            the layer starts constant and the trainer sets the tables).
        paper_table: which paper table to use for ``q_init="paper"`` (None: chosen by the model registry).
        q_max: largest luma step after rescaling the paper/sensitivity tables (10 as the paper).
        quality: IJG quality for ``q_init="standard"``.
        q_constant: step for ``q_init="constant"``.
        q_lower, q_upper: explicit bounds on every step, enforced by :meth:`JpegLayer.project_` ([1e-5, 255]).
        quantizer: the deployed quantizer: ``soft`` (JPEG-DL, trained and evaluated through Q_d) or ``hard`` (true
            rounding, the fixed standard-JPEG control arm).
    """

    alpha: float = 5.0
    window: int | None = 5
    num_bits: int = 8
    chroma_offset: float = 0.5
    q_init: str = "paper"
    paper_table: str | None = None
    q_max: float = 10.0
    quality: int = 50
    q_constant: float = 1.0
    q_lower: float = 1e-5
    q_upper: float = 255.0
    quantizer: str = "soft"

    def __post_init__(self) -> None:
        for name in ("alpha", "chroma_offset", "q_max", "quality", "q_constant", "q_lower", "q_upper"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise ValueError(f"{name} must be a finite number, got {value!r}")
        if self.quantizer not in ("soft", "hard"):
            raise ValueError(f"quantizer must be 'soft' or 'hard', got {self.quantizer!r}")
        if not self.alpha > 0:
            raise ValueError(f"alpha must be positive, got {self.alpha}")
        if self.window is not None and not 1 <= self.window <= 2**self.num_bits - 1:
            raise ValueError(f"window must be in 1..{2**self.num_bits - 1} or None, got {self.window}")
        if self.num_bits < 2:
            raise ValueError(f"num_bits must be at least 2, got {self.num_bits}")
        if self.q_init not in Q_INITS:
            raise ValueError(f"unknown q_init {self.q_init!r}; choose one of {Q_INITS}")
        if not 0 < self.q_lower < self.q_upper:
            raise ValueError(f"need 0 < q_lower < q_upper, got {self.q_lower}, {self.q_upper}")
        if not self.q_lower <= self.q_constant <= self.q_upper:
            raise ValueError(f"q_constant must be within [{self.q_lower}, {self.q_upper}], got {self.q_constant}")
        if self.q_max <= 0:
            raise ValueError(f"q_max must be positive, got {self.q_max}")

    def to_dict(self) -> dict:
        out = dataclasses.asdict(self)
        if self.quantizer == "soft":  # written only when it differs, so configs of earlier versions compare equal
            out.pop("quantizer")
        return out

    @classmethod
    def from_dict(cls, data: dict) -> JpegConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown JpegConfig fields: {sorted(unknown)}")
        return cls(**data)


def _initial_tables(config: JpegConfig) -> tuple[torch.Tensor, torch.Tensor]:
    if config.q_init == "paper":
        return paper_tables(config.paper_table or "resnet56", config.q_max)
    if config.q_init == "standard":
        luma, chroma = standard_tables(config.quality)
        return luma.float(), chroma.float()
    full = torch.full((8, 8), float(config.q_constant))
    return full, full.clone()  # constant, and the starting point of "sensitivity"


def _working_dtype(t: torch.Tensor) -> torch.dtype:
    return torch.float64 if t.dtype == torch.float64 else torch.float32


def _autocast_off(device: torch.device):
    """Disable autocast on ``device`` (where autocast exists at all; e.g. ``meta`` has none)."""
    if torch.amp.is_autocast_available(device.type):
        return torch.autocast(device_type=device.type, enabled=False)
    return contextlib.nullcontext()


def _check_surrogate_value(value) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, torch.Tensor)):
        raise TypeError(f"surrogate_alpha must be a number or a tensor, got {type(value).__name__}")
    if isinstance(value, torch.Tensor):
        if not value.is_floating_point() or value.device.type == "meta":
            return
        if not torch.isfinite(value).all() or (value <= 0).any():
            raise ValueError("surrogate_alpha must be positive and finite")
    elif not (math.isfinite(value) and value > 0):
        raise ValueError(f"surrogate_alpha must be positive and finite, got {value}")


class JpegLayer(nn.Module):
    """Differentiable JPEG compression layer (JPEG-DL). RGB in [0, 1] -> RGB on the [0, 1] scale (unclamped).

    Shape:
        input (B, 3, H, W) float, H and W multiples of 8; output the same shape, float32.

    The layer always runs in float32 with autocast disabled: DCT coefficients reach +/-1024, where bf16 steps by
    4 to 8 and would flip quantization decisions.

    The layer is split at the quantizer: ``forward(x) == decode(encode(x))``, where :meth:`encode` gives the
    unquantized YCbCr DCT coefficients and :meth:`decode` quantizes them (current mode) and inverts the transform.

    Attributes:
        mode: one of ``QUANT_MODES``, settable at any time: ``"soft"`` (default, Q_d as trained and deployed),
            ``"hard"`` (true rounding with the same tables), ``"bpda"`` (textbook BPDA: the deployed soft forward,
            identity backward), ``"bpda-hard"`` (hard forward, identity backward), ``"surrogate"`` (the deployed
            soft forward, backward of a soft quantizer of softness ``surrogate_alpha``) or ``"surrogate-hard"``
            (hard forward, the same surrogate backward: the surrogate attack on a hard-deployed layer).
        surrogate_alpha: the surrogate's softness for mode ``"surrogate"``: None (default; the mode then refuses
            to run), a positive number, a tensor broadcastable to 8x8 (put it on the layer's device), or a
            ``(luma, chroma)`` pair of those. A plain attribute: not saved in the state dict, not moved by ``.to()``.
    """

    def __init__(self, config: JpegConfig | None = None) -> None:
        super().__init__()
        self.config = config or JpegConfig()
        luma, chroma = _initial_tables(self.config)
        self.q_luma = nn.Parameter(luma.clone().float())
        self.q_chroma = nn.Parameter(chroma.clone().float())
        self.register_buffer("alpha_luma", torch.full((8, 8), float(self.config.alpha)))
        self.register_buffer("alpha_chroma", torch.full((8, 8), float(self.config.alpha)))
        self._mode = self.config.quantizer
        self._surrogate_alpha = None
        self.register_load_state_dict_post_hook(lambda module, _incompatible: module.project_())
        self.project_()

    @property
    def deployed_mode(self) -> str:
        """The quantizer the layer is evaluated with: ``soft`` (JPEG-DL) or ``hard`` (a fixed standard JPEG)."""
        return self.config.quantizer

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in QUANT_MODES:
            raise ValueError(f"unknown JpegLayer mode {value!r}; choose one of {QUANT_MODES}")
        self._mode = value

    @property
    def surrogate_alpha(self):
        return self._surrogate_alpha

    @surrogate_alpha.setter
    def surrogate_alpha(self, value) -> None:
        if value is not None:
            if isinstance(value, (tuple, list)):
                if len(value) != 2:
                    raise ValueError(f"surrogate_alpha pair must be (luma, chroma), got {len(value)} items")
                for item in value:
                    _check_surrogate_value(item)
                value = tuple(value)
            else:
                _check_surrogate_value(value)
        self._surrogate_alpha = value

    @torch.no_grad()
    def project_(self) -> None:
        """Clamp both step tables into [q_lower, q_upper] in place (call after every optimizer step)."""
        self.q_luma.clamp_(self.config.q_lower, self.config.q_upper)
        self.q_chroma.clamp_(self.config.q_lower, self.config.q_upper)

    @torch.no_grad()
    def set_quantization_tables(self, luma: torch.Tensor, chroma: torch.Tensor) -> None:
        """Set both 8x8 step tables (natural order); values are clamped into the layer's bounds."""
        for name, table in (("luma", luma), ("chroma", chroma)):
            table = torch.as_tensor(table)
            if table.shape != (8, 8):
                raise ValueError(f"{name} table must be 8x8, got shape {tuple(table.shape)}")
            if not torch.isfinite(table.double()).all() or (table <= 0).any():
                raise ValueError(f"{name} table must be finite and positive")
        self.q_luma.copy_(torch.as_tensor(luma, dtype=torch.float32))
        self.q_chroma.copy_(torch.as_tensor(chroma, dtype=torch.float32))
        self.project_()

    def quantization_tables(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The learned luma and chroma tables as 8x8 int64 tensors in 1..255, natural order, ready for an encoder."""
        return to_jpeg_integer_table(self.q_luma), to_jpeg_integer_table(self.q_chroma)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] (B, 3, H, W) -> unquantized YCbCr DCT coefficients (B, 3, H/8, W/8, 8, 8), float32/64.

        The quantizer's input: differentiate a loss with respect to these to see which coefficients the quantizer
        lets gradients through (see :mod:`robustbench_jpeg.jpeg.hardness`).
        """
        _check_image(x)
        with _autocast_off(x.device):
            return jpeg_coefficients(x.to(_working_dtype(x)), self.config.chroma_offset)

    def decode(self, coeffs: torch.Tensor) -> torch.Tensor:
        """Quantize coefficients (B, 3, H/8, W/8, 8, 8) in the current :attr:`mode` and invert: RGB on the [0, 1]
        scale (unclamped). ``decode(encode(x))`` is exactly ``forward(x)``."""
        if self._mode in ("surrogate", "surrogate-hard") and self._surrogate_alpha is None:
            raise ValueError(
                "JpegLayer mode 'surrogate' needs JpegLayer.surrogate_alpha (the surrogate quantizer's softness), "
                "which is None; set layer.surrogate_alpha first"
            )
        _check_coefficients(coeffs)
        with _autocast_off(coeffs.device):
            dtype = _working_dtype(coeffs)
            quantized = quantize(
                coeffs.to(dtype),
                self.q_luma.to(dtype),
                self.q_chroma.to(dtype),
                self.alpha_luma.to(dtype),
                self.alpha_chroma.to(dtype),
                mode=self._mode,
                window=self.config.window,
                num_bits=self.config.num_bits,
                surrogate_alpha=self._surrogate_alpha,
            )
            return coefficients_to_rgb(quantized, self.config.chroma_offset)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(x))

    def extra_repr(self) -> str:
        c = self.config
        text = (
            f"mode={self._mode}, alpha={c.alpha}, window={c.window}, chroma_offset={c.chroma_offset}, q_init={c.q_init}"
        )
        if self._surrogate_alpha is not None:
            text += f", surrogate_alpha={self._surrogate_alpha}"
        return text
