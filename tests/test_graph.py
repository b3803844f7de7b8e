"""The graph-ready training step (train/graph.py): on static buffers it is the eager trainer's step, bit for bit.

CUDA graph capture needs a GPU. On the CPU the same step code runs eagerly, and its warm-up / capture / replay /
recapture / ragged-batch logic runs with the capture replaced by an emulator that records the step's body without
running it and runs it on every replay. The last test runs the real capture (``pytest --device cuda``).
"""

from __future__ import annotations

import dataclasses
import warnings
from pathlib import Path

import pytest
import torch

import robustbench_jpeg.train as train_module
import robustbench_jpeg.train.pair  # noqa: F401  (the module whose data loading the fixture patches)
from robustbench_jpeg.checkpoint import load_checkpoint
from robustbench_jpeg.config import RunOptions, TrainConfig
from robustbench_jpeg.data import load_split
from robustbench_jpeg.jpeg import JpegConfig
from robustbench_jpeg.train.graph import WARMUP_STEPS, graph_unavailable, set_capturable

N = 200  # three full batches of 64 and a ragged one of 8
OPTIONS = RunOptions(device="cpu", progress=False, checkpoint_every_s=0)
# Three epochs with milestones (1, 2): epoch 1 is warm-up, then one capture per learning rate (0.005, 0.0005). The
# emulated and the real (CUDA) capture tests both assert this count, so they cannot drift apart.
CAPTURES_IN_THREE_EPOCHS = 2


def _config(**kwargs) -> TrainConfig:
    defaults = dict(model="tiny", dataset="cifar100-mini", epochs=3, batch_size=64, seed=5, milestones=(1, 2))
    defaults.update(kwargs)
    return train_module.resolve_config(TrainConfig(**defaults))


def _data(device: torch.device | str = "cpu"):
    images, labels = load_split("cifar100-mini", train=True)
    test = load_split("cifar100-mini", train=False)
    return (images[:N].to(device), labels[:N].to(device)), (test[0][:100].to(device), test[1][:100].to(device))


class Emulator:
    """Stands in for CUDA graph capture: recording runs nothing (capture records kernels without running them) and
    returns a replayable that runs the body on every replay with the learning rates frozen at recording time (in a
    captured optimiser step they are kernel constants)."""

    def __init__(self) -> None:
        self.recorded = 0
        self.replays = 0
        self.trainer = None

    def __call__(self, body):
        self.recorded += 1
        emulator = self
        groups = [g for opt in (self.trainer.optimizer, self.trainer.jpeg_optimizer) if opt for g in opt.param_groups]
        frozen = [g["lr"] for g in groups]

        class Replay:
            def replay(self) -> None:
                emulator.replays += 1
                current = [g["lr"] for g in groups]
                for g, lr in zip(groups, frozen, strict=True):
                    g["lr"] = lr
                body()
                for g, lr in zip(groups, current, strict=True):
                    g["lr"] = lr

        return Replay()


def _emulate(trainer) -> Emulator:
    emulator = Emulator()
    emulator.trainer = trainer
    trainer.use_static_step(recorder=emulator)
    return emulator


def _train(arm: str, static: bool | Emulator, epochs: int = 3, options: RunOptions = OPTIONS, device="cpu", **config):
    train, test = _data(device)
    trainer = train_module.ArmTrainer(
        _config(epochs=epochs, **config), options, arm, Path("unused"), torch.device(device), n_train=N
    )
    if isinstance(static, Emulator):
        static.trainer = trainer
        trainer.use_static_step(recorder=static)
    elif static:
        trainer.use_static_step()
    for _ in range(epochs):
        trainer.train_epoch(train)
        trainer.finish_epoch(test)
    return trainer


