#!/usr/bin/env bash
# The main job on a small default, on a CPU in minutes: synthesise a small face dataset
# with ground-truth depth, train configs/tiny.yaml on it briefly, evaluate it on the
# held-out split, reconstruct a few test images into maps, meshes and GIFs with it and
# with tiny-faces (the project's own model, trained 30 minutes, shipped in the package),
# and show where the results are. Run from the repository root after installing (see
# README). Offline throughout.
set -euo pipefail
cd "$(dirname "$0")/.."
BIN=${TFSYM3D:-.venv/bin/tfsym3d}
OUT=${OUT:-runs/quickstart}
NUM=${NUM:-400}
EPOCHS=${EPOCHS:-2}

echo "== 1/5 synthesise $NUM images into $OUT/data"
"$BIN" synth --out="$OUT/data" --num="$NUM" --seed=0
echo "== 2/5 train configs/tiny.yaml for $EPOCHS epochs into $OUT/run"
"$BIN" train --config=configs/tiny.yaml --run_dir="$OUT/run" --progress=epoch \
  --set=data_dir="$OUT/data" --set=num_epochs="$EPOCHS"
echo "== 3/5 evaluate on the held-out test split (SIDE/MAD against the baselines)"
"$BIN" evaluate --checkpoint="$OUT/run" --data="$OUT/data" --json="$OUT/eval.json"
TEST_IMAGES=$(ls "$OUT"/data/test/image/*.png | head -n 8)
echo "== 4/5 reconstruct 8 test images with the model just trained (2 epochs: it only shows"
echo "       that everything runs)"
"$BIN" reconstruct --checkpoint="$OUT/run" --out="$OUT/reconstruct_2_epochs" $TEST_IMAGES
echo "== 5/5 the same 8 with tiny-faces (tiny.yaml trained 6000 steps on 3000 synthetic"
echo "       faces, shipped in the package): what the method learns"
"$BIN" reconstruct --checkpoint=tiny-faces --out="$OUT/reconstruct" $TEST_IMAGES
echo "done: open $OUT/reconstruct/index.html (tiny-faces: depth, normals, albedo, meshes, GIFs);"
echo "      the 2-epoch model's in $OUT/reconstruct_2_epochs; its checkpoints in"
echo "      $OUT/run/checkpoints, TensorBoard logs in $OUT/run/logs (a second run resumes)."
echo "For your own face photos, with the authors' CelebA model (downloaded once):"
echo "      $BIN reconstruct --checkpoint=celeba --crop=face selfie.jpg"
