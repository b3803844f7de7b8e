"""PGD: projected gradient descent on the cross-entropy (L-inf, and L2 with ``norm: l2``).

Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards Deep Learning Models Resistant to Adversarial Attacks",
ICLR 2018, arXiv 1706.06083.

Distances: L-inf (signed-gradient steps) and L2 (normalised-gradient steps). Defaults: 20 steps, step size
``2.5*eps/steps`` (the paper protocol's rule; any ``K*eps/steps``, ``eps/K`` or a number is accepted), uniform
random start in the eps-ball. The random start of image i is drawn from its own generator, so results do not
depend on the batch size or the number of processes. The harness scores every iterate: an image counts as broken
if any iterate fooled the evaluated model.

Example::

    - method: pgd
      eps: [1, 2, 4, 8]
      steps: 20
      step_size: 2.5*eps/steps
      restarts: 5
"""

from __future__ import annotations

from . import Method, engine, register


def build(model, *, eps, norm, steps, step_size, random_start, seed, num_classes):
    ta = engine()
    if norm == "l2":
        return ta.PGDL2(model, eps=eps, alpha=step_size, steps=steps, random_start=random_start)
    return ta.PGD(model, eps=eps, alpha=step_size, steps=steps, random_start=random_start)


register(
    Method(
        name="pgd",
        label="PGD",
        norms=("linf", "l2"),
        build=build,
        default_steps=20,
        takes_step_size=True,
        random_start="optional",
        per_sample_random=True,
        scores_iterates=True,
        paper="Madry et al., ICLR 2018, arXiv 1706.06083",
    )
)
