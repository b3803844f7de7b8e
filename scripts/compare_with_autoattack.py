"""Is the toolkit's worst case at least as strong as the reference AutoAttack run directly?

For one arm of an attacked run folder, on the first N test images: the toolkit's worst case over every attack in
``results.csv`` (all specs, every radius up to eps; :mod:`robustbench_jpeg.evaluation.worst_case`) against AutoAttack's
reference code, ``pyautoattack.AutoAttack(version="standard", seed=0).run_standard_evaluation`` (the package and
call RobustBench's ``benchmark`` uses), run directly on the deployed model (eval mode, the quantizer as deployed).
Prints, per L-inf eps, the robust images under each and the images only one of them leaves robust. Usage:

    python scripts/compare_with_autoattack.py RUN --arm jpegdl --n 200 --eps 1,2,4,8
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("run")
    parser.add_argument("--arm", default="jpegdl")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--eps", default="1,2,4,8", help="L-inf radii in 1/255 units")
    parser.add_argument("--batch-size", type=int, default=200)
    args = parser.parse_args()

    import pyautoattack

    from robustbench_jpeg import load_model
    from robustbench_jpeg.checkpoint import read_model_card
    from robustbench_jpeg.data import load_split
    from robustbench_jpeg.device import exact_fp32
    from robustbench_jpeg.evaluation.worst_case import worst_cases
    from robustbench_jpeg.runfolder.store import RunStore

    torch.set_num_threads(1)
    store = RunStore(args.run)
    results = store.results()
    samples = store.done(results)
    mine = results[
        (results["arm"] == args.arm)
        & (results["norm"] == "linf")
        & results["cell_id"].isin(samples)
        & results["eval_alpha"].isna()
    ]
    ours = {round(w.eps * 255, 4): w for w in worst_cases(mine, samples) if w.primary}
    card = read_model_card(f"{args.run}/{args.arm}")
    model = load_model(f"{args.run}/{args.arm}").eval().requires_grad_(False)
    images, labels = load_split(card.dataset, train=False)
    x, y = images[: args.n].float() / 255, labels[: args.n].long()
    print(
        f"{args.run} arm {args.arm}, first {args.n} test images; toolkit worst case = AND of every attack in "
        "results.csv at eps' <= eps (all-attacks tier)"
    )
    print(
        "eps/255 | toolkit robust (n) | reference AutoAttack robust | robust only under toolkit | only under "
        "AutoAttack | AutoAttack seconds"
    )
    for eps in (float(e) for e in args.eps.split(",")):
        w = ours.get(round(eps, 4))
        if w is None:
            print(f"{eps:g} | no toolkit cell at this eps")
            continue
        m = min(w.tier, args.n)
        start = time.perf_counter()
        with exact_fp32("cpu"):
            attack = pyautoattack.AutoAttack(
                model, norm="Linf", eps=eps / 255, version="standard", seed=0, device="cpu"
            )
            _, y_adv = attack.run_standard_evaluation(x[:m], y[:m], batch_size=args.batch_size)
        aa = (y_adv == y[:m]).numpy()  # AutoAttack's robust flags: clean-correct and never fooled
        tk = np.asarray(w.vector[:m], dtype=bool)
        print(
            f"{eps:g} | {int(tk.sum())} of {m} | {int(aa.sum())} of {m} | {int((tk & ~aa).sum())} | "
            f"{int((aa & ~tk).sum())} | {time.perf_counter() - start:.0f}"
        )


if __name__ == "__main__":
    main()
