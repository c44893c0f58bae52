#!/usr/bin/env bash
# Install, build with warnings as errors, run the whole test suite, then run it
# once more under AddressSanitizer + UndefinedBehaviorSanitizer.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/deps.sh
jobs=$(nproc)

echo "== build (Werror) and test"
cmake -S . -B build -DNESSAI_WERROR=ON -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j"$jobs"
ctest --test-dir build --output-on-failure -j"$jobs" --timeout 900

# Run once, above, and not again here: the fuzz test (its harnesses carry
# their own sanitizers) and the tests labelled slow (the real Slurm cluster).
echo "== build and test under ASan+UBSan"
cmake -S . -B build-asan -DNESSAI_WERROR=ON -DCMAKE_BUILD_TYPE=Debug \
  -DNESSAI_SANITIZE=address,undefined >/dev/null
cmake --build build-asan -j"$jobs"
ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
  ctest --test-dir build-asan --output-on-failure -j"$jobs" --timeout 1200 -LE 'fuzz|slow'
