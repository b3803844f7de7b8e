"""``jpeg-robust attack --save-adv``: the saved examples of the broken images, reloaded, are misclassified by the
deployed model exactly as the per-image records say."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from robustbench_jpeg import load_model
from robustbench_jpeg.cli import main
from robustbench_jpeg.runfolder import read_samples
from robustbench_jpeg.sweep.adversarial import ADVERSARIAL_DIR, ENCODINGS, load_adversarial


def test_saved_examples_reproduce_the_recorded_misclassifications(make_run, mini_test):
    run = make_run()
    args = ["attack", "--run", str(run), "--method", "pgd", "--eps", "2,8", "--steps", "2", "--grad", "soft,bpda",
            "--n-examples", "32", "--device", "cpu", "--no-progress", "--save-adv"]  # fmt: skip
    assert main(args) in (0, 3)
    results = pd.read_csv(run / "results.csv")
    samples = read_samples(run)
    attacked = results[results["attack"] == "pgd"]
    assert len(attacked) == 6  # baseline at 2 radii, JPEG-DL soft and BPDA at 2 radii
    saved_cells = 0
    for row in attacked.itertuples():
        clean = results[(results["attack"] == "clean") & (results["arm"] == row.arm) & (results["n"] == row.n)]
        broken = np.nonzero(samples[clean["cell_id"].iloc[0]] & ~samples[row.cell_id])[0]
        folder = run / ADVERSARIAL_DIR / row.cell_id
        if broken.size == 0:
            assert not folder.exists()
            continue
        indices, images, labels = load_adversarial(run, row.cell_id)
        by_iterate = np.concatenate([np.load(p)["broken_by_an_iterate"] for p in folder.glob("*.npz")])
        assert sorted(indices.tolist() + by_iterate.tolist()) == broken.tolist()  # every broken image accounted for
        assert {str(np.load(p)["encoding"]) for p in folder.glob("*.npz")} <= set(ENCODINGS)
        x = mini_test[0][indices].float() / 255
        assert torch.equal(labels, mini_test[1][indices].long())
        assert (images - x).abs().max() <= row.eps + 1e-6 and images.min() >= 0 and images.max() <= 1
        with torch.no_grad():
            assert (load_model(run / row.arm)(images).argmax(1) != labels).all()  # still misclassified, as recorded
        saved_cells += 1
    assert saved_cells >= 2
