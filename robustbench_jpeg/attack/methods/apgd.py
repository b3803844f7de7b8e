"""APGD: auto-PGD with a step-size schedule, on the cross-entropy (APGD-CE), the DLR loss (APGD-DLR) or the targeted
DLR loss over the top classes (APGD-T).

Croce, Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free attacks",
ICML 2020, arXiv 2003.01690 (the first attacks of AutoAttack).

Distances: L-inf and L2. Defaults as AutoAttack's standard version: 100 iterations, 1 restart, a random start,
APGD-T against the 9 most likely wrong classes (``target_classes``). APGD keeps the best iterate of each image, so
an image fooled at any iterate stays fooled. Its random numbers are drawn per batch (seeded by the cell and the
batch's first image): results are reproducible for a given batch size and process count, but not independent
of them.

Example::

    - method: apgd-t
      eps: [8]
      steps: 100
      params: {target_classes: 9}
"""

from __future__ import annotations

from . import Method, Param, engine, register

PAPER = "Croce and Hein, ICML 2020, arXiv 2003.01690"


def _apgd(loss: str):
    def build(model, *, eps, norm, steps, step_size, random_start, seed, num_classes):
        return engine().APGD(
            model, norm="Linf" if norm == "linf" else "L2", eps=eps, steps=steps, n_restarts=1, seed=seed, loss=loss
        )

    return build


def build_targeted(model, *, eps, norm, steps, step_size, random_start, seed, num_classes, target_classes):
    attack = engine().APGDT(
        model,
        norm="Linf" if norm == "linf" else "L2",
        eps=eps,
        steps=steps,
        n_restarts=1,
        seed=seed,
        n_classes=num_classes,
    )
    attack.n_target_classes = min(int(target_classes), num_classes - 1)  # torchattacks defaults to all classes - 1
    return attack


register(
    Method(name="apgd-ce", label="APGD-CE", norms=("linf", "l2"), build=_apgd("ce"), default_steps=100, paper=PAPER)
)
register(
    Method(name="apgd-dlr", label="APGD-DLR", norms=("linf", "l2"), build=_apgd("dlr"), default_steps=100, paper=PAPER)
)
register(
    Method(
        name="apgd-t",
        label="APGD-T",
        norms=("linf", "l2"),
        build=build_targeted,
        default_steps=100,
        targeted=True,
        params={
            "target_classes": Param(
                9, int, 1, "number of target classes (the most likely wrong ones); CIFAR-100 has 99", 99
            )
        },
        paper=PAPER,
    )
)
