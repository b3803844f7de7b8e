"""Checkpoints and model cards: save atomically, load safely (``weights_only=True``), rebuild from the card.

An arm folder (``RUN/<arm>/``) holds ``checkpoint.pt`` (resumable training state) and ``card.json`` (the model
card). :func:`load_model` rebuilds the model with ``create_model`` from the card, so no name-based special cases
accrete, and loads the weights without unpickling arbitrary objects.
"""

from __future__ import annotations

import hashlib
import os
import zipfile
from pathlib import Path
from typing import Any

import torch

from .jpeg import JpegConfig
from .models import RobustNet, create_model
from .provenance import atomic_torch_save, atomic_write_json
from .runfolder import ARMS, CARD_NAME, CHECKPOINT_NAME, CardError, ModelCard, RunFolder

__all__ = [
    "ARMS",
    "CheckpointError",
    "ArmFolders",
    "discover_arms",
    "read_model_card",
    "card_path",
    "checkpoint_path",
    "read_card",
    "write_card",
    "save_checkpoint",
    "load_checkpoint",
    "build_model_from_card",
    "load_model",
    "find_arms",
    "weights_fingerprint",
]


class CheckpointError(FileNotFoundError):
    """A checkpoint or card is missing, unreadable or does not match its card."""


def card_path(arm_dir: str | os.PathLike) -> Path:
    return Path(arm_dir) / CARD_NAME


def checkpoint_path(arm_dir: str | os.PathLike) -> Path:
    return Path(arm_dir) / CHECKPOINT_NAME


def read_model_card(arm_dir: str | os.PathLike) -> ModelCard:
    """The validated :class:`ModelCard` of an arm folder (a :class:`CardError` names the file and field)."""
    path = card_path(arm_dir)
    if not path.is_file():
        raise CheckpointError(f"no model card at {path}: is {arm_dir} an arm folder written by `jpeg-robust train`?")
    return ModelCard.read(path)


def read_card(arm_dir: str | os.PathLike) -> dict[str, Any]:
    """The model card as a plain dict (validated like :func:`read_model_card`)."""
    return read_model_card(arm_dir).to_dict()


def write_card(arm_dir: str | os.PathLike, card: dict[str, Any] | ModelCard) -> None:
    data = card.to_dict() if isinstance(card, ModelCard) else card
    ModelCard.from_dict(data, where=str(card_path(arm_dir)))  # never write a card that would not read back
    atomic_write_json(card_path(arm_dir), data)


def save_checkpoint(arm_dir: str | os.PathLike, state: dict[str, Any]) -> None:
    """Write the training state atomically (the previous checkpoint survives a crash mid-write)."""
    atomic_torch_save(state, checkpoint_path(arm_dir))


