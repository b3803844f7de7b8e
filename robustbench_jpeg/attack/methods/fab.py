"""FAB-T: the targeted fast adaptive boundary attack, a minimum-norm attack.

Croce, Hein, "Minimally distorted Adversarial Examples with a Fast Adaptive Boundary Attack", ICML 2020,
arXiv 1907.02044 (the third attack of AutoAttack).

Engine: AutoAttack's reference class ``FABAttack_PT`` (``pyautoattack``), targeted, with the settings
``AutoAttack(version="standard")`` gives it; torchattacks' ``FAB`` with ``--engine torchattacks``.

Distances: L-inf and L2. Defaults as AutoAttack's standard version: 100 iterations, 1 restart, 9 target classes.
FAB searches for the closest point across the decision boundary; a point counts only if it lies within eps (the
harness checks the radius of every returned example). Seeded as AutoAttack seeds it (the cell's attack seed).

Example::

    - method: fab-t
      eps: [8]
      params: {target_classes: 9}
"""

from __future__ import annotations

from . import Method, Param, ReferenceAttack, engine, reference_norm, register


def build(model, *, eps, norm, steps, step_size, random_start, seed, num_classes, target_classes):
    attack = engine("autoattack").fab_pt.FABAttack_PT(
        model, norm=reference_norm(norm), n_restarts=1, n_iter=steps, eps=eps, seed=seed, verbose=False,
        targeted=True, n_target_classes=min(int(target_classes), num_classes - 1),
    )  # fmt: skip
    return ReferenceAttack(attack)


def build_torchattacks(model, *, eps, norm, steps, step_size, random_start, seed, num_classes, target_classes):
    attack = engine("torchattacks").FAB(
        model,
        norm=reference_norm(norm),
        eps=eps,
        steps=steps,
        n_restarts=1,
        seed=seed,
        multi_targeted=True,
        n_classes=num_classes,
    )
    attack.n_target_classes = min(int(target_classes), num_classes - 1)
    return attack


register(
    Method(
        name="fab-t",
        label="FAB-T",
        norms=("linf", "l2"),
        build=build,
        build_torchattacks=build_torchattacks,
        default_steps=100,
        targeted=True,
        seed_per_cell=True,
        params={"target_classes": Param(9, int, 1, "number of target classes; CIFAR-100 has 99", 99)},
        paper="Croce and Hein, ICML 2020, arXiv 1907.02044",
    )
)
