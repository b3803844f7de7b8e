#!/usr/bin/env bash
# After training finished (every card says "finished": true): the paper's protocol on the whole test set, the
# adaptive and stronger attacks, then the report, on a GPU machine whose data and checkpoints were staged as for a
# training sitting (scripts/gpu/study_plan.py; unstage.sh unpacks them).
# Usage (repo root): RBJ_GIT_SHA=<commit> bash scripts/gpu/attack_and_report.sh [SEEDS]     (SEEDS default "0 1 2")
# Results are packed after every attack spec, so a command stopped at its time limit still returns every finished
# cell: $OUT/<run>-results.tgz per seed (the run folder without checkpoints, and its attack log), then
# $OUT/report.tgz. Rerunning the same command resumes at the next unfinished cell.
set -uo pipefail
seeds=${1:-"0 1 2"}
model=${MODEL:-resnet56}; runs=${RUNS:-runs}; out=${OUT:-.}
export PYTHONUNBUFFERED=1
mkdir -p "$out"
RUNS=$runs bash "$(dirname "$0")/unstage.sh" > "$out/log.txt" 2>&1 || { cat "$out/log.txt"; exit 1; }
pack() {  # pack RUN: the run folder's results (no checkpoints) and its log, whole or not at all
  tar czf "$out/.$1-results.tgz" --exclude=checkpoint.pt -C "$runs" "$1" && mv "$out/.$1-results.tgz" "$out/$1-results.tgz"
}
run_names=()
for seed in $seeds; do
  run=cifar100-$model-s$seed
  run_names+=(--run "$runs/$run")
  (
    for spec in paper-fgsm paper-pgd standard-linf adaptive; do
      python3 -m robustbench_jpeg attack --run "$runs/$run" --spec "$spec" --device cuda --no-progress
      pack "$run"
    done
    python3 -m robustbench_jpeg attack --run "$runs/$run" --spec strong-pgd --n-examples 1000 --device cuda --no-progress
    pack "$run"
  ) > "$runs/$run/attack.log" 2>&1 &
done
wait
python3 -m robustbench_jpeg report "${run_names[@]}" --out reports/cifar100-$model >> "$out/log.txt" 2>&1
tar czf "$out/.report.tgz" "reports/cifar100-$model" && mv "$out/.report.tgz" "$out/report.tgz"
ls -l "$out" | tee -a "$out/log.txt"
