"""Suite-wide test settings.

* One intra-op thread (small batches gain nothing from more, and OpenMP spin-waits stall badly when a 2-core CI
  machine is shared by the test process and its helpers): the only thread-pinning fixture of the suite.
* ``device``: the device the device-relevant tests (JPEG layer, model zoo, crafting) run on. CPU by default;
  ``pytest --device cuda`` (or ``RBJ_TEST_DEVICE=cuda``) runs the same tests on a GPU, and skips them with a reason
  when none is there. Nothing in the suite needs a GPU.
"""

from __future__ import annotations

import os

import pytest
import torch


def pytest_addoption(parser):
    parser.addoption(
        "--device",
        default=os.environ.get("RBJ_TEST_DEVICE", "cpu"),
        help="device for the device-relevant tests: cpu (default) or cuda (env RBJ_TEST_DEVICE)",
    )


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)


@pytest.fixture(scope="session")
def device(request) -> torch.device:
    name = request.config.getoption("--device")
    if name.startswith("cuda") and not torch.cuda.is_available():
        pytest.skip(f"--device {name} asked for, but no CUDA GPU is available")
    return torch.device(name)
