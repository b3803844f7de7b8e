"""``JpegLayer``: the thin ``nn.Module`` around :func:`robustbench_jpeg.jpeg.functional.jpeg_dl`.

It holds the 128 learnable step sizes (an 8x8 luma table and an 8x8 chroma table shared by Cb and Cr) as
parameters and the fixed softness alpha as buffers (so checkpoints carry it, unlike the official code, where a
missing alpha made its robustness script evaluate with the wrong one; spec section 12.2).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import torch
from torch import nn

from .functional import QUANT_MODES, jpeg_dl
from .tables import paper_tables, standard_tables, to_jpeg_integer_table

__all__ = ["JpegConfig", "JpegLayer", "Q_INITS"]

Q_INITS = ("paper", "standard", "constant", "sensitivity")


@dataclass(frozen=True)
class JpegConfig:
    """Configuration of the JPEG-DL layer. Defaults are the paper's CIFAR-100 setting (spec sections 2-5, 13).

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

    def __post_init__(self) -> None:
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
        return dataclasses.asdict(self)

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


class JpegLayer(nn.Module):
    """Differentiable JPEG compression layer (JPEG-DL). RGB in [0, 1] -> RGB on the [0, 1] scale (unclamped).

    Shape:
        input (B, 3, H, W) float, H and W multiples of 8; output the same shape, float32.

    The layer always runs in float32 with autocast disabled: DCT coefficients reach +/-1024, where bf16 steps by
    4 to 8 and would flip quantization decisions.

    Attributes:
        mode: ``"soft"`` (default, Q_d as trained and deployed), ``"hard"`` (true rounding with the same tables)
            or ``"bpda"`` (hard forward, identity backward), settable at any time.
    """

    def __init__(self, config: JpegConfig | None = None) -> None:
        super().__init__()
        self.config = config or JpegConfig()
        luma, chroma = _initial_tables(self.config)
        self.q_luma = nn.Parameter(luma.clone().float())
        self.q_chroma = nn.Parameter(chroma.clone().float())
        self.register_buffer("alpha_luma", torch.full((8, 8), float(self.config.alpha)))
        self.register_buffer("alpha_chroma", torch.full((8, 8), float(self.config.alpha)))
        self._mode = "soft"
        self.register_load_state_dict_post_hook(lambda module, _incompatible: module.project_())
        self.project_()

    @property
    def mode(self) -> str:
        return self._mode

    @mode.setter
    def mode(self, value: str) -> None:
        if value not in QUANT_MODES:
            raise ValueError(f"unknown JpegLayer mode {value!r}; choose one of {QUANT_MODES}")
        self._mode = value

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=x.device.type, enabled=False):
            dtype = torch.float64 if x.dtype == torch.float64 else torch.float32
            return jpeg_dl(
                x.to(dtype),
                self.q_luma.to(dtype),
                self.q_chroma.to(dtype),
                self.alpha_luma.to(dtype),
                self.alpha_chroma.to(dtype),
                mode=self._mode,
                window=self.config.window,
                num_bits=self.config.num_bits,
                chroma_offset=self.config.chroma_offset,
            )

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"mode={self._mode}, alpha={c.alpha}, window={c.window}, chroma_offset={c.chroma_offset}, q_init={c.q_init}"
        )
