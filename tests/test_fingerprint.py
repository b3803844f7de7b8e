"""The weights fingerprint is computed from one flattened host copy of the model and equals, digit for digit, the
per-tensor definition it replaced (so cards and results written before still match)."""

from __future__ import annotations

import hashlib

import torch

from robustbench_jpeg.checkpoint import weights_fingerprint
from robustbench_jpeg.jpeg import JpegConfig
from robustbench_jpeg.models import create_model


def _per_tensor_fingerprint(model: torch.nn.Module) -> str:
    """The definition tensor by tensor: one host copy each."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        t = tensor.detach().cpu().contiguous()
        digest.update(f"{name}:{t.dtype}:{tuple(t.shape)}".encode())
        digest.update(t.reshape(-1).view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    return digest.hexdigest()[:16]


def test_fingerprint_equals_the_per_tensor_definition(device):
    torch.manual_seed(0)
    model = create_model("tiny", jpeg=JpegConfig()).to(device)
    model.register_buffer("empty", torch.zeros(0, device=device))  # empty, bool, 0-dim and other dtypes too
    model.register_buffer("flags", torch.tensor([True, False, True], device=device))
    model.register_buffer("scalar", torch.tensor(7, dtype=torch.int64, device=device))
    model.register_buffer("bf16_transposed", torch.rand(3, 5, device=device).to(torch.bfloat16).t())  # not contiguous
    assert weights_fingerprint(model) == _per_tensor_fingerprint(model)
    before = weights_fingerprint(model)
    with torch.no_grad():
        next(model.parameters()).view(-1)[0] += 1
    assert weights_fingerprint(model) != before
