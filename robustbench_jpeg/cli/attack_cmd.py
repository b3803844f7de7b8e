"""``jpeg-robust attack``: run an attack sweep on a run folder (resumable) and print the cells and the checks.

Either ``--spec NAME|FILE`` (a versioned spec, see ``attacks/``) or ``--method`` with the attack flags. With
``--spec``, the attack-defining flags are refused (copy and edit the spec instead); ``--n-examples`` and ``--seed``
override the spec and make it a spec of its own (``NAME+n500``); ``--batch-size``, ``--device``, ``--data-dir`` and
``--arms`` only change how or where it runs.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import (
    EXIT_CHECK_FAILED,
    EXIT_INTERRUPTED,
    EXIT_PAUSED,
    EXIT_USAGE,
    Examples,
    positive_float,
    positive_int,
)

_ATTACK_FLAGS = (
    "eps",
    "steps",
    "step_size",
    "restarts",
    "random_start",
    "norm",
    "grad",
    "transfer_from",
    "params",
    "surrogate_alpha",
    "eval_alpha",
)
EXAMPLES = Examples(
    "jpeg-robust attack --run runs/r56-s0 --spec paper-pgd",
    "jpeg-robust attack --run runs/r56-s0 --spec autoattack --n-examples 1000",
    "jpeg-robust attack --run runs/r56-s0 --method pgd --eps 1,2,8/255 --steps 10 --grad soft,bpda",
)


def _grad_list(text: str) -> tuple[str, ...]:
    from ..attack.gradients import GRAD_MODES

    grads = tuple(g.strip() for g in text.split(",") if g.strip())
    bad = [g for g in grads if g not in GRAD_MODES]
    if bad or not grads:
        raise argparse.ArgumentTypeError(f"--grad takes a comma list of {', '.join(GRAD_MODES)}; got {text!r}")
    return grads


def _param(text: str) -> tuple[str, float]:
    name, sep, value = text.partition("=")
    try:
        number = float(value)
    except ValueError:
        number = None
    if not sep or not name.strip() or number is None:
        raise argparse.ArgumentTypeError(f"--param takes NAME=NUMBER (e.g. target_classes=9), got {text!r}")
    return name.strip(), int(number) if number.is_integer() else number


def add_parser(subparsers) -> None:
    p = subparsers.add_parser(
        "attack",
        help="attack the arms of a run folder (resumable sweep, sanity checks)",
        description="Attack every trained arm of a run folder with a spec (attacks/*.yaml) or one ad-hoc attack, "
        "store per-image results, and run the sanity checks (docs/attacks.md). L-inf radii are in 1/255 units "
        "(8) or fractions (8/255); L2 radii are absolute (0.5). Done cells are skipped on a rerun; an interrupted "
        "sweep resumes at the next cell.",
        epilog=EXAMPLES.text() + "\nexit status: 0 done, 2 bad input, 3 a sanity check failed (with --fail-on-check),"
        f" {EXIT_PAUSED} paused by --time-limit, 130 interrupted",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _add_what_to_attack(p)
    _add_attack_setting(p)
    _add_how_it_runs(p)
    _add_where_it_runs(p)
    p.set_defaults(handler=run)


def _add_what_to_attack(p: argparse.ArgumentParser) -> None:
    """The run folder, and a spec or one ad-hoc method."""
    from ..attack.methods import METHODS
    from ..attack.spec_files import list_specs

    p.add_argument(
        "--run",
        "--run-dir",
        dest="run",
        required=True,
        metavar="DIR",
        help="run folder made by `jpeg-robust train --out DIR` (under torchrun spell it --run-dir: "
        "torchrun's own parser takes --run)",
    )
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--spec", metavar="NAME|FILE", help=f"attack spec by name ({', '.join(list_specs())}) or path to a .yaml file"
    )
    which.add_argument("--method", choices=tuple(METHODS), help="one ad-hoc attack, configured by the flags below")


def _add_attack_setting(p: argparse.ArgumentParser) -> None:
    """The flags of an ad-hoc attack (a spec file sets the same fields)."""
    from ..attack.spec import DEFAULT_STEP_RULE

    p.add_argument("--norm", choices=("linf", "l2"), default=None, help="threat model (default linf)")
    p.add_argument(
        "--eps",
        default=None,
        metavar="LIST",
        help="comma list of radii: linf in 1/255 units or as fractions (1,2,8/255), l2 absolute (0.5)",
    )
    p.add_argument(
        "--steps",
        type=positive_int,
        default=None,
        help="iterations (queries for square); default per method: FGSM 1, PGD 20, APGD/FAB 100, Square 5000",
    )
    p.add_argument(
        "--step-size",
        default=None,
        metavar="SIZE|RULE",
        help=f"FGSM/PGD step: a number in eps units or a rule such as eps/4 (default {DEFAULT_STEP_RULE})",
    )
    p.add_argument("--restarts", type=positive_int, default=None, help="random restarts (default 1)")
    p.add_argument(
        "--random-start",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="PGD's uniform random start in the eps-ball (default on)",
    )
    _add_gradients_and_sources(p)


def _add_gradients_and_sources(p: argparse.ArgumentParser) -> None:
    """Gradient modes through a JPEG layer, alphas, method parameters and transfer sources."""
    from ..attack.gradients import GRAD_MODES
    from ..runfolder import ARMS

    p.add_argument(
        "--grad",
        type=_grad_list,
        default=None,
        help=f"gradient modes on arms with a JPEG layer: comma list of {', '.join(GRAD_MODES)} "
        "(default soft); see docs/attacks.md",
    )
    p.add_argument(
        "--surrogate-alpha",
        type=float,
        default=None,
        metavar="A",
        help="softness of the backward quantizer for --grad surrogate (e.g. 1.0)",
    )
    p.add_argument(
        "--eval-alpha",
        type=float,
        default=None,
        metavar="A",
        help="score and attack JPEG arms with this soft-quantizer alpha instead of the trained one (the "
        "official script's default was 1.0); kept apart from the corrected protocol",
    )
    p.add_argument(
        "--param",
        dest="params",
        action="append",
        type=_param,
        default=None,
        metavar="NAME=VALUE",
        help="a method parameter, e.g. target_classes=9 (APGD-T, FAB-T) or p_init=0.8 (Square); repeatable",
    )
    p.add_argument(
        "--transfer-from",
        choices=tuple(ARMS),
        default=None,
        metavar="ARM",
        help="craft on ARM's model and evaluate on the other arms",
    )


def _add_where_it_runs(p: argparse.ArgumentParser) -> None:
    """Device, data folder, numerics and the sitting's time limit."""
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu, cuda or cuda:N (default auto)")
    p.add_argument("--data-dir", default=None, help="CIFAR-100 folder (default: the run's config.json data_dir)")
    p.add_argument(
        "--tf32-crafting",
        action="store_true",
        help="craft with TF32 matmuls/convolutions on GPUs that have it; every score stays exact float32 (docs/gpu.md)",
    )
    p.add_argument(
        "--time-limit",
        type=positive_float,
        default=None,
        metavar="MIN",
        help=f"start no new cell after MIN minutes (finished cells are saved; exit status {EXIT_PAUSED}); the same "
        "command resumes at the next cell",
    )
    p.add_argument(
        "--channels-last",
        action="store_true",
        help="hold the models in channels_last memory layout: faster on CPUs at small batches (Square, APGD-T, FAB-T "
        "on the few images left standing); exact float32 with another summation order, so an image on the edge of "
        "a decision can come out differently (recorded in the rows' device)",
    )


