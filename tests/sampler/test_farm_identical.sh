#!/bin/sh
# test_farm_identical.sh - the same S1 run in-process and with 3 local farm
# workers (--n-pool 3) must give bit-identical nested samples, insertion
# indices, evidence and likelihood counts (the exactness contract of docs/protocol.md).
# Usage: test_farm_identical.sh WORKDIR  (NS_COORDINATOR, NS_EXAMPLES set)
set -u
work=$1
rm -rf "$work"
mkdir -p "$work"
common="--model $NS_EXAMPLES/libgaussian.so --model-args dim=2 --nlive 300 --seed 17
 --maximum-uninformed inf --uninformed-acceptance-threshold 0 --no-plot"
# shellcheck disable=SC2086
"$NS_COORDINATOR" $common --output "$work/inproc" >"$work/inproc.out" 2>"$work/inproc.err" || {
    echo "FAIL: in-process run"; tail -5 "$work/inproc.err"; exit 1; }
# shellcheck disable=SC2086
"$NS_COORDINATOR" $common --n-pool 3 --output "$work/farm" >"$work/farm.out" 2>"$work/farm.err" || {
    echo "FAIL: farm run"; tail -5 "$work/farm.err"; exit 1; }
grep -q '"evaluator": *"farm"\|"evaluator":[[:space:]]*"farm"' "$work/farm/result.json" || {
    echo "FAIL: the second run did not use the farm"; exit 1; }
# From the insertion indices to the evidence error: every sample value,
# weight and birth contour (cJSON writes keys in a fixed order).
for r in inproc farm; do
    sed -n '/^\t"insertion_indices"/,/^\t"log_evidence_error"/p' "$work/$r/result.json" >"$work/$r.samples"
    grep '"total_likelihood_evaluations"' "$work/$r/result.json" >>"$work/$r.samples"
done
[ -s "$work/inproc.samples" ] || { echo "FAIL: nothing extracted"; exit 1; }
if ! cmp -s "$work/inproc.samples" "$work/farm.samples"; then
    echo "FAIL: in-process and farm results differ"
    diff "$work/inproc.samples" "$work/farm.samples" | head -5
    exit 1
fi
cmp -s "$work/inproc.out" "$work/farm.out" || { echo "FAIL: printed evidence differs"; exit 1; }
echo "identical: $(cat "$work/farm.out" | head -1)"
