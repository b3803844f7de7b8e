"""Square: a score-based black-box attack by random search over square-shaped updates.

Andriushchenko, Croce, Flammarion, Hein, "Square Attack: a query-efficient black-box adversarial attack via random
search", ECCV 2020, arXiv 1912.00049 (the fourth attack of AutoAttack).

Engine: AutoAttack's reference class ``SquareAttack`` (``pyautoattack``) with the settings
``AutoAttack(version="standard")`` gives it (margin loss, no rescaled schedule); torchattacks' ``Square`` with
``--engine torchattacks`` (its default rescaled schedule, as before).

Distances: L-inf and L2. It needs no gradient, so gradient masking cannot fool it (Carlini et al. 2019, "On
Evaluating Adversarial Robustness"): it always queries the deployed model. ``steps`` is its query budget (default
5000, as AutoAttack); ``p_init`` the initial fraction of pixels changed (0.8). Seeded as AutoAttack seeds it.

Example::

    - method: square
      eps: [8]
      steps: 5000
"""

from __future__ import annotations

from . import Method, Param, ReferenceAttack, engine, reference_norm, register


def build(model, *, eps, norm, steps, step_size, random_start, seed, num_classes, p_init):
    attack = engine("autoattack").square.SquareAttack(
        model, p_init=p_init, n_queries=steps, eps=eps, norm=reference_norm(norm), n_restarts=1, seed=seed,
        verbose=False, resc_schedule=False,
    )  # fmt: skip
    return ReferenceAttack(attack)


def build_torchattacks(model, *, eps, norm, steps, step_size, random_start, seed, num_classes, p_init):
    return engine("torchattacks").Square(
        model,
        norm=reference_norm(norm),
        eps=eps,
        n_queries=steps,
        n_restarts=1,
        p_init=p_init,
        seed=seed,
        loss="margin",
        resc_schedule=True,
    )


register(
    Method(
        name="square",
        label="Square",
        norms=("linf", "l2"),
        build=build,
        build_torchattacks=build_torchattacks,
        default_steps=5000,
        steps_word="queries",
        uses_gradient=False,
        seed_per_cell=True,
        params={"p_init": Param(0.8, float, 1e-6, "initial fraction of changed pixels, at most 1", 1.0)},
        paper="Andriushchenko et al., ECCV 2020, arXiv 1912.00049",
    )
)