def _add_how_it_runs(p: argparse.ArgumentParser) -> None:
    """Images, arms, engine, device and outputs: how the sweep runs, not what an attack is."""
    from ..attack.methods import DEFAULT_ENGINE, ENGINES
    from ..attack.spec import DEFAULT_BATCH_SIZE

    p.add_argument(
        "--n-examples",
        type=positive_int,
        default=None,
        metavar="N",
        help="the first N test images in test-set order (default: all)",
    )
    p.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        help=f"images per batch (default {DEFAULT_BATCH_SIZE}); FGSM/PGD results do not depend on it",
    )
    p.add_argument("--seed", type=int, default=None, help="attack seed (default 0)")
    p.add_argument(
        "--arms",
        default=None,
        metavar="A,B",
        help="attack only these arms (default: every trained arm; required when an arm has no card yet)",
    )
    p.add_argument(
        "--engine",
        choices=ENGINES,
        default=DEFAULT_ENGINE,
        help="autoattack: APGD/FAB/Square on AutoAttack's reference code, FGSM/PGD the toolkit's own loops (default);"
        ' torchattacks: every method on torchattacks (pip install "robustbench-jpeg[torchattacks]"); its cells are'
        " recorded as such (their own ids and labels), never mixed with the default engine's",
    )
    p.add_argument(
        "--save-adv",
        action="store_true",
        help="save the adversarial examples of the images each attack broke (RUN/adversarial/<cell id>/, uint8 where"
        " lossless enough, else float16; docs/run-format.md)",
    )
    p.add_argument(
        "--fail-on-check", action="store_true", help=f"exit with status {EXIT_CHECK_FAILED} when a sanity check fails"
    )
    p.add_argument(
        "--no-progress",
        action="store_true",
        help="no progress bar; one line per cell instead (also without a terminal)",
    )