def _assert_same_training(a, b, loss_rel: float = 0.0) -> None:
    """Same history (the loss to ``loss_rel``), and every weight, buffer and optimiser state bit for bit."""
    strip = [{k: v for k, v in row.items() if k not in ("seconds", "loss")} for row in a.progress.history]
    assert strip == [{k: v for k, v in row.items() if k not in ("seconds", "loss")} for row in b.progress.history]
    for row_a, row_b in zip(a.progress.history, b.progress.history, strict=True):
        assert row_a["loss"] == pytest.approx(row_b["loss"], rel=loss_rel, abs=0.0)
    sa, sb = a.model.state_dict(), b.model.state_dict()
    assert sa.keys() == sb.keys()
    for key in sa:  # weights, BatchNorm statistics and counters, the JPEG tables
        assert torch.equal(sa[key], sb[key]), key
    for opt_a, opt_b in ((a.optimizer, b.optimizer), (a.jpeg_optimizer, b.jpeg_optimizer)):
        if opt_a is None:
            assert opt_b is None
            continue
        state_a, state_b = opt_a.state_dict()["state"], opt_b.state_dict()["state"]
        assert state_a.keys() == state_b.keys()
        for i in state_a:
            for k in state_a[i]:
                assert torch.equal(torch.as_tensor(state_a[i][k]), torch.as_tensor(state_b[i][k])), (i, k)


AT_BOUND = JpegConfig(q_init="constant", q_constant=1e-5)  # tables at their lower bound: project_() clamps


@pytest.mark.parametrize(
    "arm, jpeg",
    [("baseline", None), ("jpegdl", None), ("jpegdl", AT_BOUND)],
    ids=["baseline", "jpegdl", "jpegdl-tables-at-bound"],
)
def test_static_step_equals_the_eager_trainer_bit_for_bit(arm, jpeg):
    """Three epochs, two learning-rate milestones, a ragged last batch: losses, accuracies, every weight, buffer and
    optimiser state identical (with emulated capture too)."""
    extra = {"jpeg": jpeg} if jpeg else {}
    eager = _train(arm, static=False, **extra)
    static = _train(arm, static=True, **extra)
    assert static.static is not None and static.static.captures == 0
    _assert_same_training(eager, static)
    _assert_same_training(eager, _train(arm, static=Emulator(), **extra))
    assert eager.progress.history[0]["loss"] != eager.progress.history[2]["loss"]  # it did train
    if jpeg is AT_BOUND:  # the projection mattered: some steps sit exactly on the bound
        assert (eager.model.jpeg.q_luma == 1e-5).any() and (eager.model.jpeg.q_luma > 1e-5).any()


def test_capture_logic_warms_up_captures_once_per_learning_rate_and_replays():
    emulator = Emulator()
    eager = _train("jpegdl", static=False)
    graphed = _train("jpegdl", static=emulator)
    _assert_same_training(eager, graphed)
    step = graphed.static
    assert step.eager_full_steps == WARMUP_STEPS  # then only replays (and the eager ragged batches)
    assert emulator.recorded == step.captures == CAPTURES_IN_THREE_EPOCHS
    full_steps = 3 * (N // 64)
    assert emulator.replays == full_steps - WARMUP_STEPS


def test_static_step_resumes_mid_epoch_to_the_same_weights(tmp_path):
    """Paused after one step (checkpoint), resumed by a new trainer with the graph-ready step: the same weights. The
    epoch's loss is summed in float32 on the device and folded into a float64 at each checkpoint, so an epoch cut in
    two stretches sums in another order: its mean loss agrees to float32 rounding."""
    straight = _train("jpegdl", static=Emulator(), epochs=2)
    train, test = _data()
    config = _config(epochs=2)
    first = train_module.ArmTrainer(config, OPTIONS, "jpegdl", tmp_path / "jpegdl", torch.device("cpu"), n_train=N)
    _emulate(first)
    assert first.train_epoch(train, deadline=0.0) is False  # out of time after the first step
    assert load_checkpoint(tmp_path / "jpegdl")["step"] == 1
    second = train_module.ArmTrainer(config, OPTIONS, "jpegdl", tmp_path / "jpegdl", torch.device("cpu"), n_train=N)
    second.load(load_checkpoint(tmp_path / "jpegdl"))
    _emulate(second)
    for _ in range(2):
        assert second.train_epoch(train)
        second.finish_epoch(test)
    _assert_same_training(straight, second, loss_rel=1e-6)


def test_cuda_graph_option_falls_back_to_eager_on_cpu_with_a_warning(small_data_200, tmp_path):
    config = TrainConfig(model="tiny", dataset="cifar100-mini", epochs=1, batch_size=64, seed=2, arms=("jpegdl",))
    with pytest.warns(train_module.CudaGraphFallbackWarning, match="need a CUDA device.*cpu.*training eagerly"):
        train_module.train_pair(config, tmp_path / "graph", RunOptions(device="cpu", progress=False, cuda_graph=True))
    with warnings.catch_warnings():
        warnings.simplefilter("error", train_module.CudaGraphFallbackWarning)  # no warning without the option
        train_module.train_pair(config, tmp_path / "eager", OPTIONS)
    a = load_checkpoint(tmp_path / "graph" / "jpegdl")["model"]
    b = load_checkpoint(tmp_path / "eager" / "jpegdl")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)


