"""Checkpoints and model cards: save atomically, load safely (``weights_only=True``), rebuild from the card.

An arm folder (``RUN/<arm>/``) holds ``checkpoint.pt`` (resumable training state) and ``card.json`` (the model
card). :func:`load_model` rebuilds the model with ``create_model`` from the card, so no name-based special cases
accrete, and loads the weights without unpickling arbitrary objects.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import torch

from .jpeg import JpegConfig
from .models import RobustNet, create_model
from .provenance import atomic_torch_save, atomic_write_json, read_json

__all__ = [
    "ARMS",
    "CheckpointError",
    "card_path",
    "checkpoint_path",
    "read_card",
    "write_card",
    "save_checkpoint",
    "load_checkpoint",
    "build_model_from_card",
    "load_model",
    "find_arms",
]

ARMS = ("baseline", "jpegdl")
CARD_NAME = "card.json"
CHECKPOINT_NAME = "checkpoint.pt"


class CheckpointError(FileNotFoundError):
    """A checkpoint or card is missing, unreadable or does not match its card."""


def card_path(arm_dir: str | os.PathLike) -> Path:
    return Path(arm_dir) / CARD_NAME


def checkpoint_path(arm_dir: str | os.PathLike) -> Path:
    return Path(arm_dir) / CHECKPOINT_NAME


def read_card(arm_dir: str | os.PathLike) -> dict[str, Any]:
    path = card_path(arm_dir)
    if not path.is_file():
        raise CheckpointError(f"no model card at {path}: is {arm_dir} an arm folder written by `jpeg-robust train`?")
    try:
        card = read_json(path)
    except ValueError as exc:
        raise CheckpointError(f"model card {path} is not valid JSON: {exc}") from exc
    for key in ("model", "arm", "dataset", "num_classes"):
        if key not in card:
            raise CheckpointError(f"model card {path} lacks the field {key!r}")
    return card


def write_card(arm_dir: str | os.PathLike, card: dict[str, Any]) -> None:
    atomic_write_json(card_path(arm_dir), card)


def save_checkpoint(arm_dir: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write the training state atomically (the previous checkpoint survives a crash mid-write)."""
    atomic_torch_save(state, checkpoint_path(arm_dir))


def load_checkpoint(arm_dir: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (tensors and plain containers only; nothing is unpickled)."""
    path = checkpoint_path(arm_dir)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt file, or one that needs unpickling arbitrary objects
        raise CheckpointError(f"cannot load checkpoint {path} safely (weights_only=True): {exc}") from exc


def build_model_from_card(card: dict[str, Any]) -> RobustNet:
    """An untrained model of the card's architecture and arm."""
    jpeg = JpegConfig.from_dict(card["jpeg"]) if card.get("jpeg") else None
    if (card["arm"] == "jpegdl") != (jpeg is not None):
        raise CheckpointError(f"card says arm={card['arm']!r} but jpeg config is {card.get('jpeg')!r}")
    return create_model(card["model"], num_classes=int(card["num_classes"]), jpeg=jpeg)


def load_model(arm_dir: str | os.PathLike, device: str | torch.device = "cpu") -> RobustNet:
    """The trained model of one arm, in eval mode, taking RGB in [0, 1] and returning logits.

    Raises:
        CheckpointError: missing card or checkpoint, or weights that do not match the card's architecture.
    """
    card = read_card(arm_dir)
    model = build_model_from_card(card)
    state = load_checkpoint(arm_dir)
    weights = state.get("model") if isinstance(state, dict) else None
    if weights is None:
        raise CheckpointError(f"checkpoint in {arm_dir} holds no model weights")
    try:
        model.load_state_dict(weights, strict=True)
    except RuntimeError as exc:
        raise CheckpointError(
            f"checkpoint in {arm_dir} does not match its card (model={card['model']!r}, arm={card['arm']!r}): {exc}"
        ) from exc
    return model.to(device).eval()


def find_arms(run_dir: str | os.PathLike) -> dict[str, Path]:
    """The arm folders of a run that hold a card and a checkpoint, keyed by arm name."""
    run_dir = Path(run_dir)
    if not run_dir.is_dir():
        raise CheckpointError(f"run folder {run_dir} does not exist")
    arms = {
        arm: run_dir / arm
        for arm in ARMS
        if card_path(run_dir / arm).is_file() and checkpoint_path(run_dir / arm).is_file()
    }
    if not arms:
        raise CheckpointError(
            f"no trained arms in {run_dir}: expected {run_dir}/baseline/ or {run_dir}/jpegdl/ with "
            f"{CARD_NAME} and {CHECKPOINT_NAME} (made by `jpeg-robust train --out {run_dir}`)"
        )
    return arms
