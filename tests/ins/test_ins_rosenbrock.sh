#!/bin/sh
# test_ins_rosenbrock.sh - the importance nested sampler with nessai's
# defaults on the 2-D Rosenbrock likelihood (U[-5,5]^2, ln Z = -5.80413 by
# quadrature), seeds 1 and 4: these runs once drew flow samples whose cube
# coordinate rounds to exactly 1, with a zero cube prior and log W = -inf,
# which made the entropy threshold fall to the bottom of the live set for
# every later level; the run then never stopped. Each run must now stop on
# its own within 20 levels with ln Z within 4 sigma-hat of the truth.
# Usage: test_ins_rosenbrock.sh WORKDIR   (NS_COORDINATOR, NS_EXAMPLES, NS_PYTHON3 set)
set -u
work=$1
rm -rf "$work"
mkdir -p "$work"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
for seed in 1 4; do
    out=$work/seed-$seed
    "$NS_COORDINATOR" --model "$NS_EXAMPLES/librosenbrock.so" --model-args dim=2 \
        --importance-nested-sampler --seed "$seed" --no-plot --checkpoint-interval inf \
        --max-iteration 25 --output "$out" >"$out.out" 2>"$out.err" \
        || { tail -3 "$out.err"; fail "seed $seed: exit $?"; continue; }
    cat "$out.out"
    "$NS_PYTHON3" - "$out/result.json" <<'PY' || fail "seed $seed"
import json, sys
r = json.load(open(sys.argv[1]))
truth = -5.80413
z, e, it = r["log_evidence"], r["log_evidence_error"], r["iterations"]
assert it <= 20, f"{it} levels: the run did not stop on its own"
assert r["history"]["stopping_criteria"]["log_evidence_ratio"][-1] <= 0.0, "ratio not reached"
assert abs(z - truth) < 4 * e, f"ln Z {z} +/- {e} against {truth}"
lw = r["samples"]["logW"]
assert all(w > -1e300 for w in lw), "a sample with log W = -inf"
print(f"seed ok: {it} levels, ln Z {z:.4f} +/- {e:.4f}")
PY
done
[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all passed"