def test_graph_unavailable_says_why():
    cuda = torch.device("cuda")
    assert "cpu" in graph_unavailable(torch.device("cpu"), False, False)
    assert "DistributedDataParallel" in graph_unavailable(cuda, True, False)
    assert "compile" in graph_unavailable(cuda, False, True)
    assert graph_unavailable(cuda, False, False) is None


def test_set_capturable_follows_the_sitting_not_the_checkpoint():
    """A checkpoint's Adam param groups carry the saver's ``capturable``; the loading run sets its own."""
    table = torch.nn.Parameter(torch.ones(8, 8))
    adam = torch.optim.Adam([table], lr=0.1)
    table.grad = torch.ones(8, 8)
    adam.step()
    saved = adam.state_dict()
    saved["param_groups"][0]["capturable"] = True  # as a CUDA graph sitting saves it
    resumed = torch.optim.Adam([table], lr=0.1)
    resumed.load_state_dict(saved)
    set_capturable(resumed, False)
    assert resumed.param_groups[0]["capturable"] is False
    step = resumed.state[table]["step"]
    assert step.device.type == "cpu" and step.dtype == torch.float32 and float(step) == 1.0
    resumed.step()  # runs in the eager mode it was set to
    assert float(resumed.state[table]["step"]) == 2.0


@pytest.fixture
def small_data_200(monkeypatch):
    def small(name, train, data_dir=None, download=False):
        images, labels = load_split(name, train, data_dir, download)
        n = N if train else 100
        return images[:n].clone(), labels[:n].clone()

    monkeypatch.setattr(train_module.pair, "load_split", small)


def test_captured_step_follows_the_eager_step_on_cuda(device):
    """Real CUDA graph capture (``pytest --device cuda``; skipped on the CPU): fp32 (amp off) so graph and eager
    run the same kernels; the Adam step differs in rounding only (capturable: bias correction in float32 on the
    device instead of float64 on the host), hence a tolerance rather than equality."""
    if device.type != "cuda":
        pytest.skip("CUDA graph capture needs a GPU (run with --device cuda)")
    options = RunOptions(device=str(device), progress=False, checkpoint_every_s=0, amp="off", channels_last=False)
    eager = _train("jpegdl", static=False, options=options, device=device)
    graphed = _train("jpegdl", static=False, options=dataclasses.replace(options, cuda_graph=True), device=device)
    assert graphed.captures and graphed.static.captures == CAPTURES_IN_THREE_EPOCHS
    for a, b in zip(eager.progress.history, graphed.progress.history, strict=True):
        assert a["loss"] == pytest.approx(b["loss"], rel=1e-4)
    sa, sb = eager.model.state_dict(), graphed.model.state_dict()
    for key in sa:
        assert torch.allclose(sa[key].float(), sb[key].float(), rtol=1e-3, atol=1e-4), key


@pytest.mark.parametrize("static", ["eager", "static", "emulated"])
def test_a_non_finite_loss_stops_the_static_step_as_the_eager_one(static):
    """The all-finite flag is accumulated on the device by the captured step as by the eager one."""
    train, _ = _data()
    trainer = train_module.ArmTrainer(
        _config(lr=1e30), OPTIONS, "baseline", Path("unused"), torch.device("cpu"), n_train=N
    )
    if static == "static":
        trainer.use_static_step()
    elif static == "emulated":
        _emulate(trainer)
    with pytest.raises(train_module.NonFiniteLossError, match="NaN or infinite"):
        trainer.train_epoch(train)
