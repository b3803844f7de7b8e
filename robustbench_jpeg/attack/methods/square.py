"""Square: a score-based black-box attack by random search over square-shaped updates.

Andriushchenko, Croce, Flammarion, Hein, "Square Attack: a query-efficient black-box adversarial attack via random
search", ECCV 2020, arXiv 1912.00049 (the fourth attack of AutoAttack).

Distances: L-inf and L2. It needs no gradient, so gradient masking cannot fool it (Carlini et al. 2019, "On
Evaluating Adversarial Robustness"): it always queries the deployed model. ``steps`` is its query budget (default
5000, as AutoAttack); ``p_init`` the initial fraction of pixels changed (0.8). Random numbers are drawn per batch.

Example::

    - method: square
      eps: [8]
      steps: 5000
"""

from __future__ import annotations

from . import Method, Param, engine, register


def build(model, *, eps, norm, steps, step_size, random_start, seed, num_classes, p_init):
    return engine().Square(
        model,
        norm="Linf" if norm == "linf" else "L2",
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
        default_steps=5000,
        steps_word="queries",
        uses_gradient=False,
        params={"p_init": Param(0.8, float, 1e-6, "initial fraction of changed pixels, at most 1", 1.0)},
        paper="Andriushchenko et al., ECCV 2020, arXiv 1912.00049",
    )
)
