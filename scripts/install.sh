#!/usr/bin/env bash
# Installs tfsym3d into .venv with its test tools, and what the phone demo and its tests
# need: Debian's Chromium (headless browser tests), the Android packaging tools (aapt,
# smali, zipalign, apksigner, dexdump, framework-res, a JRE for keytool) and the npm
# packages of mobile_demo/ (LiteRT.js, three.js, puppeteer-core; Node.js 20 with npm must
# be there already). Run from anywhere; uses sudo for apt-get unless run as root.
# SKIP_APT=1 leaves the Debian packages out.
set -euo pipefail
cd "$(dirname "$0")/.."
DEB="chromium libsmali-java aapt zipalign apksigner dexdump android-framework-res
     openjdk-17-jre-headless"
if [ -z "${SKIP_APT:-}" ]; then
  SUDO=; [ "$(id -u)" = 0 ] || SUDO=sudo
  $SUDO apt-get update -qq
  # shellcheck disable=SC2086
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq $DEB >/dev/null
fi
(cd mobile_demo && npm ci --no-audit --no-fund --loglevel=error)
python3 -m venv .venv
.venv/bin/pip install -q -e ".[dev]"
