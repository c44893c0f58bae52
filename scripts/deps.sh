#!/usr/bin/env bash
# Install the Debian 12 packages nessai-farm needs to build and test (as root).
# Skips apt when everything is already there.
set -euo pipefail
pkgs=(build-essential cmake pkg-config libzmq3-dev libczmq-dev libmsgpack-dev
      libcmocka-dev libgsl-dev libopenblas-dev libcjson-dev libhdf5-dev python3)
missing=()
for p in "${pkgs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update
  apt-get install -y --no-install-recommends "${missing[@]}"
fi
