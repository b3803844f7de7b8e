"""``robustbench_jpeg.evaluate``: a model the toolkit did not build, attacked into an ordinary run folder that the
report reads; resumable, and refusing other images in the same folder."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from robustbench_jpeg import evaluate
from robustbench_jpeg.attack import AttackSpec
from robustbench_jpeg.attack.crafting import attack_setting, run_attack
from robustbench_jpeg.runfolder import read_samples


class Outside(nn.Module):
    """Not from the toolkit's registry: a conv layer and a linear head on [0, 1] RGB."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(3)
        self.conv = nn.Conv2d(3, 4, 3, padding=1)
        self.head = nn.Linear(4 * 8 * 8, 10)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(nn.functional.avg_pool2d(torch.tanh(self.conv(x)), 4).flatten(1))


def test_evaluate_writes_a_run_folder_the_report_reads(tmp_path, mini_test):
    from robustbench_jpeg.report import build_report

    model = Outside().train()
    images = mini_test[0][:16]
    with torch.no_grad():
        labels = model.eval()(images.float() / 255).argmax(1)  # every image clean-correct
    labels[:3] = (labels[:3] + 1) % 10  # but three
    model.train()
    spec = AttackSpec(method="fgsm", eps=(8 / 255,), n_examples=16)
    out = tmp_path / "outside"
    table = evaluate(model, images, labels, spec=[spec], out=out)
    assert model.training and all(p.requires_grad for p in model.parameters())  # left as it was given

    clean = table[table["attack"] == "clean"].iloc[0]
    fgsm = table[table["attack"] == "fgsm"].iloc[0]
    assert clean["n_clean_correct"] == 13 and fgsm["n"] == 16
    samples = read_samples(out)
    x = images.float() / 255
    _, fooled = run_attack(model.eval(), x, labels, attack_setting("fgsm", "linf", 8 / 255))
    expected = (model(x).argmax(1) == labels) & ~fooled
    assert samples[fgsm["cell_id"]].tolist() == expected.tolist()
    assert 0 < expected.sum() < 13  # the attack broke some images and not all

    again = evaluate(model, images, labels, spec=[spec], out=out)
    assert list(again.attrs["computed"]) == []  # resumed: nothing to do
    with pytest.raises(ValueError, match="other test images"):
        evaluate(model, images.flip(0), labels, spec=[spec], out=out)

    build_report([out], tmp_path / "report")
    assert (tmp_path / "report" / "report.html").is_file()
    assert np.isclose(float(fgsm["robust_acc"]), expected.float().mean().item())
