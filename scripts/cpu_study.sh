#!/usr/bin/env bash
# The three-seed CPU study behind reports/cifar100-resnet20-cpu-3seeds: resnet20 baseline / JPEG-DL pairs trained with
# the cpu recipe (jpeg-robust train --recipe cpu: 30 epochs, batch 128, SGD 0.1 Nesterov, cosine after 2 warm-up
# epochs, label smoothing 0.1; the JPEG tables on Adam 0.003 with alpha 5, as the paper) for seeds 0, 1 and 2 on the
# genuine CIFAR-100, plus the control arms (frozen tables, standard JPEG) on seed 0; then the attacks: the adaptive
# spec and AutoAttack (radius cascade) on the first 1,000 test images, the paper's protocol (FGSM, PGD-5) on the whole
# test set and the official script's alpha-1 protocol on the first 1,000, for every arm and seed. The attacks run
# in order of what the report needs most: the worst case (adaptive and AutoAttack) of the pair on all three seeds,
# then of the controls on seed 0, then the paper's protocols on the pair across the seeds (FGSM, PGD-5, then the
# official script's alpha-1 variant), then on the controls; then the report. The standard-JPEG control rounds hard, so its
# white-box gradient is exactly zero: its AutoAttack is `autoattack-bpda` (the BPDA-hard chain that ends with Square;
# the white-box chain would spend hours making no progress), beside the adaptive spec's white-box cells.
#
# Every step resumes, so the study runs in sittings: each call works for at most SITTING minutes (default 120), stops
# cleanly (training checkpoints, attack cells) and says what is left; call it again to continue. Training runs two
# processes of one thread each (two seeds, or the two arms of one seed); attacks shard each cell's images over two
# processes (torchrun, gloo).
#
# Between sittings nothing may be lost: `save` commits the run folders (cards, histories, checkpoints, results) to
# the git branch $BRANCH without touching the working tree or the index of the current branch (the checkpoints stay
# out of the main tree, whose size is held to a budget); `restore` brings them back into $RUNS.
#
# Usage: bash scripts/cpu_study.sh /path/to/cifar100 [train|attack|report|all|save|restore]
#   RUNS=runs/cifar100-resnet20-cpu-3seeds  where the run folders go (seed0, seed1, seed2)
#   SITTING=120                             minutes of this sitting
#   PYTHON=python                           the interpreter; DRY=1 prints the commands instead of running them
#   BRANCH=study/cifar100-resnet20-cpu-3seeds  where `save` keeps the run folders
set -euo pipefail
data=${1:?usage: bash scripts/cpu_study.sh /path/to/cifar100 [train|attack|report|all]}
stage=${2:-all}
runs=${RUNS:-runs/cifar100-resnet20-cpu-3seeds}
sitting=${SITTING:-120}
python=${PYTHON:-python}
deadline=$(( $(date +%s) + 60 * sitting ))
PAUSED=75

left() { echo $(( (deadline - $(date +%s)) / 60 )); }  # whole minutes left in this sitting
run() {  # one command (printed first); exit status 75 = paused by the time limit
  echo "+ $*" >&2
  [[ -n ${DRY:-} ]] && return 0
  "$@"
}
jr() { run env OMP_NUM_THREADS=1 "$python" -m robustbench_jpeg "$@"; }
jr2() { run env OMP_NUM_THREADS=1 "$python" -m torch.distributed.run --standalone --nproc_per_node=2 -m robustbench_jpeg "$@"; }
out_of_time() { (( $(left) < 2 )); }

train() {  # seed, arms: resumes a started run folder
  local seed=$1 arms=$2 dir=$runs/seed$1 resume=()
  out_of_time && return $PAUSED
  [[ -f $dir/config.json ]] && resume=(--resume)
  jr train --recipe cpu --model resnet20 --dataset cifar100 --data-dir "$data" --device cpu --no-progress \
     --seed "$seed" --arms "$arms" --out "$dir" --time-limit "$(left)" "${resume[@]}"
}

