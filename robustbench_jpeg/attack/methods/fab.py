"""FAB-T: the targeted fast adaptive boundary attack, a minimum-norm attack.

Croce, Hein, "Minimally distorted Adversarial Examples with a Fast Adaptive Boundary Attack", ICML 2020,
arXiv 1907.02044 (the third attack of AutoAttack).

Distances: L-inf and L2. Defaults as AutoAttack's standard version: 100 iterations, 1 restart, 9 target classes.
FAB searches for the closest point across the decision boundary; a point counts only if it lies within eps (the
harness checks the radius of every returned example). Random numbers are drawn per batch (see APGD).

Example::

    - method: fab-t
      eps: [8]
      params: {target_classes: 9}
"""

from __future__ import annotations

from . import Method, Param, engine, register


def build(model, *, eps, norm, steps, step_size, random_start, seed, num_classes, target_classes):
    attack = engine().FAB(
        model,
        norm="Linf" if norm == "linf" else "L2",
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
        default_steps=100,
        targeted=True,
        params={"target_classes": Param(9, int, 1, "number of target classes; CIFAR-100 has 99", 99)},
        paper="Croce and Hein, ICML 2020, arXiv 1907.02044",
    )
)
