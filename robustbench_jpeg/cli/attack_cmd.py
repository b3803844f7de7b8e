"""``jpeg-robust attack``: run an attack sweep on a run folder (resumable) and print the cells and the checks.

Either ``--spec NAME|FILE`` (a versioned spec from ``attacks/``) or ``--method fgsm|pgd`` with the attack flags.
With ``--spec``, the attack-defining flags (``--eps``, ``--steps``, ``--step-size``, ``--restarts``,
``--random-start``, ``--norm``, ``--grad``, ``--transfer-from``) are refused (edit a copy of the spec instead);
``--n-examples`` and ``--seed`` override the spec and make it a spec of its own (``NAME+n500``), ``--batch-size``,
``--device`` and ``--data-dir`` only change how it runs.
"""

from __future__ import annotations

import argparse

_ATTACK_FLAGS = ("eps", "steps", "step_size", "restarts", "random_start", "norm", "grad", "transfer_from")


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return value


def _eps_list(text: str) -> list[float]:
    try:
        values = [float(v) for v in text.split(",") if v.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"--eps must be a comma list of numbers, e.g. 1,2,4,8; got {text!r}") from None
    if not values:
        raise argparse.ArgumentTypeError("--eps needs at least one radius")
    return values


def _grad_list(text: str) -> tuple[str, ...]:
    from ..attack.spec import GRAD_MODES

    grads = tuple(g.strip() for g in text.split(",") if g.strip())
    bad = [g for g in grads if g not in GRAD_MODES]
    if bad or not grads:
        raise argparse.ArgumentTypeError(f"--grad must be soft, bpda or soft,bpda; got {text!r}")
    return grads


