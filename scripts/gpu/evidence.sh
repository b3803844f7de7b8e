#!/usr/bin/env bash
# evidence.sh -- one bounded evidence run on a GPU machine (scripts/gpu/README.md, docs/gpu.md).
#
# Stages, in order of value; each runs under its own time cap (min(cap, time left); skipped when less than its
# minimum is left) and a failing stage never stops the next. After every stage the results are rewritten to $OUT:
#   log.txt          everything printed
#   results.json     every stage's JSON so far, and each stage's exit status and seconds
#   profile.txt      profiler tables of the training step (eager and CUDA graph, both arms)
#   benchmarks.csv   the benchmarks' rows (train, JPEG overhead, attack), appended by the benchmarks themselves
#   run.tgz          the CLI run folder (no checkpoints): cards, histories, results, report; repacked after
#                    every command of S4, so a time-out still returns what ran
#   summary.txt      the short table, also printed last
#
#   S0_env        GPU, driver, versions; torchattacks present?
#   S1_smoke      dtypes at module boundaries; host syncs per step by source line (sync debug mode), eager and
#                 graph; kernels per eager step (profiler); graph vs eager weights after 20 steps
#   S2_speed      img/s: fp32 NCHW eager, bf16 channels_last eager, CUDA graph (bf16; fp32; fp32 with TF32);
#                 2 and 6 models together
#   S3_attack     benchmarks/attack_throughput.py: PGD-10 on 10k images through the sweep's path vs torchattacks
#   S4_cli        jpeg-robust train --seeds 0 --cuda-graph (paused by --time-limit, exit 75) -> --resume ->
#                 attack (paper-pgd) -> report, all on CUDA
#   S5_train      benchmarks/train_throughput.py (plain loop vs eager vs graph, 6 models together)
#   S6_overhead   benchmarks/jpeg_overhead.py (JPEG-DL / baseline step, eager and graph)
#   S7_tests      pytest --device cuda on the graph, JPEG-layer and model tests (the real capture test included)
#   S8_compile    torch.compile'd eager step, if time is left
#   S9_profile_graph  the profiler on CUDA-graph replays: kernels per replayed step, GPU-busy fraction. Last, under
#                 its own cap: it is known to hang on some versions (pytorch#135003, #75504, kineto#1165), and a
#                 hang then costs nothing that ran before it
#
# Needs no data carried (the embedded cifar100-mini, tiled for timing). Without torchattacks the attack stages are
# skipped with a note (carry its wheel in .whl/ to include them; scripts/gpu/README.md).
# On the GPU machine, repo root:   RBJ_GIT_SHA=<commit> bash scripts/gpu/evidence.sh   (under a 560 s limit; a copy
#   of the repository without .git records the commit from RBJ_GIT_SHA)
# Dry run anywhere (CPU, tiny sizes; CUDA-only parts reported as skipped):   DRY=1 OUT=/tmp/o bash scripts/gpu/evidence.sh
# Chosen stages only:   ONLY="S2_speed S4_cli" bash scripts/gpu/evidence.sh
set -uo pipefail
OUT=${OUT:-/tmp/evidence-out}; mkdir -p "$OUT"; export OUT
WORK=$(mktemp -d /tmp/evidence.XXXX); export WORK
LOG=$OUT/log.txt; : > "$LOG"
DRY=${DRY:-0}; export DRY
BUDGET=${BUDGET:-$( ((DRY)) && echo 1200 || echo 480)}  # seconds for all stages: a 560 s command limit leaves slack
CAP_SCALE=${CAP_SCALE:-$( ((DRY)) && echo 3 || echo 1)}  # the caps are sized for a GPU; a dry run on a CPU gets more
[[ -z ${RBJ_GIT_SHA:-} ]] && RBJ_GIT_SHA=$(git rev-parse HEAD 2>/dev/null) && export RBJ_GIT_SHA
T0=$SECONDS
PY=${PYTHON:-python3}; export PY
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 TQDM_DISABLE=1
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
left() { echo $(( BUDGET - (SECONDS - T0) )); }
note() { echo "$*" | tee -a "$LOG"; }

merge() {  # $OUT/results.json = every stage's JSON so far + the stage statuses
  "$PY" - "$WORK" "$OUT/results.json" <<'PYEOF' 2>>"$LOG"
import json, sys, pathlib
work, out = pathlib.Path(sys.argv[1]), pathlib.Path(sys.argv[2])
merged = {}
for p in sorted(work.glob("*.json")):
    try:
        merged[p.stem] = json.loads(p.read_text())
    except Exception as exc:
        merged[p.stem] = {"unreadable": repr(exc)}
status = work / "status"
merged["stages"] = status.read_text().splitlines() if status.exists() else []
out.write_text(json.dumps(merged, indent=1, default=str))
PYEOF
}

stage() {  # stage NAME CAP_S MIN_S CMD...
  local name=$1 cap=$(( $2 * CAP_SCALE )) min=$3; shift 3
  if [[ -n ${ONLY:-} && " $ONLY " != *" $name "* ]]; then echo "$name not selected" >> "$WORK/status"; return 0; fi
  local l; l=$(left); local t=$(( l < cap ? l : cap ))
  if (( t < min )); then
    note "===== [$name] SKIPPED: $l s left, needs $min"; echo "$name skipped ($l s left)" >> "$WORK/status"; merge
    return 0
  fi
  note "===== [$name] cap ${t}s ($l s left)"
  local s=$SECONDS
  timeout -k 5 "$t" "$@" >> "$LOG" 2>&1
  local rc=$?
  note "----- [$name] rc=$rc in $((SECONDS - s))s$( ((rc == 124 || rc == 137)) && echo ' (TIMED OUT)')"
  echo "$name rc=$rc $((SECONDS - s))s" >> "$WORK/status"
  merge
}

