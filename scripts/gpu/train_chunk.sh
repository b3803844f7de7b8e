#!/usr/bin/env bash
# One sitting of the resnet56 reproduction on a time-limited GPU machine (see scripts/gpu/README.md).
# Usage (on the GPU machine, repo root, data unpacked in $DATA): bash scripts/gpu/train_chunk.sh MINUTES [SEEDS]
# Trains every arm of every seed concurrently (one process each: a batch-64 step is launch-bound, so several
# processes share one GPU well), each stopping cleanly after MINUTES with a checkpoint; a later sitting with the
# carried runs/ folder continues with --resume. Then packs runs/ (checkpoints included) into $OUT.
set -uo pipefail
minutes=${1:?minutes per sitting}
seeds=${2:-"0 1 2"}
data=${DATA:-/tmp/data}
export PYTHONUNBUFFERED=1
mkdir -p runs
for seed in $seeds; do
  for arm in baseline jpegdl; do
    out=runs/cifar100-resnet56-s$seed
    resume=(); [[ -f $out/config.json ]] && resume=(--resume)
    python3 -m robustbench_jpeg train --model resnet56 --data-dir "$data" --seed "$seed" --arms "$arm" \
      --time-limit "$minutes" --no-progress --out "$out" "${resume[@]}" > "runs/train-s$seed-$arm.log" 2>&1 &
  done
done
wait
tail -n 3 runs/train-*.log
tar czf "${OUT:-.}/runs.tgz" runs
