#!/usr/bin/env bash
# The learning benchmark at the paper's widths on one GPU, in about 10 minutes of wall
# time: synthesise the faces (unless --data holds them already), train
# configs/synface.yaml's networks without the perceptual loss (no VGG16 weights offline)
# for a fixed time, evaluate the test split, and print one line: SIDE and MAD as ratios
# of the mean-depth baseline's, the yaw slope and the images per second.
#
#   bash scripts/gpu_learning.sh [--minutes=6] [--data=DIR] [--num=3000] \
#       [--out=runs/gpu_learning] [--steps=N] [--set=KEY=VALUE ...]
#
# --steps=N ends training after N steps whatever the time; --set overrides a config key
# (a smoke test on a CPU: --steps=1 --num=30 --set=batch_size=8). Run from the
# repository root after installing (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
BIN=${TFSYM3D:-.venv/bin/tfsym3d}
MINUTES=6 NUM=3000 OUT=runs/gpu_learning DATA= STEPS=
SETS=()
for arg in "$@"; do
  case "$arg" in
    --minutes=*) MINUTES=${arg#*=} ;;
    --num=*) NUM=${arg#*=} ;;
    --out=*) OUT=${arg#*=} ;;
    --data=*) DATA=${arg#*=} ;;
    --steps=*) STEPS=${arg#*=} ;;
    --set=*) SETS+=("$arg") ;;
    *) echo "gpu_learning.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done
DATA=${DATA:-$OUT/data}
mkdir -p "$(dirname "$OUT")"
export TF_CPP_MIN_LOG_LEVEL=${TF_CPP_MIN_LOG_LEVEL:-2}
start=$(date +%s)
if [ ! -d "$DATA/test" ]; then
  "$BIN" synth --out="$DATA" --num="$NUM" --seed=0
fi
echo "gpu_learning: data ready after $(( $(date +%s) - start )) s; devices:" \
  "$("$PY" -c 'import tensorflow as tf; print([d.name for d in tf.config.list_logical_devices()])' 2>/dev/null)"
"$PY" benchmarks/bench_learning.py --config=configs/synface.yaml --data="$DATA" --out="$OUT" \
  --variants=full --minutes="$MINUTES" --set=lam_perc=0 --set=crop=null \
  ${STEPS:+--max_steps=$STEPS} "${SETS[@]}" > "$OUT.log" 2>&1 || { tail -n 20 "$OUT.log" >&2; exit 1; }
line=$(grep '^RESULT full:' "$OUT.log")
echo "gpu_learning: ${line#RESULT full: }; $(( $(date +%s) - start )) s wall in all (log: $OUT.log)"
