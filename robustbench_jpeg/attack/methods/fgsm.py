"""FGSM: the fast gradient sign method.

Goodfellow, Shlens, Szegedy, "Explaining and Harnessing Adversarial Examples", ICLR 2015, arXiv 1412.6572.

Distance: L-inf. One step ``x + eps * sign(grad of the mean cross-entropy)``, clipped to [0, 1]; no random start,
no parameters. It is the paper's first robustness protocol (eps 1..4/255). The toolkit's own loop, with
torchattacks' ``FGSM`` semantics (the torchattacks engine runs that class; tests/attack/test_engines.py checks the
two agree).

Example (a spec entry; L-inf radii in 1/255 units)::

    - method: fgsm
      eps: [1, 2, 4, 8]
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from . import Method, engine, register


class FGSM:
    """``(x, y) -> x_adv``: one signed-gradient step of size ``eps`` on the cross-entropy, clipped to [0, 1]."""

    def __init__(self, model, eps: float) -> None:
        self.model, self.eps = model, eps

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = x.clone().detach().requires_grad_(True)
        with torch.enable_grad():
            loss = F.cross_entropy(self.model(x), y)
            grad = torch.autograd.grad(loss, x)[0]
        return torch.clamp(x.detach() + self.eps * grad.sign(), 0, 1)


def build(model, *, eps, norm, steps, step_size, random_start, seed, num_classes):
    return FGSM(model, eps)


def build_torchattacks(model, *, eps, norm, steps, step_size, random_start, seed, num_classes):
    return engine("torchattacks").FGSM(model, eps=eps)


register(
    Method(
        name="fgsm",
        label="FGSM",
        norms=("linf",),
        build=build,
        build_torchattacks=build_torchattacks,
        default_steps=1,
        random_start="never",
        takes_step_size=True,
        single_step=True,
        per_sample_random=True,
        scores_iterates=True,
        paper="Goodfellow et al., ICLR 2015, arXiv 1412.6572",
    )
)
