#!/usr/bin/env bash
# One sitting of the 3-seed resnet56 study on a time-limited GPU machine (see scripts/gpu/README.md, docs/gpu.md).
# Usage (on the GPU machine, repo root, data unpacked in $DATA): bash scripts/gpu/train_chunk.sh MINUTES [SEEDS]
# One process trains every arm of every seed concurrently (--seeds), each model's step replayed as a CUDA graph on
# its own stream (--cuda-graph), all stopping cleanly after MINUTES with their checkpoints; the next sitting, with
# the carried runs/ folder, continues (--resume also starts folders that do not exist yet). Then packs runs/
# (checkpoints included) into $OUT. Run folders: runs/cifar100-resnet56-s{seed}.
set -uo pipefail
minutes=${1:?minutes per sitting}
seeds=${2:-"0,1,2"}
data=${DATA:-/tmp/data}
export PYTHONUNBUFFERED=1
mkdir -p runs
python3 -m robustbench_jpeg train --model resnet56 --data-dir "$data" --seeds "$seeds" --cuda-graph --resume \
  --time-limit "$minutes" --no-progress --out 'runs/cifar100-resnet56-s{seed}' > runs/train.log 2>&1
echo "train exit status $? (0 finished, 75 paused: run the next sitting)"
tail -n 8 runs/train.log
tar czf "${OUT:-.}/runs.tgz" runs
