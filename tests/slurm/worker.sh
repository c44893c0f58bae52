#!/usr/bin/env bash
# tests/slurm/worker.sh BUILD_DIR - nessai-worker --connect-file and --max-wait
# against real processes: giving up on a coordinator that never answers, one
# that was killed, an address file that never appears or holds no endpoint.
set -euo pipefail
build=$(cd "$1" && pwd)
worker=$build/bin/nessai-worker
coordinator=$build/bin/nessai-coordinator
fail() { echo "FAIL: $*" >&2; exit 1; }
T=$(mktemp -d /tmp/nessai-worker.XXXXXX)
cpid=
trap 'rc=$?; [ -z "$cpid" ] || kill -KILL "$cpid" 2>/dev/null; rm -rf "$T"; exit $rc' EXIT
passed=0

expect_give_up() {   # expect_give_up NAME MAX_WAIT WORKER-ARGS...
    local name=$1 max=$2
    shift 2
    local t0=$SECONDS rc=0
    "$worker" --log-level error --max-wait "$max" "$@" > "$T/$name.out" 2> "$T/$name.err" || rc=$?
    local took=$((SECONDS - t0))
    [ "$rc" -eq 3 ] || fail "$name: exit $rc, not 3 ($(cat "$T/$name.err"))"
    [ "$took" -le $((max + 4)) ] || fail "$name: gave up after $took s with --max-wait $max"
    [ "$(wc -l < "$T/$name.err")" -eq 1 ] || fail "$name: not one line on stderr: $(cat "$T/$name.err")"
    grep -q -- "--max-wait" "$T/$name.err" || fail "$name: the line does not name --max-wait"
    echo "ok $name: exit 3 after $took s: $(cat "$T/$name.err")"
    passed=$((passed + 1))
}

# Nothing listens there.
port=$(/usr/bin/python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
expect_give_up silent 3 --connect "tcp://127.0.0.1:$port"
expect_give_up no-file 2 --connect-file "$T/none/farm.address" --slots 2
printf 'not an endpoint\n' > "$T/garbage"
expect_give_up garbage 2 --connect-file "$T/garbage"

rc=0
"$worker" --connect tcp://127.0.0.1:1 --connect-file "$T/garbage" 2> "$T/both.err" || rc=$?
[ "$rc" -eq 2 ] || fail "--connect with --connect-file: exit $rc, not 2"
passed=$((passed + 1))

# A coordinator killed with SIGKILL: its workers give up within --max-wait.
"$coordinator" --model "$build/examples/libgaussian.so" --model-args dim=2,delay_ms=5 \
    --bind 'tcp://127.0.0.1:0' --output "$T/out" --nlive 300 > "$T/coordinator.log" 2>&1 &
cpid=$!
"$worker" --connect-file "$T/out/farm.address" --max-wait 4 --slots 2 > "$T/w.log" 2>&1 &
wpid=$!
for _ in $(seq 1 120); do grep -q "registered id=" "$T/w.log" && break; sleep 0.25; done
grep -q "registered id=.*coordinator=$(cat "$T/out/farm.address") " "$T/w.log" \
    || fail "the worker did not join through $T/out/farm.address: $(tail -n 5 "$T/w.log")"
kill -KILL "$cpid"
wait "$cpid" 2>/dev/null || true
cpid=
t0=$SECONDS
rc=0
wait "$wpid" || rc=$?
took=$((SECONDS - t0))
[ "$rc" -eq 3 ] || fail "after the coordinator's SIGKILL the worker exited $rc, not 3"
[ "$took" -le 9 ] || fail "the worker gave up $took s after the coordinator died (--max-wait 4)"
[ "$(grep -c 'no coordinator answered' "$T/w.log")" -eq 1 ] || fail "not one give-up line with --slots 2"
echo "ok killed: the worker gave up $took s after the coordinator's SIGKILL"
passed=$((passed + 1))
echo "worker: $passed passed, 0 failed"
