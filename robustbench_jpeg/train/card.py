"""The model card of one trained arm (what :class:`~robustbench_jpeg.runfolder.ModelCard` records beside the
checkpoint): recipe, accuracies, tables, sizes, data, provenance."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from ..data import AUGMENTATION, NUM_CLASSES
from ..provenance import provenance
from ..runfolder import ModelCard
from .evaluate import qtables

if TYPE_CHECKING:
    from .arm import ArmTrainer


def arm_card(trainer: ArmTrainer, data_info: dict[str, Any], fingerprint: str | None = None) -> ModelCard:
    """The card of ``trainer``'s arm as it stands (call after its last epoch, or at a checkpoint)."""
    c, p = trainer.config, trainer.progress
    jpeg_arm = trainer.model.has_jpeg
    return ModelCard(
        model=c.model,
        arm=trainer.arm,
        dataset=c.dataset,
        num_classes=NUM_CLASSES[c.dataset],
        jpeg=trainer.model.jpeg.config.to_dict() if jpeg_arm else None,
        seed=c.seed,
        epochs=c.epochs,
        epochs_done=p.epoch,
        finished=p.finished,
        recipe={
            "name": c.recipe,
            "batch_size": c.batch_size,
            "lr": c.lr,
            "momentum": c.momentum,
            "weight_decay": c.weight_decay,
            "nesterov": c.nesterov,
            "schedule": c.schedule,
            **(
                {"milestones": list(c.milestones), "gamma": c.gamma}
                if c.schedule == "step"
                else {"warmup_epochs": c.warmup_epochs}
            ),
            "jpeg_lr": c.jpeg_lr if trainer.jpeg_optimizer else None,
            "jpeg_lr_schedule": c.jpeg_lr_schedule if trainer.jpeg_optimizer else None,
            "augmentation": AUGMENTATION,
            "loss": "cross-entropy" + (f", label smoothing {c.label_smoothing:g}" if c.label_smoothing else ""),
            "amp": "bf16 autocast (backbone), JPEG layer fp32" if trainer.amp else "off (fp32)",
            "channels_last": trainer.channels_last,
        },
        clean_top1=p.last_acc,
        clean_top1_note="last epoch, test split, fp32; JPEG arms with their deployed quantizer",
        best_top1=p.best_acc if p.best_epoch >= 0 else None,
        best_epoch=p.best_epoch + 1 if p.best_epoch >= 0 else None,
        best_top1_note="best epoch on the test split: model selection on the test set, shown for comparison",
        qtables=qtables(trainer.model),
        qtables_init=trainer.qtables_init,
        n_parameters=sum(q.numel() for q in trainer.model.parameters()),
        n_jpeg_parameters=sum(q.numel() for q in trainer.model.jpeg_parameters()),
        data=data_info,
        wall_seconds=round(p.wall_seconds, 2),
        world_size=trainer.dist.world,
        fingerprint=fingerprint,
        **provenance(trainer.device),
    )