def load_checkpoint(arm_dir: str | os.PathLike, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint with ``weights_only=True`` (tensors and plain containers only; nothing is unpickled)."""
    path = checkpoint_path(arm_dir)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at {path}")
    if not zipfile.is_zipfile(path):  # torch.save writes a zip archive; a cut one lacks its central directory
        raise CheckpointError(
            f"checkpoint {path} is truncated or damaged ({path.stat().st_size} bytes, not a complete checkpoint "
            "file); restore it from a copy, or retrain the arm (`jpeg-robust train --resume` continues from an "
            "intact checkpoint only)"
        )
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # corrupt file, or one that needs unpickling arbitrary objects
        raise CheckpointError(f"cannot load checkpoint {path} safely (weights_only=True): {exc}") from exc


def weights_fingerprint(model: torch.nn.Module) -> str:
    """A short SHA-256 of a model's parameters and buffers (names, dtypes, shapes, values): equal weights, equal
    fingerprint, however the checkpoint file was written. Cards and attack results record it, so results of an
    earlier checkpoint are recognised as stale."""
    items = sorted(model.state_dict().items())
    raw = [t.detach().contiguous().reshape(-1).view(torch.uint8) for _, t in items]
    # One flattened copy to the host for the whole model (a GPU model has hundreds of tensors).
    flat = torch.cat([r.to(raw[0].device) for r in raw]).cpu().numpy() if raw else None
    digest, offset = hashlib.sha256(), 0
    for (name, t), r in zip(items, raw, strict=True):
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(flat[offset : offset + r.numel()].tobytes())
        offset += r.numel()
    return digest.hexdigest()[:16]


def build_model_from_card(card: dict[str, Any]) -> RobustNet:
    """An untrained model of the card's architecture and arm."""
    try:
        jpeg = JpegConfig.from_dict(card["jpeg"]) if card.get("jpeg") else None
    except (ValueError, TypeError) as exc:
        raise CardError(f"card of arm {card['arm']!r}: field 'jpeg' is not a valid JpegConfig ({exc})") from None
    arm = ARMS.get(card["arm"])
    if arm is None or arm.has_jpeg != (jpeg is not None):
        raise CheckpointError(f"card says arm={card['arm']!r} but jpeg config is {card.get('jpeg')!r}")
    return create_model(card["model"], num_classes=int(card["num_classes"]), jpeg=jpeg)


def load_model(arm_dir: str | os.PathLike, device: str | torch.device = "cpu") -> RobustNet:
    """The trained model of one arm, in eval mode, taking RGB in [0, 1] and returning logits.

    Raises:
        CheckpointError: missing card or checkpoint, or weights that do not match the card's architecture; given a
            run folder instead of one of its arms, the message lists the arm folders found in it.
    """
    if not card_path(arm_dir).is_file() and Path(arm_dir).is_dir():
        arms = [arm for arm in ARMS if card_path(Path(arm_dir) / arm).is_file()]
        if arms:
            choices = ", ".join(repr(str(Path(arm_dir) / arm)) for arm in arms)
            raise CheckpointError(
                f"{arm_dir} is a run folder, not an arm folder (no {CARD_NAME} in it); load one of its arms: {choices}"
            )
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


class ArmFolders(dict):
    """Arm name -> folder of the arms that hold a card and a checkpoint; ``incomplete`` lists arms with a checkpoint
    but no card yet (training still in its first epoch, or interrupted before the first card was written)."""

    incomplete: tuple[str, ...] = ()


def discover_arms(run_dir: str | os.PathLike) -> ArmFolders:
    """Every known arm folder of a run, complete or not (see :class:`ArmFolders`)."""
    run_dir = Path(run_dir)
    if run_dir.exists() and not run_dir.is_dir():
        raise CheckpointError(f"{run_dir} is a file, not a run folder; give the folder made by `jpeg-robust train`")
    if not run_dir.is_dir():
        raise CheckpointError(f"run folder {run_dir} does not exist")
    complete, incomplete = RunFolder(run_dir).trained_arms()  # regular files only: a link or FIFO is refused
    found = ArmFolders(complete)
    found.incomplete = incomplete
    return found


def find_arms(run_dir: str | os.PathLike, arms: tuple[str, ...] | None = None) -> dict[str, Path]:
    """The arm folders to attack: ``arms`` if given (each must be complete), else every complete arm, and then no
    arm may be incomplete (an arm silently left out would make a paired comparison one-sided)."""
    run_dir = Path(run_dir)
    found = discover_arms(run_dir)
    if arms:
        missing = [a for a in arms if a not in found]
        if missing:
            raise CheckpointError(
                f"{run_dir}: arm(s) {', '.join(missing)} have no {CARD_NAME} and {CHECKPOINT_NAME} "
                f"(trained arms: {', '.join(found) or 'none'})"
            )
        return {a: found[a] for a in arms}
    if found.incomplete:
        raise CheckpointError(
            f"{run_dir}: arm(s) {', '.join(found.incomplete)} have a checkpoint but no {CARD_NAME} yet (training "
            f"has not finished its first epoch); resume training first, or name the arms to attack with --arms "
            f"{','.join(found) or 'ARM'}"
        )
    if not found:
        raise CheckpointError(
            f"no trained arms in {run_dir}: expected {run_dir}/baseline/ or {run_dir}/jpegdl/ with "
            f"{CARD_NAME} and {CHECKPOINT_NAME} (made by `jpeg-robust train --out {run_dir}`)"
        )
    return dict(found)
