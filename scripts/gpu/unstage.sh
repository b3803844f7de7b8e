#!/usr/bin/env bash
# Unpack what the staging commands of scripts/gpu/study_plan.py copied into $STAGE (default /tmp/stage): the packed
# CIFAR-100 into $DATA (default /tmp/data) unless it is there, and every per-arm tarball into $RUNS (default runs).
# Used by study_sitting.sh and attack_and_report.sh; prints what it did.
set -uo pipefail
stage=${STAGE:-/tmp/stage}; data=${DATA:-/tmp/data}; runs=${RUNS:-runs}
mkdir -p "$runs"
if [[ -f $stage/cifar100_pack.py && ! -d $data ]]; then
  python3 "$stage/cifar100_pack.py" unpack "$data" --from "$stage" || { echo "unpack of the data FAILED"; exit 1; }
fi
for t in "$stage"/*.tgz; do
  [[ -f $t ]] || continue
  tar xzf "$t" -C "$runs" && echo "unpacked $(basename "$t")" || { echo "unpack of $t FAILED"; exit 1; }
done
exit 0
