"""Suite-wide test settings: CPU, one intra-op thread (small batches gain nothing from more, and OpenMP
spin-waits stall badly when a 2-core CI machine is shared by the test process and its helpers)."""

from __future__ import annotations

import pytest
import torch


@pytest.fixture(autouse=True, scope="session")
def _one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
