"""Shared fixtures of the sweep tests: small run folders with ``tiny`` models on cifar100-mini."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from run_helpers import write_arm

from robustbench_jpeg.data import load_split
from robustbench_jpeg.models import create_model

N_TEST = 64  # test images the sweeps use: small, so every test stays fast on CPU


@pytest.fixture(scope="session")
def mini_test() -> tuple[torch.Tensor, torch.Tensor]:
    """The first N_TEST cifar100-mini test images (uint8 NCHW) and labels."""
    images, labels = load_split("cifar100-mini", train=False)
    return images[:N_TEST], labels[:N_TEST]


@pytest.fixture(scope="session")
def tiny_state(mini_test) -> dict[str, torch.Tensor]:
    """A ``tiny`` baseline over-fitted on those images, so that clean accuracy (and attack effects) are not trivial."""
    torch.manual_seed(0)
    model = create_model("tiny")
    x, y = mini_test[0].float() / 255, mini_test[1]
    opt = torch.optim.Adam(model.parameters(), lr=0.05)
    model.train()
    for _ in range(40):
        opt.zero_grad()
        F.cross_entropy(model(x), y).backward()
        opt.step()
    model.eval()
    return {k: v.clone() for k, v in model.state_dict().items()}


@pytest.fixture
def make_run(tmp_path, tiny_state):
    """Factory: ``make_run(name="run", arms=("baseline", "jpegdl"), **write_arm_kwargs) -> run folder``."""

    def factory(name: str = "run", arms: tuple[str, ...] = ("baseline", "jpegdl"), **kwargs) -> Path:
        run_dir = tmp_path / name
        for arm in arms:
            write_arm(run_dir, arm, state=tiny_state, **kwargs)
        return run_dir

    return factory


@pytest.fixture
def run_dir(make_run) -> Path:
    """A run folder with a baseline and a JPEG-DL arm of the over-fitted tiny model."""
    return make_run()


@pytest.fixture(scope="session")
def arm_writer():
    """The :func:`write_arm` helper, as a fixture (test modules cannot import conftest reliably)."""
    return write_arm
