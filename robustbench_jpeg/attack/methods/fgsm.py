"""FGSM: the fast gradient sign method.

Goodfellow, Shlens, Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015, arXiv 1412.6572.

Distance: L-inf. One step ``x + eps * sign(grad of the cross-entropy)``, clipped to [0, 1]; no random start, no
parameters. It is the paper's first robustness protocol (eps 1..4/255).

Example (a spec entry; L-inf radii in 1/255 units)::

    - method: fgsm
      eps: [1, 2, 4, 8]
"""

from __future__ import annotations

from . import Method, engine, register


def build(model, *, eps, norm, steps, step_size, random_start, seed, num_classes):
    return engine().FGSM(model, eps=eps)


register(
    Method(
        name="fgsm",
        label="FGSM",
        norms=("linf",),
        build=build,
        default_steps=1,
        random_start="never",
        takes_step_size=True,
        single_step=True,
        per_sample_random=True,
        scores_iterates=True,
        paper="Goodfellow et al., ICLR 2015, arXiv 1412.6572",
    )
)
