#!/usr/bin/env bash
# What the test suite needs beyond Python packages: headless Chromium, espeak-ng and sox for the
# browser and phone tests, redis-server for the multi-replica store tests, graphviz for the flow
# drawing test and openssl for the TLS test's certificate (Debian packages), and the pinned
# yaml-language-server for the editor tests (npm). Safe to run again: both steps are no-ops when
# everything is present.
set -euo pipefail
cd "$(dirname "$0")/.."

need=()
for pkg in chromium espeak-ng sox redis-server graphviz openssl; do
  dpkg -s "$pkg" >/dev/null 2>&1 || need+=("$pkg")
done
if [ ${#need[@]} -gt 0 ]; then
  sudo=""
  [ "$(id -u)" -eq 0 ] || sudo="sudo"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq "${need[@]}"
fi

npm ci --prefix tools/editor --no-audit --no-fund --loglevel=error
