"""The engines cross-checked: the toolkit's FGSM/PGD against torchattacks' (same starts, same steps), and the
``autoattack`` spec against AutoAttack's own ``run_standard_evaluation`` image by image."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from robustbench_jpeg.attack.crafting import attack_setting, run_attack
from robustbench_jpeg.attack.methods import use_engine
from robustbench_jpeg.jpeg import JpegConfig
from robustbench_jpeg.models import create_model

FLOAT_TOLERANCE = 1e-6


@pytest.fixture(scope="module")
def models():
    torch.manual_seed(0)
    plain = create_model("tiny").eval()
    jpeg = create_model("tiny", jpeg=JpegConfig(paper_table="resnet56")).eval()
    return {"plain": plain, "jpeg": jpeg}


@pytest.mark.parametrize(
    "method, norm, eps, random_start, grad",
    [
        ("fgsm", "linf", 4 / 255, False, "none"),
        ("fgsm", "linf", 8 / 255, False, "bpda"),
        ("pgd", "linf", 8 / 255, True, "none"),
        ("pgd", "linf", 4 / 255, False, "soft"),
        ("pgd", "linf", 8 / 255, True, "bpda"),
        ("pgd", "l2", 0.5, True, "none"),
        ("pgd", "l2", 0.25, False, "soft"),
    ],
)
def test_toolkit_fgsm_and_pgd_equal_torchattacks(models, mini_test, method, norm, eps, random_start, grad):
    pytest.importorskip("torchattacks")
    model = models["plain" if grad == "none" else "jpeg"]
    x = mini_test[0][:12].float() / 255
    with torch.no_grad():  # labels the model gets right, so every image is attacked (a fooled one is returned as is)
        y = model(x).argmax(dim=1)
    setting = attack_setting(method, norm, eps, steps=5, step_size=eps / 4, random_start=random_start, grad=grad)
    results = {}
    for engine in ("autoattack", "torchattacks"):
        with use_engine(engine):
            results[engine] = run_attack(model, x, y, setting, seed=7)
    (ours, our_fooled), (theirs, their_fooled) = results["autoattack"], results["torchattacks"]
    assert not torch.equal(ours, x)  # the attack moved the images
    torch.testing.assert_close(ours, theirs, atol=FLOAT_TOLERANCE, rtol=0)
    assert torch.equal(our_fooled, their_fooled)


@pytest.mark.slow
def test_autoattack_spec_has_the_robust_set_of_the_reference_autoattack(make_run, mini_test):
    """The sweep's ``autoattack`` chain (APGD-CE, APGD-T, FAB-T, Square-5000 on the survivors) and
    ``pyautoattack.AutoAttack(version="standard")`` on the same model, images and seed: the same robust images."""
    pyautoattack = pytest.importorskip("pyautoattack")
    from robustbench_jpeg.attack import load_spec
    from robustbench_jpeg.checkpoint import load_model
    from robustbench_jpeg.runfolder import read_samples
    from robustbench_jpeg.sweep import run_sweep

    n, eps = 16, 2 / 255
    run_dir = make_run(arms=("baseline",))
    spec = load_spec("autoattack").with_overrides(n_examples=n, batch_size=n)
    spec = dataclasses.replace(
        spec, name="autoattack-eps2", attacks=tuple(dataclasses.replace(a, eps=(eps,)) for a in spec.attacks)
    )
    table = run_sweep(run_dir, spec, progress=False)
    samples = read_samples(run_dir)
    last = table[table["attack"] == "square"]
    assert len(last) == 1 and int(last["attack_seed"].iloc[0]) == 0
    ours = samples[last["cell_id"].iloc[0]]

    model = load_model(run_dir / "baseline", torch.device("cpu"))
    x, y = mini_test[0][:n].float() / 255, mini_test[1][:n].long()
    reference = pyautoattack.AutoAttack(model, norm="Linf", eps=eps, version="standard", seed=0, device="cpu")
    _, y_adv = reference.run_standard_evaluation(x, y, batch_size=n)
    theirs = (y_adv == y).numpy()
    assert 0 < theirs.sum() < (model(x).argmax(1) == y).sum()  # some images broken, some standing
    assert ours.tolist() == theirs.tolist()


def test_results_record_which_engine_computed_a_cell(make_run):
    torchattacks = pytest.importorskip("torchattacks")
    import pandas as pd

    from robustbench_jpeg.cli import main

    common = ["--method", "fgsm", "--n-examples", "16", "--device", "cpu", "--no-progress", "--arms", "baseline"]
    default_run, other_run = make_run("default"), make_run("other")
    assert main(["attack", "--run", str(default_run), "--eps", "2", *common]) in (0, 3)
    assert main(["attack", "--run", str(other_run), "--eps", "2", "--engine", "torchattacks", *common]) in (0, 3)
    engines = {}
    for run in (default_run, other_run):
        rows = pd.read_csv(run / "results.csv", dtype=str)
        engines[run.name] = set(rows.loc[rows["attack"] == "fgsm", "torchattacks"])
    assert engines == {"default": {"not used"}, "other": {torchattacks.__version__}}