def add_parser(subparsers) -> None:
    from ..attack.spec import DEFAULT_BATCH_SIZE, DEFAULT_STEP_RULE, list_specs

    p = subparsers.add_parser(
        "attack",
        help="attack both arms of a run folder (resumable sweep, sanity checks)",
        description="Attack every arm of a run folder with a spec (attacks/*.yaml) or one ad-hoc attack. L-inf radii "
        "are in 1/255 units on the [0, 1] pixel scale, L2 radii are absolute. Done cells are skipped on a rerun.",
    )
    p.add_argument("--run", "--run-dir", dest="run", required=True, metavar="DIR",
                   help="run folder made by `jpeg-robust train --out DIR` (under torchrun spell it --run-dir: "
                        "torchrun's own parser takes --run for its --run-path)")
    which = p.add_mutually_exclusive_group(required=True)
    which.add_argument("--spec", metavar="NAME|FILE",
                       help=f"attack spec by name ({', '.join(list_specs())}) or path to a .yaml file")
    which.add_argument("--method", choices=("fgsm", "pgd"), help="one ad-hoc attack (see the flags below)")
    p.add_argument("--norm", choices=("linf", "l2"), default=None, help="threat model (default linf)")
    p.add_argument("--eps", type=_eps_list, default=None,
                   help="comma list of radii: 1/255 units for linf (--eps 1,2,4,8), absolute for l2 (--eps 0.5)")
    p.add_argument("--steps", type=_positive_int, default=None, help="PGD iterations (default 20; FGSM: 1)")
    p.add_argument("--step-size", default=None, metavar="SIZE|RULE",
                   help=f"number in eps units (1/255 for linf) or a rule: '{DEFAULT_STEP_RULE}' (default), "
                        "'eps/4', 'eps'")
    p.add_argument("--restarts", type=_positive_int, default=None, help="random restarts (default 1)")
    p.add_argument("--random-start", action=argparse.BooleanOptionalAction, default=None,
                   help="uniform random start in the eps-ball (PGD default on; FGSM has none)")
    p.add_argument("--grad", type=_grad_list, default=None,
                   help="JPEG-DL crafting gradient: soft (default), bpda, or soft,bpda (baselines: none)")
    p.add_argument("--transfer-from", choices=("baseline", "jpegdl"), default=None, metavar="ARM",
                   help="craft on ARM's model and evaluate on the other arm")
    p.add_argument("--n-examples", type=_positive_int, default=None, metavar="N",
                   help="the first N test images in test-set order (default: all)")
    p.add_argument("--batch-size", type=_positive_int, default=None,
                   help=f"images per batch (default {DEFAULT_BATCH_SIZE})")
    p.add_argument("--seed", type=int, default=None, help="attack seed (random starts; default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA when available), cpu or cuda")
    p.add_argument("--data-dir", default=None, help="CIFAR-100 folder (default: the run's config.json data_dir)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.set_defaults(handler=run)


def specs_from_args(args: argparse.Namespace):
    """The :class:`SpecFile` an ``attack`` command line asks for (raises ``AttackSpecError`` on bad input)."""
    from ..attack.spec import DEFAULT_BATCH_SIZE, DEFAULT_STEP_RULE, AttackSpec, AttackSpecError, SpecFile, load_spec

    if args.seed is not None and args.seed < 0:
        raise AttackSpecError(f"--seed must be >= 0, got {args.seed}")
    if args.spec:
        given = [f"--{f.replace('_', '-')}" for f in _ATTACK_FLAGS if getattr(args, f) is not None]
        if given:
            raise AttackSpecError(
                f"{', '.join(given)} cannot be combined with --spec (a spec fixes its attacks); copy the spec file, "
                "edit it and pass its path, or use --method"
            )
        return load_spec(args.spec).with_overrides(n_examples=args.n_examples, seed=args.seed,
                                                   batch_size=args.batch_size)
    if args.eps is None:
        raise AttackSpecError("--method needs --eps (e.g. --eps 1,2,4,8 for linf in 1/255 units)")
    data = {
        "method": args.method,
        "norm": args.norm or "linf",
        "eps": args.eps,
        "steps": args.steps,
        "step_size": args.step_size if args.step_size is not None else DEFAULT_STEP_RULE,
        "restarts": args.restarts if args.restarts is not None else 1,
        "random_start": args.random_start,
        "grad": args.grad or ("soft",),
        "transfer_from": args.transfer_from,
        "n_examples": args.n_examples,
        "batch_size": args.batch_size or DEFAULT_BATCH_SIZE,
        "seed": args.seed or 0,
    }
    if args.method == "fgsm":
        if args.step_size is not None:
            raise AttackSpecError("fgsm always steps by eps: drop --step-size (or use --method pgd)")
        data.pop("step_size")
    attack = AttackSpec.from_dict(data, where="command line")
    spec = SpecFile(name="cli", attacks=(attack,), version=1, description=attack.describe())
    import dataclasses

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
    import sys
    import warnings

    from .. import distributed
    from ..attack.methods import engine as _engine
    from ..attack.sweep import SanityCheckWarning, SweepLockedError, run_sweep

    spec = specs_from_args(args)
    _engine()  # no torchattacks: a one-line error now, before any model is loaded
    try:  # under torchrun: every rank attacks its shard of each cell, rank 0 writes and reports
        with warnings.catch_warnings():  # the verdict is printed below
            warnings.simplefilter("ignore", SanityCheckWarning)
            table = run_sweep(args.run, spec, device=args.device, data_dir=args.data_dir,
                              progress=not args.no_progress)
        main = distributed.is_main()
    except SweepLockedError as exc:
        print(f"jpeg-robust attack: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished cells are saved. Run the same command again to resume at the next cell.",
              file=sys.stderr)
        return 130
    finally:
        distributed.cleanup()
    if not main:
        return 0
    try:
        from . import record_command

        record_command(args.run, getattr(args, "argv", None))
    except ImportError:  # pragma: no cover - the CLI package always has it
        pass
    computed = set(table.attrs.get("computed", []))
    ran = table[table["cell_id"].astype(str).isin(computed)]
    print(f"spec {table.attrs['spec_name']} ({len(table)} cells: {len(ran)} computed now, "
          f"{len(table) - len(ran)} already done)")
    print(format_table(ran if len(ran) else table))
    print()
    print(f"checks: {table.attrs['verdict']}")
    for check in table.attrs.get("checks", []):
        if check["status"] == "fail":
            print(f"  FAIL {check['name']} [{check['arm']}]: {check['detail']}")
            print(f"       -> {check['meaning']}")
    print(f"results: {table.attrs['results_path']}")
    return 0
