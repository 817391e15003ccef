#!/usr/bin/env bash
# The main job on a small default, on a CPU in minutes: synthesise a small face dataset
# with ground-truth depth, train configs/tiny.yaml on it briefly, evaluate it on the
# held-out split, reconstruct a few test images into maps, meshes and GIFs, and show
# where the results are. Run from the repository root after installing (see README).
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TFSYM3D:-.venv/bin/tfsym3d}
OUT=${OUT:-runs/quickstart}
NUM=${NUM:-400}
EPOCHS=${EPOCHS:-2}

echo "== 1/4 synthesise $NUM images into $OUT/data"
"$BIN" synth --out="$OUT/data" --num="$NUM" --seed=0
echo "== 2/4 train configs/tiny.yaml for $EPOCHS epochs into $OUT/run"
"$BIN" train --config=configs/tiny.yaml --run_dir="$OUT/run" --progress=epoch \
  --set=data_dir="$OUT/data" --set=num_epochs="$EPOCHS"
echo "== 3/4 evaluate on the held-out test split (SIDE/MAD against the baselines)"
"$BIN" evaluate --checkpoint="$OUT/run" --data="$OUT/data" --json="$OUT/eval.json"
echo "== 4/4 reconstruct 8 test images (depth, normals, albedo, mesh, GIFs)"
"$BIN" reconstruct --checkpoint="$OUT/run" --out="$OUT/reconstruct" \
  $(ls "$OUT"/data/test/image/*.png | head -n 8)
echo "done: checkpoints in $OUT/run/checkpoints, TensorBoard logs in $OUT/run/logs,"
echo "      reconstructions in $OUT/reconstruct (open index.html)"
echo "      (tensorboard --logdir $OUT/run/logs); a second run resumes the same run_dir"
