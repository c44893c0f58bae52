#!/bin/sh
# test_ins_ckpt.sh - checkpoints of the importance nested sampler: a run
# SIGKILLed after a level and resumed, a run stopped by SIGTERM inside a
# level (exit 130, the checkpoint of the last level boundary) and resumed,
# and a finished run resumed, all end with the uninterrupted run's
# result.json and posterior.csv bit for bit; the standard sampler refuses
# the checkpoint (exit 2, saying so).
# Usage: test_ins_ckpt.sh WORKDIR  (NS_COORDINATOR, NS_EXAMPLES, NS_RESULT_DIFF set)
set -u
work=$1
rm -rf "$work"
mkdir -p "$work"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
bin=$NS_COORDINATOR
common="--model $NS_EXAMPLES/libgaussian.so --model-args dim=2 --importance-nested-sampler
  --nlive 2000 --min-samples 200 --seed 8 --no-plot --checkpoint-interval 0"

# shellcheck disable=SC2086
"$bin" $common --output "$work/ref" >"$work/ref.out" 2>"$work/ref.err" \
    || { tail -3 "$work/ref.err"; fail "reference run"; }
levels=$(sed -n 's/.*"iterations": *\([0-9]*\).*/\1/p' "$work/ref/result.json" | head -1)
[ "${levels:-0}" -ge 3 ] || fail "the reference run has ${levels:-no} levels, the test needs 3"

same() {  # same NAME: NAME's results are the reference's
    "$NS_RESULT_DIFF" "$work/ref/result.json" "$work/$1/result.json" >"$work/$1.diff" \
        || fail "$1: result.json differs: $(cat "$work/$1.diff")"
    cmp -s "$work/ref/posterior.csv" "$work/$1/posterior.csv" || fail "$1: posterior.csv differs"
    cmp -s "$work/ref.out" "$work/$1.out" || fail "$1: another ln Z on stdout"
    echo "identical: $1"
}

# start NAME: run in the background until the log has line $2, then send $3
stop_at() {
    name=$1 line=$2 sig=$3
    # shellcheck disable=SC2086
    "$bin" $common --output "$work/$name" >"$work/$name.out" 2>"$work/$name.err" &
    pid=$!
    i=0
    while [ $i -lt 600 ]; do
        grep -q "$line" "$work/$name/nessai.log" 2>/dev/null && break
        kill -0 $pid 2>/dev/null || break
        sleep 0.02
        i=$((i + 1))
    done
    kill -"$sig" $pid 2>/dev/null
    wait $pid
    rc=$?
}

resume() {  # resume NAME: run again on the same output to the end
    # shellcheck disable=SC2086
    "$bin" $common --output "$work/$1" >"$work/$1.out" 2>"$work/$1.err" \
        || { tail -3 "$work/$1.err"; fail "$1: resumed run"; }
    grep -q "Resuming from iteration" "$work/$1/nessai.log" || fail "$1: did not resume"
}

stop_at kill "Update 1 " KILL
[ "$rc" -eq 137 ] || fail "kill: exit $rc, expected 137 (SIGKILL)"
resume kill
same kill

stop_at term "Training next proposal" TERM
[ "$rc" -eq 130 ] || fail "term: exit $rc, expected 130"
grep -q "written reason=signal" "$work/term/nessai.log" || fail "term: no checkpoint on SIGTERM"
resume term
same term

# a finished run resumed returns its result at once
resume term
same term

# the standard sampler does not take this checkpoint
"$bin" --model "$NS_EXAMPLES/libgaussian.so" --model-args dim=2 --seed 8 --no-plot \
    --output "$work/ref" >"$work/std.out" 2>"$work/std.err"
rc=$?
[ "$rc" -eq 2 ] || fail "standard sampler on the checkpoint: exit $rc, expected 2"
tail -1 "$work/std.err" | grep -q "error: checkpoint .* was written by the importance nested sampler; this run uses the standard nested sampler" \
    || fail "standard sampler on the checkpoint: $(tail -1 "$work/std.err")"

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all ok"
