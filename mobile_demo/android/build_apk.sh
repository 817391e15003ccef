#!/usr/bin/env bash
# Builds the Android APK that hosts the web app offline, from Debian's packages only:
# aapt (manifest + assets, against framework-res.apk), smali (the three small classes
# in smali/ -> classes.dex; Debian has no Java-to-DEX compiler), zipalign, and apksigner
# with a debug key made here by the JDK's keytool (or --keystore=FILE, password in
# $KEYSTORE_PASS). Checks the result as Android's tools do: aapt dump badging and
# apksigner verify.
#
#   bash mobile_demo/android/build_apk.sh --web=DIR/web --out=DIR/tfsym3d-demo.apk
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
WEB= OUT= KEYSTORE=
for arg in "$@"; do
  case "$arg" in
    --web=*) WEB=${arg#*=} ;;
    --out=*) OUT=${arg#*=} ;;
    --keystore=*) KEYSTORE=${arg#*=} ;;
    *) echo "build_apk.sh: unknown argument $arg" >&2; exit 2 ;;
  esac
done
[ -f "$WEB/index.html" ] || { echo "build_apk.sh: $WEB/index.html: no web app there" >&2; exit 1; }
FRAMEWORK=${ANDROID_FRAMEWORK_RES:-/usr/share/android-framework-res/framework-res.apk}
for tool in aapt smali zipalign apksigner keytool; do
  command -v "$tool" >/dev/null || {
    echo "build_apk.sh: $tool not found (Debian: apt-get install aapt smali zipalign apksigner default-jdk-headless)" >&2
    exit 1; }
done
[ -f "$FRAMEWORK" ] || { echo "build_apk.sh: $FRAMEWORK: missing (Debian: android-framework-res)" >&2; exit 1; }

TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
mkdir -p "$TMP/assets"
cp -r "$WEB" "$TMP/assets/web"
smali assemble --api 23 -o "$TMP/classes.dex" "$HERE/smali"
# -0 '': store everything uncompressed (the model and the WebAssembly are read as they lie).
aapt package -f -0 '' -M "$HERE/AndroidManifest.xml" -I "$FRAMEWORK" -A "$TMP/assets" \
  -F "$TMP/unsigned.apk"
(cd "$TMP" && aapt add -f unsigned.apk classes.dex >/dev/null)
zipalign -f 4 "$TMP/unsigned.apk" "$TMP/aligned.apk"
if [ -z "$KEYSTORE" ]; then
  KEYSTORE=$TMP/debug.keystore
  KEYSTORE_PASS=android
  keytool -genkeypair -keystore "$KEYSTORE" -storepass "$KEYSTORE_PASS" -alias demo \
    -keyalg RSA -keysize 2048 -validity 10000 -dname "CN=tfsym3d demo (debug)" 2>/dev/null
fi
apksigner sign --ks "$KEYSTORE" --ks-pass "pass:${KEYSTORE_PASS:?set KEYSTORE_PASS}" \
  --out "$TMP/signed.apk" "$TMP/aligned.apk"
apksigner verify "$TMP/signed.apk"
aapt dump badging "$TMP/signed.apk" | grep -E "^(package|launchable-activity|uses-permission)" >&2
mv "$TMP/signed.apk" "$OUT"
echo "apk: $OUT ($(du -h "$OUT" | cut -f1))" >&2
