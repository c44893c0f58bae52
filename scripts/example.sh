#!/usr/bin/env bash
# Install, build, and run the main job: the coordinator with 2 embedded local
# workers on the 2-D unit Gaussian (benchmark S1), printing ln Z against the truth.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$(nproc)"
./build/bin/nessai-coordinator --model build/examples/libgaussian.so --model-args dim=2 \
  --n-pool 2 --nlive 1000 --seed 1234 --output outdir/example "$@"