def specs_from_args(args: argparse.Namespace):
    """The :class:`SpecFile` an ``attack`` command line asks for (raises ``AttackSpecError`` on bad input)."""
    import dataclasses

    from ..attack.spec import AttackSpec, AttackSpecError, SpecFile
    from ..attack.spec_files import load_spec

    if args.seed is not None and args.seed < 0:
        raise AttackSpecError(f"--seed must be >= 0, got {args.seed}")
    if args.spec:
        given = [f"--{f.replace('_', '-')}" for f in _ATTACK_FLAGS if getattr(args, f) is not None]
        if given:
            raise AttackSpecError(
                f"{', '.join(given)} cannot be combined with --spec (a spec fixes its attacks); copy the spec file, "
                "edit it and pass its path, or use --method"
            )
        return load_spec(args.spec).with_overrides(
            n_examples=args.n_examples, seed=args.seed, batch_size=args.batch_size
        )
    if args.eps is None:
        raise AttackSpecError("--method needs --eps (e.g. --eps 1,2,4,8 or 8/255 for linf)")
    data = {"method": args.method, "eps": args.eps}
    for name in (
        "norm",
        "steps",
        "step_size",
        "restarts",
        "random_start",
        "grad",
        "transfer_from",
        "n_examples",
        "batch_size",
        "seed",
        "surrogate_alpha",
        "eval_alpha",
    ):
        if getattr(args, name) is not None:  # everything else comes from the AttackSpec / method defaults
            data[name] = getattr(args, name)
    if args.params:
        data["params"] = dict(args.params)
    attack = AttackSpec.from_dict(data, where="command line")
    spec = SpecFile(name="cli", attacks=(attack,), version=1, description=attack.describe())
    return dataclasses.replace(spec, name=f"cli-{spec.hash[:8]}")


def format_table(df) -> str:
    """The cells of a sweep as a compact text table (accuracies in %)."""
    if df.empty:
        return "(no cells)"
    view = df.copy()
    view["eps"] = [
        "0" if a == "clean" else (f"{e * 255:.4g}/255" if nrm == "linf" else f"{e:.4g}")
        for a, nrm, e in zip(view["attack"], view["norm"], view["eps"].astype(float), strict=True)
    ]
    view["clean"] = (100 * view["clean_acc"].astype(float)).map("{:.2f}".format)
    view["robust"] = (100 * view["robust_acc"].astype(float)).map("{:.2f}".format)
    view["from"] = view["source_arm"]
    cols = ["arm", "attack", "norm", "eps", "steps", "restarts", "grad", "from", "n", "clean", "robust", "wall_s"]
    return view[cols].to_string(index=False)


