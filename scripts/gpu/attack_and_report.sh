#!/usr/bin/env bash
# After training finished (every card says "finished": true): the paper's protocol on the whole test set, the
# adaptive and stronger attacks, then the report. Usage: bash scripts/gpu/attack_and_report.sh [SEEDS]
set -uo pipefail
seeds=${1:-"0 1 2"}  # the run folders runs/cifar100-resnet56-s{seed} of train_chunk.sh
export PYTHONUNBUFFERED=1
runs=()
for seed in $seeds; do
  run=runs/cifar100-resnet56-s$seed
  runs+=(--run "$run")
  (
    for spec in paper-fgsm paper-pgd standard-linf adaptive; do
      python3 -m robustbench_jpeg attack --run "$run" --spec "$spec" --device cuda --no-progress
    done
    python3 -m robustbench_jpeg attack --run "$run" --spec strong-pgd --n-examples 1000 --device cuda --no-progress
  ) > "runs/attack-s$seed.log" 2>&1 &
done
wait
python3 -m robustbench_jpeg report "${runs[@]}" --out reports/cifar100-resnet56
tar czf "${OUT:-.}/reports.tgz" reports/cifar100-resnet56 runs/*.log
