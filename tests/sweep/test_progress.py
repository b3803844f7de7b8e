"""The sweep's progress bar moves during a cell: once per batch and restart, with the cell's label."""

from __future__ import annotations

import re
import sys

import pytest
import tqdm.auto

from robustbench_jpeg.attack.spec import AttackSpec, SpecFile
from robustbench_jpeg.sweep import run_sweep

N, BATCH, RESTARTS = 24, 12, 3


class RecordingBar:
    """Stands in for tqdm: records every update and postfix."""

    made: list[RecordingBar] = []

    def __init__(self, total=None, disable=False, **kwargs):
        self.total, self.disable, self.updates, self.postfixes = total, disable, [], []
        RecordingBar.made.append(self)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def update(self, n=1):
        self.updates.append(n)

    def set_postfix_str(self, text, refresh=True):
        self.postfixes.append(text)


def test_the_bar_moves_once_per_batch_and_restart(run_dir, monkeypatch):
    monkeypatch.setattr(tqdm.auto, "tqdm", RecordingBar)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    RecordingBar.made.clear()
    spec = SpecFile(
        name="restarts",
        version=1,
        description="test",
        attacks=(AttackSpec(method="pgd", eps=(8 / 255,), steps=1, restarts=RESTARTS, n_examples=N, batch_size=BATCH),),
    )
    table = run_sweep(run_dir, spec, progress=True)
    (bar,) = RecordingBar.made
    assert not bar.disable
    batches = N // BATCH
    attacked = int((table["eps"] > 0).sum())  # the cells that attack; the others are clean evaluations
    assert attacked >= 2 and len(table) > attacked
    assert bar.total == attacked * batches * RESTARTS + (len(table) - attacked) * batches
    assert sum(bar.updates) == bar.total
    # every restart of every attacked batch is one visible step, labelled with its cell and restart
    marks = [re.search(r"restart (\d+)/(\d+)$", p) for p in bar.postfixes]
    assert {m.group(0) for m in marks if m} == {f"restart {r}/{RESTARTS}" for r in range(1, RESTARTS + 1)}
    assert all("pgd" in p.lower() for p, m in zip(bar.postfixes, marks, strict=True) if m)


@pytest.mark.parametrize("restarts", [1, 4])
def test_units_per_batch(restarts):
    from robustbench_jpeg.sweep.compute import progress_units
    from robustbench_jpeg.sweep.plan import ArmInfo, plan_cells

    spec = AttackSpec(method="pgd", eps=(0.0, 8 / 255), steps=1, restarts=restarts, n_examples=N, batch_size=BATCH)
    arms = {"baseline": ArmInfo("baseline", "tiny", "cifar100-mini", 0, False)}
    cells = plan_cells(spec, arms, test_size=N)
    units = {(c.is_clean, c.setting.eps > 0): progress_units(c) for c in cells}
    assert units[(False, True)] == restarts
    assert all(u == 1 for key, u in units.items() if key != (False, True))
