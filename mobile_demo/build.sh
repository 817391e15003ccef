#!/usr/bin/env bash
# Builds the phone demo from a checkpoint: the static web app (DIR/web/) and the Android
# APK hosting it (DIR/tfsym3d-demo.apk).
#
#   bash mobile_demo/build.sh [--checkpoint=RUN] [--out=DIR] [--quantize=int8,none,fp16]
#   bash mobile_demo/build.sh --model=FILE.tflite [--model=...] [--out=DIR] [--no-apk]
#
# --checkpoint exports the TFLite models itself (tfsym3d export, one per --quantize
# variant; the first is the page's default): any checkpoint `tfsym3d export` takes,
# including a model's name (celeba, cat: downloaded on first use; tiny-faces, the
# project's own, in the package: the default). --out defaults to runs/mobile_demo in the
# current folder. --model takes exported .tflite files, each
# with the .card.json that `tfsym3d export` wrote beside it. The JavaScript dependencies
# (LiteRT.js, three.js) come from npm at build time (mobile_demo/package-lock.json) and
# are copied into DIR/web/vendor/: the page fetches nothing from elsewhere. Run from
# anywhere after installing (see README).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(dirname "$HERE")
# The tfsym3d command: $TFSYM3D, else the checkout's .venv, else the one on PATH.
if [ -n "${TFSYM3D:-}" ]; then BIN=$TFSYM3D
elif [ -x "$ROOT/.venv/bin/tfsym3d" ]; then BIN=$ROOT/.venv/bin/tfsym3d
else BIN=$(command -v tfsym3d || true)
fi
CHECKPOINT= OUT= QUANTIZE=int8,none,fp16 APK=1
MODELS=()
for arg in "$@"; do
  case "$arg" in
    --checkpoint=*) CHECKPOINT=${arg#*=} ;;
    --out=*) OUT=${arg#*=} ;;
    --model=*) MODELS+=("${arg#*=}") ;;
    --quantize=*) QUANTIZE=${arg#*=} ;;
    --no-apk) APK= ;;
    *) echo "build.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done
if [ -z "$CHECKPOINT" ] && [ ${#MODELS[@]} -eq 0 ]; then
  CHECKPOINT=tiny-faces
fi
OUT=${OUT:-runs/mobile_demo}
# It replaces only what it built: a web/ holding its marker (or nothing there).
MARK=.tfsym3d-mobile-demo
if [ -e "$OUT/web" ] && [ ! -e "$OUT/web/$MARK" ]; then
  echo "build.sh: $OUT/web is not a demo this script built; left alone (choose another --out)" >&2
  exit 1
fi

if [ -z "$BIN" ] || [ ! -x "$BIN" ]; then
  echo "build.sh: no tfsym3d command (not in $ROOT/.venv, not on PATH; or set TFSYM3D=)" >&2
  exit 2
fi
# The Python that runs it (its first line), for the page's constants.js.
PY=$(head -n 1 "$BIN" | sed 's/^#! *//')
echo "== using $BIN"

# A fresh folder beside the old one, swapped in at the end: a failed build leaves the
# previous one as it was.
mkdir -p "$(dirname "$OUT")"
WORK=$(mktemp -d "${OUT%/}.building.XXXXXX")
trap 'rm -rf "$WORK"' EXIT

if [ -n "$CHECKPOINT" ]; then
  echo "== export $CHECKPOINT ($QUANTIZE)"
  "$BIN" export --checkpoint="$CHECKPOINT" --out="$WORK/export" --formats=tflite \
    --quantize="$QUANTIZE" >&2
  for q in ${QUANTIZE//,/ }; do
    [ "$q" = none ] && q=fp32
    MODELS+=("$WORK/export/tflite/tfsym3d_$q.tflite")
  done
fi

if [ ! -d "$HERE/node_modules/@litertjs/core" ] || [ ! -d "$HERE/node_modules/three" ]; then
  echo "== npm ci (LiteRT.js, three.js)"
  (cd "$HERE" && npm ci --no-audit --no-fund --loglevel=error)
fi

echo "== web app"
WEB=$WORK/web
mkdir -p "$WEB/model" "$WEB/vendor/litertjs/core" "$WEB/vendor/litertjs/wasm-utils" \
  "$WEB/vendor/three/build" "$WEB/vendor/three/examples/jsm/controls" \
  "$WEB/vendor/three/examples/jsm/exporters"
cp "$HERE"/web/*.html "$HERE"/web/*.js "$HERE"/web/*.css "$WEB/"
# The rules the page shares with Python (pixel limit, colour map, mesh trim), from Python.
"$PY" -c 'import sys; from tfsym3d.export import page; page.write(sys.argv[1])' \
  "$WEB/constants.js"
NM=$HERE/node_modules
cp -r "$NM/@litertjs/core/dist" "$NM/@litertjs/core/wasm" "$WEB/vendor/litertjs/core/"
cp -r "$NM/@litertjs/wasm-utils/dist" "$WEB/vendor/litertjs/wasm-utils/"
cp "$NM/three/build/three.module.js" "$NM/three/build/three.core.js" "$WEB/vendor/three/build/"
cp "$NM/three/examples/jsm/controls/OrbitControls.js" "$WEB/vendor/three/examples/jsm/controls/"
cp "$NM/three/examples/jsm/exporters/GLTFExporter.js" "$WEB/vendor/three/examples/jsm/exporters/"
# Their licences travel with them (LiteRT.js: Apache-2.0, stated in its package.json).
cp "$NM/three/LICENSE" "$WEB/vendor/three/LICENSE"
cp "$NM/@litertjs/core/package.json" "$WEB/vendor/litertjs/core/package.json"
entries=()
for model in "${MODELS[@]}"; do
  card=${model%.tflite}.card.json
  [ -f "$model" ] || { echo "build.sh: $model: no such file" >&2; exit 1; }
  [ -f "$card" ] || { echo "build.sh: $card: missing (tfsym3d export writes it beside $model)" >&2; exit 1; }
  cp "$model" "$card" "$WEB/model/"
  name=$(basename "$model" .tflite)
  entries+=("{\"file\": \"model/$name.tflite\", \"card\": \"model/$name.card.json\"}")
done
(IFS=,; echo "[${entries[*]}]") > "$WEB/model/models.json"

if [ -n "$APK" ]; then
  echo "== Android APK"
  bash "$HERE/android/build_apk.sh" --web="$WEB" --out="$WORK/tfsym3d-demo.apk"
fi

rm -rf "$WORK/export"
touch "$WEB/$MARK"
mkdir -p "$OUT"
rm -rf "$OUT/web" "$OUT/tfsym3d-demo.apk"
mv "$WEB" "$OUT/web"
[ -z "$APK" ] || mv "$WORK/tfsym3d-demo.apk" "$OUT/"
echo "built $OUT/web (open it from any static file server)${APK:+ and $OUT/tfsym3d-demo.apk}"
