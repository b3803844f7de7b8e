"""APGD: auto-PGD with a step-size schedule, on the cross-entropy (APGD-CE), the DLR loss (APGD-DLR) or the targeted
DLR loss over the top classes (APGD-T).

Croce, Hein, "Reliable evaluation of adversarial robustness with an ensemble of diverse parameter-free attacks",
ICML 2020, arXiv 2003.01690 (the first attacks of AutoAttack).

Engine: AutoAttack's reference classes ``APGDAttack`` / ``APGDAttack_targeted`` (``pyautoattack``), built with the
settings ``AutoAttack(version="standard")`` gives them (rho 0.75, one EOT iteration, 1 restart); torchattacks'
``APGD`` / ``APGDT`` with ``--engine torchattacks``.

Distances: L-inf and L2. Defaults as AutoAttack's standard version: 100 iterations, a random start, APGD-T against
the 9 most likely wrong classes (``target_classes``). APGD keeps the best iterate of each image, so an image fooled
at any iterate stays fooled. Seeded as AutoAttack seeds it: every batch of a cell with the cell's attack seed.

Example::

    - method: apgd-t
      eps: [8]
      steps: 100
      params: {target_classes: 9}
"""

from __future__ import annotations

from . import Method, Param, ReferenceAttack, engine, reference_logger, reference_norm, register

PAPER = "Croce and Hein, ICML 2020, arXiv 2003.01690"


def _apgd(loss: str):
    def build(model, *, eps, norm, steps, step_size, random_start, seed, num_classes):
        attack = engine("autoattack").autopgd_base.APGDAttack(
            model, n_iter=steps, norm=reference_norm(norm), n_restarts=1, eps=eps, seed=seed, loss=loss,
            eot_iter=1, rho=0.75, verbose=False, logger=reference_logger(),
        )  # fmt: skip
        return ReferenceAttack(attack)

    return build


def _apgd_torchattacks(loss: str):
    def build(model, *, eps, norm, steps, step_size, random_start, seed, num_classes):
        return engine("torchattacks").APGD(
            model, norm=reference_norm(norm), eps=eps, steps=steps, n_restarts=1, seed=seed, loss=loss
        )

    return build


def build_targeted(model, *, eps, norm, steps, step_size, random_start, seed, num_classes, target_classes):
    attack = engine("autoattack").autopgd_base.APGDAttack_targeted(
        model, n_iter=steps, norm=reference_norm(norm), n_restarts=1, eps=eps, seed=seed, eot_iter=1, rho=0.75,
        n_target_classes=min(int(target_classes), num_classes - 1), verbose=False, logger=reference_logger(),
    )  # fmt: skip
    return ReferenceAttack(attack)


def build_targeted_torchattacks(model, *, eps, norm, steps, step_size, random_start, seed, num_classes, target_classes):
    attack = engine("torchattacks").APGDT(
        model, norm=reference_norm(norm), eps=eps, steps=steps, n_restarts=1, seed=seed, n_classes=num_classes
    )
    attack.n_target_classes = min(int(target_classes), num_classes - 1)  # torchattacks defaults to all classes - 1
    return attack


for _loss, _label in (("ce", "APGD-CE"), ("dlr", "APGD-DLR")):
    register(
        Method(
            name=f"apgd-{_loss}",
            label=_label,
            norms=("linf", "l2"),
            build=_apgd(_loss),
            build_torchattacks=_apgd_torchattacks(_loss),
            default_steps=100,
            seed_per_cell=True,
            paper=PAPER,
        )
    )
register(
    Method(
        name="apgd-t",
        label="APGD-T",
        norms=("linf", "l2"),
        build=build_targeted,
        build_torchattacks=build_targeted_torchattacks,
        default_steps=100,
        targeted=True,
        seed_per_cell=True,
        params={
            "target_classes": Param(
                9, int, 1, "number of target classes (the most likely wrong ones); CIFAR-100 has 99", 99
            )
        },
        paper=PAPER,
    )
)
