#!/usr/bin/env bash
# The preliminary CPU experiment published in reports/cifar100-resnet20-cpu (no GPU was available):
# a resnet20 baseline / JPEG-DL pair on the genuine CIFAR-100, 5 epochs (lr x0.1 after epochs 3 and 4),
# then the paper's protocol, the adaptive and the AutoAttack-class attacks on the first test images, then the
# report with the weights exported beside it.
# Usage: bash scripts/cpu_preliminary.sh /path/to/cifar100   (the folder holding cifar-100-python/)
set -euo pipefail
data=${1:?folder holding cifar-100-python/}
run=${RUN:-runs/cifar100-resnet20-cpu}
train=(--model resnet20 --dataset cifar100 --data-dir "$data" --epochs 5 --milestones 3,4 --seed 0 --device cpu
       --no-progress --out "$run")
# the two arms train in parallel, one CPU core each: same recipe and seed, one process per arm (each arm has its
# own training lock; the run's config.json is checked and written by one process at a time)
OMP_NUM_THREADS=1 python -m robustbench_jpeg train "${train[@]}" --arms baseline &
OMP_NUM_THREADS=1 python -m robustbench_jpeg train "${train[@]}" --arms jpegdl &
wait
# attacks: two processes sharding the test images (gloo), one thread each
attack() { OMP_NUM_THREADS=1 python -m torch.distributed.run --standalone --nproc_per_node=2 \
             -m robustbench_jpeg attack --run-dir "$run" --device cpu --no-progress "$@"; }
attack --spec paper-fgsm --n-examples 1000
attack --spec paper-pgd --n-examples 1000
attack --spec paper-as-run --n-examples 1000
attack --spec adaptive --n-examples 500
# the adaptive PGD-20 also at the paper grid's other radii (4/3 ... 11/3 /255), so every headline radius is checked
attack --method pgd --steps 20 --grad soft,bpda,bpda-hard,surrogate --surrogate-alpha 1.0 \
       --eps 4/765,5/765,7/765,8/765,3,10/765,11/765 --n-examples 500
attack --spec standard-linf --n-examples 500
attack --spec l2 --n-examples 500
attack --spec strong-pgd --n-examples 200
attack --spec autoattack --n-examples 200
python -m robustbench_jpeg report --run "$run" --out reports/cifar100-resnet20-cpu \
  --title "Preliminary (CPU): resnet20 on CIFAR-100, 5 epochs"
python -m robustbench_jpeg export "$run" --format weights --out reports/cifar100-resnet20-cpu/weights