stage_train() {
  local status=0
  # two processes at a time: seeds 0 and 1 together, then seed 2's arms side by side, then seed 0's controls
  train 0 baseline,jpegdl & a=$!; train 1 baseline,jpegdl & b=$!
  wait $a || status=$?; wait $b || status=$?
  (( status == 0 )) || return $status
  train 2 baseline & a=$!; train 2 jpegdl & b=$!
  wait $a || status=$?; wait $b || status=$?
  (( status == 0 )) || return $status
  train 0 jpeg-frozen & a=$!; train 0 jpeg-standard & b=$!
  wait $a || status=$?; wait $b || status=$?
  return $status
}

attack() {  # seed, arms, spec, [n]: no new cell past the sitting
  local extra=()
  [[ -n ${4:-} ]] && extra=(--n-examples "$4")
  out_of_time && return $PAUSED
  jr2 attack --run-dir "$runs/seed$1" --arms "$2" --spec "$3" --device cpu --no-progress --time-limit "$(left)" \
     "${extra[@]}"
}

headline_specs() {  # seed, arms: the adaptive spec and AutoAttack on the first 1,000 images (the worst case)
  attack "$1" "$2" adaptive 1000 && attack "$1" "$2" autoattack 1000
}

paper_specs() {  # seed, arms: the paper's protocol on the whole test set, the official script's on the first 1,000
  attack "$1" "$2" paper-fgsm && attack "$1" "$2" paper-pgd && attack "$1" "$2" paper-as-run 1000
}

control_specs() {  # the controls' worst case on seed 0 (the baseline's cells are done): standard JPEG through BPDA
  attack 0 baseline,jpeg-frozen,jpeg-standard adaptive 1000 && attack 0 baseline,jpeg-frozen autoattack 1000 &&
    attack 0 jpeg-standard autoattack-bpda 1000
}

stage_attack() {  # the worst case first, then the paper's protocols on the pair, then the controls'
  local seed spec pair=baseline,jpegdl
  for seed in 0 1 2; do
    headline_specs "$seed" "$pair" || return $?
  done
  control_specs || return $?
  for spec in paper-fgsm paper-pgd paper-as-run; do
    for seed in 0 1 2; do
      if [[ $spec == paper-as-run ]]; then attack "$seed" "$pair" "$spec" 1000; else attack "$seed" "$pair" "$spec"; fi ||
        return $?
    done
  done
  paper_specs 0 baseline,jpeg-frozen,jpeg-standard
}

stage_report() {
  jr report --run "$runs/seed0" --run "$runs/seed1" --run "$runs/seed2" --out reports/cifar100-resnet20-cpu-3seeds \
     --title "resnet20 on CIFAR-100 (CPU recipe), three seeds"
}

branch=${BRANCH:-study/cifar100-resnet20-cpu-3seeds}

stage_save() {  # the run folders as one commit on $branch (parent: its previous commit, else HEAD)
  local index tree parent commit
  index=$(mktemp)
  parent=$(git rev-parse -q --verify "refs/heads/$branch" || git rev-parse HEAD)
  GIT_INDEX_FILE=$index git read-tree "$parent"
  GIT_INDEX_FILE=$index git rm -r -q -f --cached --ignore-unmatch -- "$runs"
  GIT_INDEX_FILE=$index git add -f -- "$runs"
  GIT_INDEX_FILE=$index git rm -r -q -f --cached --ignore-unmatch -- "$runs/**/.train.lock" "$runs/**/.attack.lock"
  tree=$(GIT_INDEX_FILE=$index git write-tree)
  rm -f "$index"
  commit=$(git commit-tree "$tree" -p "$parent" -m "study state: $runs ($(date -u +%FT%TZ))")
  run git update-ref "refs/heads/$branch" "$commit"
  echo "saved $runs to branch $branch ($commit)" >&2
}

stage_restore() {
  run git checkout "$branch" -- "$runs"
  run git reset -q -- "$runs"  # restored as files only: the current branch's index is unchanged
}

status=0
case $stage in
  save) stage_save; exit 0 ;;
  restore) stage_restore; exit 0 ;;
  train) stage_train || status=$? ;;
  attack) stage_attack || status=$? ;;
  report) stage_report || status=$? ;;
  all) { stage_train && stage_attack && stage_report; } || status=$? ;;
  *) echo "unknown stage $stage: train, attack, report, all, save or restore" >&2; exit 2 ;;
esac
if (( status == PAUSED )); then
  echo "sitting over ($sitting min): run the same command again to continue" >&2
fi
exit $status