def run(args: argparse.Namespace) -> int:
    import warnings

    from .. import distributed
    from ..attack.methods import engine, use_engine
    from ..device import tf32_crafting
    from ..runfolder.store import SweepLockedError
    from ..sweep import SanityCheckWarning, run_sweep
    from ..sweep.adversarial import saving_adversarial

    spec = specs_from_args(args)
    engine(args.engine)  # not installed: a one-line error now, before any model is loaded
    arms = tuple(a.strip() for a in args.arms.split(",") if a.strip()) if args.arms else None
    _record_start(args)
    try:  # under torchrun: every rank attacks its shard of each cell, rank 0 writes and reports
        with warnings.catch_warnings():  # the verdict is printed below
            warnings.simplefilter("ignore", SanityCheckWarning)
            with tf32_crafting(args.tf32_crafting), use_engine(args.engine), saving_adversarial(args.save_adv):
                table = run_sweep(
                    args.run,
                    spec,
                    device=args.device,
                    data_dir=args.data_dir,
                    progress=not args.no_progress,
                    arms=arms,
                    time_limit_s=None if args.time_limit is None else 60 * args.time_limit,
                    channels_last=args.channels_last,
                )
        main = distributed.is_main()
    except SweepLockedError as exc:
        print(f"jpeg-robust attack: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print(
            "interrupted; finished cells are saved. Run the same command again to resume at the next cell.",
            file=sys.stderr,
        )
        return EXIT_INTERRUPTED
    finally:
        distributed.cleanup()
    if not main:
        return 0
    return _report_outcome(table, args.fail_on_check)


def _record_start(args: argparse.Namespace) -> None:
    """Append the command to RUN/commands.txt as it starts (rank 0 only), so that a sweep stopped by a signal still
    names the command behind the cells it finished; a folder that is not a run folder is left to the sweep to refuse."""
    from .. import distributed
    from ..runfolder.folder import FolderKind, folder_kind
    from . import record_command

    if not distributed.launched_as_main() or not Path(args.run).is_dir():
        return
    try:
        if folder_kind(args.run) is not FolderKind.RUN:
            return
    except ValueError:  # ambiguous folder: the sweep says why
        return
    record_command(args.run, getattr(args, "argv", None))


def _report_outcome(table, fail_on_check: bool) -> int:
    """Print what the sweep computed, the checks and the masking status; return the exit status."""
    computed = set(table.attrs.get("computed", []))
    ran = table[table["cell_id"].astype(str).isin(computed)]
    print(
        f"spec {table.attrs['spec_name']} ({len(table)} cells: {len(ran)} computed now, "
        f"{len(table) - len(ran)} already done)"
    )
    print(format_table(ran if len(ran) else table))
    print()
    print(f"checks: {table.attrs['verdict']}")
    for check in table.attrs.get("checks", []):
        if check["status"] not in ("pass", "skip"):
            print(f"  {check['status'].upper()} {check['name']} [{check['arm']}]: {check['detail']}")
            if check["status"] == "fail":
                print(f"       -> {check['meaning']}")
    for arm, masking in table.attrs.get("masking", {}).items():
        print(f"masking of {arm}'s white-box numbers: {masking['status']} ({masking['reason']})")
    print(f"results: {table.attrs['results_path']}")
    if table.attrs.get("paused"):
        left = table.attrs["paused"]
        print(
            f"stopped by --time-limit with {left} cell(s) of the spec still to compute; run the same command again "
            f"to continue (exit status {EXIT_PAUSED})",
            file=sys.stderr,
        )
        return EXIT_PAUSED
    return EXIT_CHECK_FAILED if fail_on_check and table.attrs.get("status") == "FAIL" else 0
