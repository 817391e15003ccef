#!/usr/bin/env bash
# Bundles the phone page's three.js mesh viewer (viewer/shape_page.js with web/view3d.js,
# web/mesh.js and three.js) into one classic script for the index.html that `tfsym3d
# reconstruct` writes: a page opened from disk cannot load ES modules. The bundle is
# shipped in the package (tfsym3d/viewer/shape_viewer.js, three.js's licence kept at its
# end); run this after changing those files (tests/test_reconstruct.py checks that the
# shipped bundle is this script's output). Needs `npm ci` in mobile_demo (esbuild).
#
#   bash mobile_demo/build_viewer.sh [OUT.js]
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:-$HERE/../tfsym3d/viewer/shape_viewer.js}
PY=${PYTHON:-python3}
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
mkdir "$WORK/viewer" "$WORK/web"
cp "$HERE/viewer/shape_page.js" "$WORK/viewer/"
cp "$HERE/web/view3d.js" "$HERE/web/mesh.js" "$WORK/web/"
# mesh.js's BORDER_TRIM, from Python (the phone page's build writes the same file).
"$PY" -c 'import sys; from tfsym3d.export import page; page.write(sys.argv[1])' \
  "$WORK/web/constants.js"
NODE_PATH=$HERE/node_modules "$HERE/node_modules/.bin/esbuild" "$WORK/viewer/shape_page.js" \
  --bundle --format=iife --minify --target=es2020 --log-level=warning --outfile="$OUT"
