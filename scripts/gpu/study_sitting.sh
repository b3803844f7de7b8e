#!/usr/bin/env bash
# One sitting of the paired multi-seed study on a time-limited GPU machine (docs/gpu.md, scripts/gpu/README.md).
# Usage (repo root): bash scripts/gpu/study_sitting.sh MINUTES [SEEDS]      (SEEDS default 0,1,2)
#
# 1. Unpacks what the staging commands copied into $STAGE (default /tmp/stage; scripts/gpu/study_plan.py plans
#    them): the packed CIFAR-100 into $DATA (default /tmp/data) unless it is there, and the per-arm tarballs of the
#    last sitting into $RUNS (default runs).
# 2. Trains every arm of every seed in one process (--seeds, --cuda-graph where there is a GPU), all stopping
#    cleanly after MINUTES with their checkpoints (mid-epoch included); --resume continues the last sitting's
#    folders and starts the missing ones.
# 3. Packs one tarball per model arm into $OUT, each written whole or not at all: <run>-<arm>.tgz holds the arm's
#    folder and the run's config.json and commands.txt. The log is $OUT/log.txt from the start.
# MODEL (default resnet56), DATASET (cifar100), TRAIN_SUBSET (all) change the recipe for a dry run on a CPU.
# The machine has no .git: pass RBJ_GIT_SHA=<commit> so every card and row records the commit.
set -uo pipefail
minutes=${1:?minutes of training in this sitting}
seeds=${2:-0,1,2}
model=${MODEL:-resnet56}; dataset=${DATASET:-cifar100}; data=${DATA:-/tmp/data}
runs=${RUNS:-runs}; out=${OUT:-.}; stage=${STAGE:-/tmp/stage}
export PYTHONUNBUFFERED=1
mkdir -p "$runs" "$out"
log=$out/log.txt; : > "$log"
STAGE=$stage DATA=$data RUNS=$runs bash "$(dirname "$0")/unstage.sh" >> "$log" 2>&1 || { cat "$log"; exit 1; }
args=(--model "$model" --dataset "$dataset" --seeds "$seeds" --cuda-graph --resume --no-progress
  --time-limit "$minutes" --out "$runs/$dataset-$model-s{seed}")
[[ $dataset == cifar100 ]] && args+=(--data-dir "$data")
[[ -n ${TRAIN_SUBSET:-} ]] && args+=(--train-subset "$TRAIN_SUBSET")
python3 -m robustbench_jpeg train "${args[@]}" >> "$log" 2>&1
status=$?
echo "train exit status $status (0 finished, 75 paused: run the next sitting)" | tee -a "$log"
for arm_dir in "$runs"/*/*/; do
  arm_dir=${arm_dir%/}; arm=${arm_dir##*/}; run=$(basename "$(dirname "$arm_dir")")
  [[ -f $arm_dir/checkpoint.pt ]] || continue
  extra=(); for f in config.json commands.txt; do [[ -f $runs/$run/$f ]] && extra+=("$run/$f"); done
  tar czf "$out/.$run-$arm.tgz" -C "$runs" "$run/$arm" "${extra[@]}" && mv "$out/.$run-$arm.tgz" "$out/$run-$arm.tgz"
done
ls -l "$out" | tee -a "$log"
exit $(( status == 75 ? 0 : status ))
