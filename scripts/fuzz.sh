#!/usr/bin/env bash
# Fuzz the farm protocol's decoders (docs/protocol.md, "Fuzzing"): build the
# libFuzzer harnesses in tests/fuzz/ with clang (-fsanitize=fuzzer,address,
# undefined) against the protocol sources, then run each one for a bounded
# time, seeded with its committed corpus tests/fuzz/corpus/<harness>/.
#   scripts/fuzz.sh [--build DIR] [--time SECONDS] [--seeds]
#     --build DIR     where binaries, new inputs and findings go (build-fuzz)
#     --time SECONDS  per harness (default 45; NESSAI_FUZZ_TIME also sets it)
#     --seeds         regenerate the committed corpora and stop
# Exit status 0 when every harness ran clean; 1 on a finding (the input is
# left in DIR as crash-*); 2 when clang or its libFuzzer runtime is missing.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=$root/build-fuzz
secs=${NESSAI_FUZZ_TIME:-45}
seeds=0
while [ $# -gt 0 ]; do
  case "$1" in
    --build) out=$2; shift 2 ;;
    --time) secs=$2; shift 2 ;;
    --seeds) seeds=1; shift ;;
    *) echo "fuzz.sh: unknown argument $1" >&2; exit 2 ;;
  esac
done
cc=${NESSAI_FUZZ_CC:-clang}
if ! command -v "$cc" >/dev/null 2>&1; then
  echo "fuzz.sh: $cc not found; install clang and libclang-rt-14-dev (scripts/deps.sh)" >&2
  exit 2
fi
mkdir -p "$out"
inc=(-I"$root/protocol/include" -I"$root/common/include")
flags=(-std=gnu11 -g -O1 -Wall -Wextra -Werror -Wno-unused-parameter)
# shellcheck disable=SC2207
msgpack=($(pkg-config --cflags --libs msgpack))
# shellcheck disable=SC2207
zmq=($(pkg-config --cflags --libs libczmq libzmq))

if [ "$seeds" = 1 ]; then
  "$cc" "${flags[@]}" "${inc[@]}" -o "$out/gen_corpus" "$root/tests/fuzz/gen_corpus.c" \
    "$root/protocol/src/codec.c" "${msgpack[@]}" -lm
  rm -rf "$root/tests/fuzz/corpus"
  mkdir -p "$root/tests/fuzz/corpus/msg_decode" "$root/tests/fuzz/corpus/endpoint"
  "$out/gen_corpus" "$root/tests/fuzz/corpus"
  echo "fuzz.sh: seeds written to tests/fuzz/corpus/"
  exit 0
fi

san=(-fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer)
build() {  # name sources... -- libs...
  local name=$1; shift
  local srcs=() libs=()
  while [ "$1" != "--" ]; do srcs+=("$1"); shift; done
  shift
  libs=("$@")
  if ! "$cc" "${flags[@]}" "${san[@]}" "${inc[@]}" -o "$out/fuzz_$name" "${srcs[@]}" \
       "${libs[@]}"; then
    echo "fuzz.sh: cannot build fuzz_$name with $cc -fsanitize=fuzzer (is libclang-rt-14-dev" \
         "installed?)" >&2
    exit 2
  fi
}
build msg_decode "$root/tests/fuzz/fuzz_msg_decode.c" "$root/protocol/src/codec.c" \
  -- "${msgpack[@]}"
build endpoint "$root/tests/fuzz/fuzz_endpoint.c" "$root/protocol/src/wire.c" \
  "$root/protocol/src/codec.c" -- "${zmq[@]}" "${msgpack[@]}"

status=0
for name in msg_decode endpoint; do
  corpus=$root/tests/fuzz/corpus/$name
  if [ -z "$(ls -A "$corpus" 2>/dev/null)" ]; then
    echo "fuzz.sh: the seed corpus $corpus is empty" >&2
    exit 1
  fi
  # New inputs go to the first directory (ours), never into the committed corpus.
  mkdir -p "$out/corpus-$name"
  echo "== fuzz_$name: ${secs}s, seeds $(ls "$corpus" | wc -l) in tests/fuzz/corpus/$name"
  start=$(date +%s)
  if ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1 \
     "$out/fuzz_$name" -max_total_time="$secs" -max_len=10000 -timeout=10 \
       -rss_limit_mb=2048 -print_final_stats=1 -artifact_prefix="$out/" \
       "$out/corpus-$name" "$corpus" > "$out/fuzz_$name.log" 2>&1; then
    echo "   clean after $(( $(date +%s) - start ))s:" \
         "$(grep -Eo '^stat::number_of_executed_units: *[0-9]+' "$out/fuzz_$name.log" \
            | grep -Eo '[0-9]+$') executions"
  else
    status=1
    echo "fuzz.sh: fuzz_$name found a failing input (log: $out/fuzz_$name.log):" >&2
    grep -E "ERROR|SUMMARY|fuzz_|Test unit written" "$out/fuzz_$name.log" | head -20 >&2
  fi
done
exit $status
