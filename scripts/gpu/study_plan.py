"""Plan a study sitting on a remote GPU reached through per-command limits, and check it before spending GPU time.

A remote GPU of the kind this study is planned for takes one shell command at a time over a copy of the repository
and gives back a few files. Its limits (``Limits``, docs/gpu.md) shape the study:

* what travels with a command (the tracked tree + carried, git-ignored paths) is at most 64 MiB, so the data
  (CIFAR-100 packed losslessly: about 104 MB) and the checkpoints of the six resnet56 models (about 7 MB each)
  travel in **parts** over back-to-back commands, each copied into ``/tmp/stage`` on the machine, and the last
  command unpacks and trains;
* at most 8 files come back, 16 MiB each, 64 MiB together, no more than two folders deep: one tarball per model
  arm (``<run>-<arm>.tgz``), the log and a summary;
* a command runs at most 10 minutes and a sitting has about 15 minutes of device time, machine start included.

``python scripts/gpu/study_plan.py --data DIR [--checkpoints DIR] [--write]`` prints the sitting (each command:
what it carries, its size against the limit, its device time) and exits 1 when a command would not fit;
``--write`` copies each command's files into ``.study/part-K/`` (git-ignored). ``--dry-run`` first trains the
study's models for a moment on this machine's CPU through ``scripts/gpu/train_chunk.sh`` and checks the files that
come back and the parts that would carry them (``tests/test_study_plan.py``).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
MiB = 2**20
TREE_BUDGET_BYTES = 20_000_000  # the tracked tree; tests/test_repository_size.py holds the repository to it
STAGE = "/tmp/stage"
NAME_OK = re.compile(r"^[A-Za-z0-9._-]+$")


@dataclass(frozen=True)
class Limits:
    """What one command may carry and return, and the device time of a sitting (seconds; start and call overhead
    are estimates until measured on the machine)."""

    carry_bytes: int = 64 * MiB
    file_back_bytes: int = 16 * MiB
    files_back: int = 8
    back_total_bytes: int = 64 * MiB
    command_s: int = 600
    device_s: int = 900
    start_s: int = 120
    call_overhead_s: int = 30
    pack_s: int = 30
    margin_s: int = 60


@dataclass(frozen=True)
class Command:
    """One command of a sitting: the files it carries (in ``.study/part-K``), their bytes, its device seconds."""

    name: str
    files: tuple[Path, ...]
    carry_bytes: int
    device_s: int  # the call's share of the sitting's device time (start, transfer, run)
    run_s: int  # how long the command itself runs, at most
    shell: str


def tracked_tree_bytes(root: Path = ROOT) -> int:
    """Bytes of the tracked files as they are in the working tree (what travels with every command)."""
    listed = subprocess.run(["git", "ls-files", "-z"], cwd=root, capture_output=True, check=True).stdout
    paths = [root / p for p in listed.decode().split("\0") if p]
    return sum(p.stat().st_size for p in paths if p.is_file())


def split_into_parts(files: list[Path], capacity: int) -> list[list[Path]]:
    """First-fit decreasing: as few parts as possible, each at most ``capacity`` bytes. A file larger than a part
    is an error naming it (split it first, e.g. ``split -b``)."""
    parts: list[list[Path]] = []
    room: list[int] = []
    for f in sorted(files, key=lambda p: (-p.stat().st_size, p.name)):
        size = f.stat().st_size
        if size > capacity:
            raise SystemExit(f"study_plan: {f} ({size / MiB:.1f} MiB) is larger than a part ({capacity / MiB:.1f} MiB)")
        k = next((i for i, r in enumerate(room) if r >= size), None)
        if k is None:
            parts.append([])
            room.append(capacity)
            k = len(parts) - 1
        parts[k].append(f)
        room[k] -= size
    return parts


def plan_sitting(files: list[Path], tree_bytes: int, limits: Limits, minutes_cmd: str) -> list[Command]:
    """The commands of one sitting: parts copied to ``/tmp/stage``, the last one also unpacks and trains."""
    capacity = limits.carry_bytes - max(tree_bytes, TREE_BUDGET_BYTES)
    parts = split_into_parts(files, capacity)
    staging = len(parts) * limits.call_overhead_s
    train_s = limits.device_s - limits.start_s - staging - limits.pack_s - limits.margin_s
    train_s = min(train_s, limits.command_s - limits.pack_s - limits.margin_s)
    commands = []
    for k, part in enumerate(parts, 1):
        copy = f"mkdir -p {STAGE} && cp .study/part-{k}/* {STAGE}/"
        last = k == len(parts)
        shell = f"{copy} && {minutes_cmd.format(minutes=round(train_s / 60, 1))}" if last else copy
        run_s = train_s + limits.pack_s if last else 0
        seconds = limits.call_overhead_s + run_s + (limits.start_s if k == 1 else 0)
        size = sum(f.stat().st_size for f in part)
        commands.append(Command(f"part-{k}", tuple(part), size, seconds, run_s, shell))
    return commands


def carry_problems(commands: list[Command], tree_bytes: int, limits: Limits) -> list[str]:
    """Each command's carried bytes with the tree, its run time, and the sitting's device time, against the limits."""
    limit = f"{limits.carry_bytes / MiB:.0f} MiB"
    problems = [
        f"{c.name}: tree {tree_bytes / MiB:.1f} MiB + part {c.carry_bytes / MiB:.1f} MiB > {limit}"
        for c in commands
        if tree_bytes + c.carry_bytes > limits.carry_bytes
    ]
    problems += [f"{c.name}: runs {c.run_s} s > {limits.command_s} s" for c in commands if c.run_s > limits.command_s]
    total = sum(c.device_s for c in commands)
    if total > limits.device_s:
        problems.append(f"the sitting needs {total} s of device time > {limits.device_s} s")
    if commands and commands[-1].run_s <= limits.pack_s:
        problems.append("no device time is left to train after staging: carry less per sitting")
    return problems


def returned_problems(out: Path, limits: Limits) -> list[str]:
    """Every file under ``out`` against what comes back: count, size each and together, depth, names."""
    files = [p for p in out.rglob("*") if p.is_file()]
    problems = [f"{len(files)} files > {limits.files_back}"] if len(files) > limits.files_back else []
    for p in files:
        rel = p.relative_to(out)
        if p.stat().st_size > limits.file_back_bytes:
            problems.append(f"{rel}: {p.stat().st_size / MiB:.1f} MiB > {limits.file_back_bytes / MiB:.0f} MiB")
        if len(rel.parts) > 3 or not all(NAME_OK.match(n) for n in rel.parts):
            problems.append(f"{rel}: too deep or a name outside [A-Za-z0-9._-]")
    total = sum(p.stat().st_size for p in files)
    if total > limits.back_total_bytes:
        problems.append(f"{total / MiB:.1f} MiB back in all > {limits.back_total_bytes / MiB:.0f} MiB")
    return problems


def last_command(attack: bool) -> str:
    """The last command's work: a training sitting, or the attacks and the report; with this checkout's commit (a
    copy of the repository without .git records it from RBJ_GIT_SHA)."""
    sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    script = "attack_and_report.sh" if attack else "study_sitting.sh {minutes}"
    return f"RBJ_GIT_SHA={sha or 'unknown'} bash scripts/gpu/{script}"


def describe(commands: list[Command], tree_bytes: int, limits: Limits) -> str:
    lines = [f"tracked tree {tree_bytes / MiB:.1f} MiB (budget {TREE_BUDGET_BYTES / 1e6:.0f} MB)"]
    for c in commands:
        lines.append(
            f"{c.name}: carries .study/{c.name} ({len(c.files)} files, {c.carry_bytes / MiB:.1f} MiB) "
            f"+ tree = {(c.carry_bytes + tree_bytes) / MiB:.1f} of {limits.carry_bytes / MiB:.0f} MiB, "
            f"~{c.device_s} s of device time: {c.shell}"
        )
        lines += [f"    {f.name} ({f.stat().st_size / MiB:.1f} MiB)" for f in c.files]
    lines.append(f"sitting: {sum(c.device_s for c in commands)} of {limits.device_s} s of device time")
    return "\n".join(lines)


def write_parts(commands: list[Command], root: Path = ROOT) -> None:
    study = root / ".study"
    shutil.rmtree(study, ignore_errors=True)
    for c in commands:
        (study / c.name).mkdir(parents=True)
        for f in c.files:
            shutil.copy2(f, study / c.name / f.name)


def dry_run(model: str, limits: Limits, keep: Path) -> tuple[list[Path], list[str]]:
    """Train the study's models for a moment on the CPU with the sitting script and check what it returns (in
    ``keep/out``); the returned per-arm tarballs are what the next sitting carries."""
    out, work = keep / "out", keep / "work"
    out.mkdir(parents=True)
    work.mkdir()
    env = dict(os.environ, OUT=str(out), MODEL=model, DATASET="cifar100-mini", TRAIN_SUBSET="256", RUNS=str(work))
    env["STAGE"] = str(keep / "stage")  # nothing staged: the first sitting
    env["PYTHONPATH"] = str(ROOT) + os.pathsep + env.get("PYTHONPATH", "")
    done = subprocess.run(["bash", str(ROOT / "scripts/gpu/study_sitting.sh"), "0.002"], env=env, cwd=ROOT)
    problems = [f"study_sitting.sh exit status {done.returncode}"] if done.returncode else []
    problems += returned_problems(out, limits)
    tarballs = sorted(out.glob("*.tgz"))
    if len(tarballs) != 6:
        problems.append(f"{len(tarballs)} per-arm tarballs came back, expected 6 (3 seeds x 2 arms)")
    return tarballs, problems


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--data", type=Path, help="folder of the packed data files to carry")
    p.add_argument("--check-returned", type=Path, metavar="OUT", help="only check the files in OUT against the limits")
    p.add_argument("--checkpoints", type=Path, help="folder of per-arm tarballs returned by the last sitting")
    p.add_argument("--dry-run", action="store_true", help="train for a moment on this CPU first and use its tarballs")
    p.add_argument("--model", default="resnet56", help="model of the dry run (default resnet56)")
    p.add_argument("--work", type=Path, help="folder of the dry run's runs and returned files (default: a new temp)")
    p.add_argument("--write", action="store_true", help="copy each command's files into .study/part-K/")
    p.add_argument("--attack", action="store_true", help="the last command attacks and reports instead of training")
    args = p.parse_args(argv)
    limits, problems = Limits(), []
    if args.check_returned:
        problems = returned_problems(args.check_returned, limits)
        print("\n".join(f"PROBLEM: {line}" for line in problems) or f"{args.check_returned}: every file can come back")
        return 1 if problems else 0
    if args.data is None or not args.data.is_dir():
        print(f"study_plan: --data {args.data} is not a folder; give the folder of packed data files", file=sys.stderr)
        return 2
    files = sorted(f for f in args.data.iterdir() if f.is_file())
    if args.dry_run:
        work = args.work or Path(tempfile.mkdtemp(prefix="study-dry-"))
        tarballs, problems = dry_run(args.model, limits, work)
        files += tarballs
    elif args.checkpoints:
        files += sorted(args.checkpoints.glob("*.tgz"))
    tree = tracked_tree_bytes()
    commands = plan_sitting(files, tree, limits, last_command(args.attack))
    print(describe(commands, tree, limits))
    problems += carry_problems(commands, tree, limits)
    if args.write:
        write_parts(commands)
    for line in problems:
        print(f"PROBLEM: {line}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
