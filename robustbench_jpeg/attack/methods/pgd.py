"""PGD: projected gradient descent on the cross-entropy (L-inf, and L2 with ``norm: l2``).

Madry, Makelov, Schmidt, Tsipras, Vladu, "Towards Deep Learning Models Resistant to Adversarial Attacks",
ICLR 2018, arXiv 1706.06083.

Distances: L-inf (signed-gradient steps) and L2 (normalised-gradient steps). Defaults: 20 steps, step size
``2.5*eps/steps`` (the paper protocol's rule; any ``K*eps/steps``, ``eps/K`` or a number is accepted), uniform
random start in the eps-ball (L2: a Gaussian direction scaled to a uniform radius). The toolkit's own loop, with
torchattacks' ``PGD`` / ``PGDL2`` semantics (the torchattacks engine runs those classes; tests check the two
agree). The random start of image i is drawn from its own generator, so results do not depend on the batch size
or the number of processes. The harness scores every iterate: an image counts as broken if any iterate fooled the
evaluated model.

Example::

    - method: pgd
      eps: [1, 2, 4, 8]
      steps: 20
      step_size: 2.5*eps/steps
      restarts: 5
"""

from __future__ import annotations

import torch
from torch.nn import functional as F

from . import Method, engine, register

L2_DIVISION_FLOOR = 1e-10  # added to gradient norms before dividing (torchattacks' eps_for_division)


class PGD:
    """``(x, y) -> x_adv``: ``steps`` ascent steps of size ``alpha`` on the cross-entropy, projected on the eps-ball
    (``norm`` ``linf`` or ``l2``) and on [0, 1] after each step."""

    def __init__(self, model, eps: float, alpha: float, steps: int, random_start: bool, norm: str) -> None:
        self.model, self.eps, self.alpha, self.steps = model, eps, alpha, steps
        self.random_start, self.norm = random_start, norm

    def start(self, x: torch.Tensor) -> torch.Tensor:
        if not self.random_start:
            return x.clone()
        if self.norm == "linf":
            return torch.clamp(x + torch.empty_like(x).uniform_(-self.eps, self.eps), 0, 1)
        delta = torch.empty_like(x).normal_()
        length = delta.flatten(1).norm(dim=1).view(-1, 1, 1, 1)
        radius = torch.zeros_like(length).uniform_(0, 1)
        return torch.clamp(x + delta * (radius / length * self.eps), 0, 1)

    def project(self, x: torch.Tensor, x_adv: torch.Tensor) -> torch.Tensor:
        delta = x_adv - x
        if self.norm == "linf":
            delta = torch.clamp(delta, -self.eps, self.eps)
        else:
            scale = torch.clamp(self.eps / delta.flatten(1).norm(dim=1), max=1.0)
            delta = delta * scale.view(-1, 1, 1, 1)
        return torch.clamp(x + delta, 0, 1)

    def __call__(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        x = x.clone().detach()
        x_adv = self.start(x).detach()
        for _ in range(self.steps):
            x_adv.requires_grad_(True)
            with torch.enable_grad():
                loss = F.cross_entropy(self.model(x_adv), y)
                grad = torch.autograd.grad(loss, x_adv)[0]
            if self.norm == "linf":
                step = grad.sign()
            else:
                step = grad / (grad.flatten(1).norm(dim=1) + L2_DIVISION_FLOOR).view(-1, 1, 1, 1)
            x_adv = self.project(x, x_adv.detach() + self.alpha * step).detach()
        return x_adv


def build(model, *, eps, norm, steps, step_size, random_start, seed, num_classes):
    return PGD(model, eps, step_size, steps, random_start, norm)


def build_torchattacks(model, *, eps, norm, steps, step_size, random_start, seed, num_classes):
    ta = engine("torchattacks")
    if norm == "l2":
        return ta.PGDL2(model, eps=eps, alpha=step_size, steps=steps, random_start=random_start)
    return ta.PGD(model, eps=eps, alpha=step_size, steps=steps, random_start=random_start)


register(
    Method(
        name="pgd",
        label="PGD",
        norms=("linf", "l2"),
        build=build,
        build_torchattacks=build_torchattacks,
        default_steps=20,
        takes_step_size=True,
        random_start="optional",
        per_sample_random=True,
        scores_iterates=True,
        paper="Madry et al., ICLR 2018, arXiv 1706.06083",
    )
)