skip() {  # skip NAME REASON
  note "===== [$1] SKIPPED: $2"; echo "$1 skipped: $2" >> "$WORK/status"; merge
}

# ------------------------------------------------------------------------------------------------ sizes
if [[ $DRY == 1 ]]; then
  export MODEL=tiny DEVICE=auto
  ATTACK=(--model tiny --n 64 --plain-n 32 --steps 2 --batch-size 32 --workers 0)
  TRAIN=(--model tiny --steps 3 --warmup 1 --workers 0 --seeds 1)
  OVERHEAD=(--model tiny --steps 2 --warmup 1 --eval-batch-size 64)
  CLI_MODEL=tiny; CLI_EPOCHS=2; CLI_LIMIT=0.001; CLI_N=100; CLI_SUBSET=256
else
  export MODEL=resnet56 DEVICE=auto
  ATTACK=(--model resnet56 --n 10000 --plain-n 2000 --steps 10 --workers 8)
  TRAIN=(--model resnet56 --steps 200 --warmup 5 --workers 8 --seeds 3)
  OVERHEAD=(--model resnet56 --steps 200 --warmup 5 --eval-batch-size 1000)
  CLI_MODEL=resnet56; CLI_EPOCHS=3; CLI_LIMIT=0.02; CLI_N=500; CLI_SUBSET=4000
fi

# ------------------------------------------------------------------------------------------------ S0: environment
if ls .whl/torchattacks-*.whl >/dev/null 2>&1; then
  "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl \
    >>"$LOG" 2>&1 && export PYTHONPATH=/tmp/site:$PYTHONPATH || note "torchattacks wheel: install FAILED"
fi
stage S0_env 30 5 bash -c '(nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.sm,clocks.max.sm --format=csv \
  || echo "no nvidia-smi"); "$PY" "'"$HERE"'/evidence.py" env'
HAVE_TA=$("$PY" -c "import torchattacks" >/dev/null 2>&1 && echo 1 || echo 0)
note "torchattacks importable: $HAVE_TA"

# ------------------------------------------------------------------------------------------------ S1, S2
stage S1_smoke 100 30 "$PY" "$HERE/evidence.py" smoke
stage S2_speed 80 25 "$PY" "$HERE/evidence.py" speed

# ------------------------------------------------------------------------------------------------ S3: attack benchmark
if [[ $HAVE_TA == 1 ]]; then
  stage S3_attack 80 30 "$PY" benchmarks/attack_throughput.py --device "$DEVICE" --no-save "${ATTACK[@]}"
else
  skip S3_attack "torchattacks not importable (the attack engine); carry its wheel in .whl/"
fi

# ------------------------------------------------------------------------------------------------ S4: the CLI, end to end
cli() {  # the run folder is packed whatever failed, so what did run comes back
  local args=(--model "$CLI_MODEL" --dataset cifar100-mini --epochs "$CLI_EPOCHS" --seeds 0
    --cuda-graph --train-subset "$CLI_SUBSET" --no-progress --out "$WORK/run-s{seed}")
  local status=0
  pack() { tar czf "$OUT/.run.tgz" --exclude=checkpoint.pt -C "$WORK" run-s0 && mv "$OUT/.run.tgz" "$OUT/run.tgz"; }
  "$PY" -m robustbench_jpeg train "${args[@]}" --time-limit "$CLI_LIMIT"
  echo "train with --time-limit: exit $? (75 = paused)"; pack
  "$PY" -m robustbench_jpeg train "${args[@]}" --resume || status=1
  pack
  for arm in baseline jpegdl; do echo "$arm history:"; cat "$WORK/run-s0/$arm/history.csv"; done
  if [[ $status == 0 && $HAVE_TA == 1 ]]; then
    "$PY" -m robustbench_jpeg attack --run-dir "$WORK/run-s0" --spec paper-pgd --n-examples "$CLI_N" --no-progress \
      || status=1
    pack
    [[ $status == 0 ]] && { "$PY" -m robustbench_jpeg report --run "$WORK/run-s0" --out "$WORK/run-s0/report" || status=1; }
    pack
  elif [[ $HAVE_TA != 1 ]]; then
    echo "attack and report skipped: torchattacks not importable"
  fi
  return $status
}
export -f cli; export WORK HAVE_TA CLI_MODEL CLI_EPOCHS CLI_LIMIT CLI_N CLI_SUBSET
stage S4_cli 100 40 bash -c cli

# ------------------------------------------------------------------------------------------------ S5..S8
stage S5_train 70 25 "$PY" benchmarks/train_throughput.py --device "$DEVICE" --no-save "${TRAIN[@]}"
stage S6_overhead 45 20 "$PY" benchmarks/jpeg_overhead.py --device "$DEVICE" --no-save "${OVERHEAD[@]}"
if [[ $DRY == 1 ]]; then
  skip S7_tests "the CUDA test run needs a GPU (the CPU suite runs in CI)"
elif "$PY" -c "import pytest" >/dev/null 2>&1; then
  stage S7_tests 60 20 "$PY" -m pytest -q -p no:cacheprovider --device cuda tests/test_graph.py tests/jpeg tests/models
else
  skip S7_tests "pytest not importable"
fi
stage S8_compile 100 60 "$PY" "$HERE/evidence.py" compile
stage S9_profile_graph 60 20 "$PY" "$HERE/evidence.py" profile_graph

# ------------------------------------------------------------------------------------------------ summary
merge
"$PY" "$HERE/evidence.py" summary 2>>"$LOG" | tee -a "$LOG"
note "total $((SECONDS - T0)) s"
"$PY" "$HERE/study_plan.py" --check-returned "$OUT" 2>&1 | tee -a "$LOG"  # what comes back, against the limits
