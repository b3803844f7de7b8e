"""How long `jpeg-robust --help`, `--version` and `COMMAND --help` take, beside `python -c "import torch"`.

Each command runs ``--repeats`` times in a fresh interpreter (the way a user types it); the median wall time is
printed. The top-level ``--help`` and ``--version`` import neither torch nor the commands' modules, so they should
answer well under a second; a command's own ``--help`` imports what that command needs.

    python benchmarks/cli_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time

CASES = {
    "jpeg-robust --version": ["-m", "robustbench_jpeg", "--version"],
    "jpeg-robust --help": ["-m", "robustbench_jpeg", "--help"],
    "jpeg-robust export --help": ["-m", "robustbench_jpeg", "export", "--help"],
    "jpeg-robust train --help": ["-m", "robustbench_jpeg", "train", "--help"],
    'python -c "import torch" (for scale)': ["-c", "import torch"],
}


def median_seconds(args: list[str], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        subprocess.run([sys.executable, *args], check=True, stdout=subprocess.DEVNULL)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeats", type=int, default=5, help="runs per command; the median is printed")
    repeats = parser.parse_args().repeats
    width = max(map(len, CASES))
    for label, args in CASES.items():
        print(f"{label:<{width}}  {median_seconds(args, repeats):6.3f} s (median of {repeats})")


if __name__ == "__main__":
    main()
