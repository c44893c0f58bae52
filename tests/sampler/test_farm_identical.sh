#!/bin/sh
# test_farm_identical.sh - the same S1 run in-process, with local farm pools
# of 1, 2 and 3 workers (--n-pool) and with 2 remote workers (--bind) must
# give the same result.json bit for bit: nested samples, insertion indices,
# evidence, flow training history, posterior, likelihood counts (the
# exactness contract of docs/protocol.md). Only timings, the run's metadata
# and the farm's own counters may differ (see tests/checkpoint/result_compare.h).
# The run is long enough for the flow to train and propose.
# Usage: test_farm_identical.sh WORKDIR
#   (NS_COORDINATOR, NS_WORKER, NS_EXAMPLES, NS_RESULT_DIFF set)
set -u
work=$1
rm -rf "$work"
mkdir -p "$work"
fail() { echo "FAIL: $*"; exit 1; }
for v in "$NS_COORDINATOR" "$NS_WORKER" "$NS_RESULT_DIFF"; do
    [ -x "$v" ] || fail "cannot run $v"
done
[ -r "$NS_EXAMPLES/libgaussian.so" ] || fail "cannot read $NS_EXAMPLES/libgaussian.so"
common="--model $NS_EXAMPLES/libgaussian.so --model-args dim=2 --nlive 200 --seed 17 --no-plot"

# shellcheck disable=SC2086
"$NS_COORDINATOR" $common --output "$work/inproc" >"$work/inproc.out" 2>"$work/inproc.err" \
    || { tail -5 "$work/inproc.err"; fail "in-process run"; }
ref=$work/inproc/result.json
grep -q '"proposal": *"flow"' "$ref" || fail "the flow never proposed in the reference run"
grep -q '"training_count": *[1-9]' "$ref" || fail "the flow never trained in the reference run"

same() {  # same NAME: NAME's result.json is the in-process one
    grep -q '"evaluator": *"farm"' "$work/$1/result.json" || fail "$1 did not use the farm"
    "$NS_RESULT_DIFF" "$ref" "$work/$1/result.json" >"$work/$1.diff" \
        || fail "$1 differs from the in-process run: $(cat "$work/$1.diff")"
    cmp -s "$work/inproc.out" "$work/$1.out" || fail "$1 printed another evidence"
    echo "identical: $1"
}

for k in 1 2 3; do
    # shellcheck disable=SC2086
    "$NS_COORDINATOR" $common --n-pool $k --output "$work/pool$k" >"$work/pool$k.out" \
        2>"$work/pool$k.err" || { tail -5 "$work/pool$k.err"; fail "--n-pool $k run"; }
    same pool$k
done

# Remote workers: the coordinator binds a port the OS picks and logs the
# endpoint workers join with.
# shellcheck disable=SC2086
"$NS_COORDINATOR" $common --bind 'tcp://127.0.0.1:*' --worker-timeout 60 \
    --output "$work/remote" >"$work/remote.out" 2>"$work/remote.err" &
coord=$!
ep=
for _ in $(seq 1 300); do
    ep=$(sed -n 's/.*nessai-worker --connect \(tcp:[^ ]*\).*/\1/p' "$work/remote.err" | head -1)
    [ -n "$ep" ] && break
    kill -0 $coord 2>/dev/null || break
    sleep 0.1
done
[ -n "$ep" ] || { kill -9 $coord 2>/dev/null; tail -5 "$work/remote.err"; fail "no endpoint in the coordinator's log"; }
"$NS_WORKER" --connect "$ep" --model "$NS_EXAMPLES/libgaussian.so" --log-level error 2>"$work/worker1.err" &
w1=$!
"$NS_WORKER" --connect "$ep" --model "$NS_EXAMPLES/libgaussian.so" --log-level error 2>"$work/worker2.err" &
w2=$!
wait $coord
rc=$?
wait $w1 || { kill -9 $w2 2>/dev/null; fail "worker 1 did not exit 0 after the run"; }
wait $w2 || fail "worker 2 did not exit 0 after the run"
[ $rc -eq 0 ] || { tail -5 "$work/remote.err"; fail "remote-worker run exited $rc"; }
same remote
echo "$(head -1 "$work/inproc.out")"
