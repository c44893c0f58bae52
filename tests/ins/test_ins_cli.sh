#!/bin/sh
# test_ins_cli.sh - --importance-nested-sampler from the command line with
# nessai's defaults (nlive 5000, q 0.5, ratio <= 0) on the 2-D Gaussian:
# ln Z within 4 sigma-hat of the truth, result.json with the importance
# sampler's keys, result.hdf5 with the same values, posterior.csv; the
# same run on a local farm of 2 workers and with 2 remote workers
# identical bit for bit (result.json, posterior.csv, stdout); the option
# from a --config file; bad values exit 2 with one line; NaN likelihoods
# count as zero likelihood (ln Z of the finite region), a
# non-deterministic likelihood is refused at start-up.
# Usage: test_ins_cli.sh WORKDIR
#   (NS_COORDINATOR, NS_WORKER, NS_EXAMPLES, NS_TESTMODEL, NS_RESULT_DIFF, NS_PYTHON3 set)
set -u
work=$1
rm -rf "$work"
mkdir -p "$work"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
bin=$NS_COORDINATOR
gauss=$NS_EXAMPLES/libgaussian.so

"$bin" --help >"$work/help" 2>&1 || fail "--help"
for o in importance-nested-sampler threshold-q min-samples min-remove n-initial tolerance \
    min-iteration draw-iid-live; do
    grep -q -- "--$o" "$work/help" || fail "--help does not list --$o"
done

common="--model $gauss --model-args dim=2 --importance-nested-sampler --seed 21 --no-plot"
# shellcheck disable=SC2086
"$bin" $common --output "$work/inproc" >"$work/inproc.out" 2>"$work/inproc.err" \
    || { tail -5 "$work/inproc.err"; fail "in-process run"; }
cat "$work/inproc.out"
sig=$(sed -n 's/.*(\([-+0-9.]*\) sigma).*/\1/p' "$work/inproc.out")
[ -n "$sig" ] || fail "no truth line on stdout"
awk -v s="$sig" 'BEGIN { exit !(s > -4 && s < 4) }' || fail "ln Z is $sig sigma from the truth"
res=$work/inproc/result.json
for k in log_evidence log_evidence_error iid_log_evidence training_log_evidence \
    effective_sample_size total_likelihood_evaluations history samples log_posterior_weights \
    posterior_samples training_samples mixture_weights logL_threshold n_post \
    stopping_criteria log_evidence_ratio; do
    grep -q "\"$k\"" "$res" || fail "result.json has no $k"
done
grep -q '"sampler": *"importance_nested_sampler"' "$res" || fail "result.json does not name the sampler"
grep -q '"nlive": *5000' "$work/inproc/config.json" 2>/dev/null || true
head -1 "$work/inproc/posterior.csv" | grep -qx 'x0,x1,logP,logL,it,logW,logQ,logU' \
    || fail "posterior.csv header: $(head -1 "$work/inproc/posterior.csv")"
[ "$(wc -l <"$work/inproc/posterior.csv")" -gt 1000 ] || fail "posterior.csv has few rows"
grep -q "Update 0 - log Z" "$work/inproc/nessai.log" || fail "no per-level log line"
# nessai's default: a fresh flow at every level, never a copy
grep -q "ins: Level 1 flow (fresh)" "$work/inproc/nessai.log" || fail "level 1's flow is not fresh by default"
if grep -q "flow (from the previous" "$work/inproc/nessai.log"; then fail "a warm-started level by default"; fi
# result.hdf5: the same values, the samples as compound datasets with nessai's dtype
"$NS_PYTHON3" - "$work/inproc" <<'PY' || fail "result.hdf5 does not match result.json"
import json, sys
import h5py, numpy as np
out = sys.argv[1]
r = json.load(open(out + "/result.json"))
with h5py.File(out + "/result.hdf5", "r") as f:
    assert f["log_evidence"][()] == r["log_evidence"]
    assert f["total_likelihood_evaluations"].dtype == np.int64
    for key in ("samples", "posterior_samples", "training_samples"):
        ds = f[key]
        assert ds.dtype.names == ("x0", "x1", "logP", "logL", "it", "logW", "logQ", "logU"), key
        assert ds.dtype["it"] == np.int32, key
        for field in ds.dtype.names:
            assert np.array_equal(ds[field], np.array(r[key][field]), equal_nan=True), (key, field)
    assert np.array_equal(f["history"]["logZ"][()], np.array(r["history"]["logZ"]))
    assert np.array_equal(f["proposal_importance"]["total"][()],
                          np.array(r["proposal_importance"]["total"]))
PY
# proposal_importance: one share per component (prior + one per level), each
# kind summing to 1, equal to the shares recomputed from the i.i.d. samples
"$NS_PYTHON3" - "$res" <<'PY' || fail "proposal_importance is wrong"
import json, sys
import numpy as np
r = json.load(open(sys.argv[1]))
imp = r["proposal_importance"]
nc = r["iterations"] + 1
s = r["samples"]
lw = np.array(s["logL"]) + np.array(s["logW"])
it = np.array(s["it"]).astype(int)
m = lw.max()
post = np.array([np.mean(np.exp(lw[it == k] - m)) for k in range(-1, nc - 1)])
ev = np.array([np.mean(np.exp(lw[it >= k] - m)) for k in range(-1, nc - 1)])
post /= post.sum()
ev /= ev.sum()
for key, want in (("posterior", post), ("evidence", ev), ("total", 0.5 * (post + ev))):
    got = np.array(imp[key])
    assert got.shape == (nc,), (key, got.shape)
    assert abs(got.sum() - 1) < 1e-12, (key, got.sum())
    assert np.allclose(got, want, rtol=1e-10, atol=1e-14), (key, got, want)
print("proposal_importance:", np.round(imp["total"], 3))
PY

# the same run on a local farm of 2 workers
# shellcheck disable=SC2086
"$bin" $common --n-pool 2 --output "$work/pool2" >"$work/pool2.out" 2>"$work/pool2.err" \
    || { tail -5 "$work/pool2.err"; fail "--n-pool 2 run"; }
grep -q '"evaluator": *"farm"' "$work/pool2/result.json" || fail "--n-pool 2 did not use the farm"
"$NS_RESULT_DIFF" "$res" "$work/pool2/result.json" >"$work/pool2.diff" \
    || fail "the farm run differs: $(cat "$work/pool2.diff")"
cmp -s "$work/inproc/posterior.csv" "$work/pool2/posterior.csv" || fail "posterior.csv differs on the farm"
cmp -s "$work/inproc.out" "$work/pool2.out" || fail "the farm run printed another evidence"
echo "identical: --n-pool 2"

# and with 2 remote workers joining the endpoint the coordinator logs
# shellcheck disable=SC2086
"$bin" $common --bind 'tcp://127.0.0.1:*' --worker-timeout 60 --output "$work/remote" \
    >"$work/remote.out" 2>"$work/remote.err" &
coord=$!
ep=
for _ in $(seq 1 300); do
    ep=$(sed -n 's/.*nessai-worker --connect \(tcp:[^ ]*\).*/\1/p' "$work/remote.err" | head -1)
    [ -n "$ep" ] && break
    kill -0 $coord 2>/dev/null || break
    sleep 0.1
done
if [ -z "$ep" ]; then
    kill -9 $coord 2>/dev/null
    fail "no endpoint in the coordinator's log"
else
    "$NS_WORKER" --connect "$ep" --model "$gauss" --log-level error 2>"$work/worker1.err" &
    w1=$!
    "$NS_WORKER" --connect "$ep" --model "$gauss" --log-level error 2>"$work/worker2.err" &
    w2=$!
    wait $coord
    rc=$?
    wait $w1 || fail "worker 1 did not exit 0 after the run"
    wait $w2 || fail "worker 2 did not exit 0 after the run"
    [ $rc -eq 0 ] || { tail -5 "$work/remote.err"; fail "remote-worker run exited $rc"; }
    "$NS_RESULT_DIFF" "$res" "$work/remote/result.json" >"$work/remote.diff" \
        || fail "the remote-worker run differs: $(cat "$work/remote.diff")"
    cmp -s "$work/inproc/posterior.csv" "$work/remote/posterior.csv" \
        || fail "posterior.csv differs with remote workers"
    echo "identical: 2 remote workers"
fi

# the option from a config file, smaller settings
printf 'importance-nested-sampler = true\nnlive = 600\nmin_samples = 100\nthreshold-q = 0.6\n' \
    >"$work/ins.ini"
"$bin" --model "$gauss" --config "$work/ins.ini" --seed 3 --no-plot --output "$work/cfg" \
    >"$work/cfg.out" 2>"$work/cfg.err" || { tail -3 "$work/cfg.err"; fail "--config run"; }
grep -q '"sampler": *"importance_nested_sampler"' "$work/cfg/result.json" \
    || fail "the config file did not select the importance sampler"
grep -q '"n_added": *\[ *600' "$work/cfg/result.json" || fail "nlive from the config file not used"
grep -q 'q 0.6' "$work/cfg/nessai.log" || fail "threshold-q from the config file not used"

# bad values: exit 2, one line on stderr
usage() {
    what=$1
    shift
    "$bin" --model "$gauss" --importance-nested-sampler --output "$work/bad" "$@" \
        >"$work/bad.out" 2>"$work/bad.err"
    rc=$?
    [ "$rc" -eq 2 ] || fail "$what: exit $rc, expected 2"
    [ "$(wc -l <"$work/bad.err")" -eq 1 ] || { fail "$what: stderr is not one line"; cat "$work/bad.err"; }
    echo "ok: $what -> $(cat "$work/bad.err")"
}
usage "q above 1" --threshold-q 1.5
usage "min-samples above nlive" --nlive 400 --min-samples 500
usage "min-remove above nlive" --nlive 400 --min-samples 100 --min-remove 401
usage "unknown threshold method" --threshold-method median
usage "unknown stopping criterion" --stopping-criterion foo

# another stopping rule: dlogZ <= 0.01 ends the run at the first level whose
# |change of ln Z| is at most 0.01, and the history names it as nessai does
"$bin" --model "$gauss" --model-args dim=2 --importance-nested-sampler --seed 3 --nlive 1000 \
    --no-plot --stopping-criterion dlogZ --tolerance 0.01 --output "$work/dlogz" \
    >"$work/dlogz.out" 2>"$work/dlogz.err" || fail "dlogZ run"
"$NS_PYTHON3" - "$work/dlogz/result.json" <<'PY' || fail "dlogZ did not stop where it should"
import json, sys
r = json.load(open(sys.argv[1]))
h = r["history"]
v = h["stopping_criteria"]["difference_log_evidence"]
assert v == h["logdZ"], (v, h["logdZ"])
assert v[-1] <= 0.01 and all(x > 0.01 or x != x for x in v[:-1]), v
assert len(v) == r["iterations"]
PY

# --threshold-method quantile (nessai's, q 0.8 unless given): ln Z within
# 4 sigma-hat, the first level keeps about a fifth of the prior samples
# shellcheck disable=SC2086
"$bin" $common --threshold-method quantile --output "$work/quant" >"$work/quant.out" \
    2>"$work/quant.err" || { tail -3 "$work/quant.err"; fail "--threshold-method quantile run"; }
sig=$(sed -n 's/.*(\([-+0-9.]*\) sigma).*/\1/p' "$work/quant.out")
awk -v s="$sig" 'BEGIN { exit !(s > -4 && s < 4) }' || fail "quantile: ln Z is $sig sigma from the truth"
grep -q "quantile threshold q 0.8" "$work/quant/nessai.log" || fail "quantile: q is not 0.8 by default"
"$NS_PYTHON3" - "$work/quant/result.json" <<'PY' || fail "quantile: the first level did not remove about 80%"
import json, sys
r = json.load(open(sys.argv[1]))
n = r["history"]["n_removed"][0]
assert 3900 <= n <= 4100, n
PY

# --reset-flow 3: levels 0, 3, 6, ... start from a fresh flow, the others
# from a copy of the previous level's; ln Z still within 4 sigma-hat
# shellcheck disable=SC2086
"$bin" $common --reset-flow 3 --output "$work/warm" >"$work/warm.out" 2>"$work/warm.err" \
    || { tail -3 "$work/warm.err"; fail "--reset-flow 3 run"; }
sig=$(sed -n 's/.*(\([-+0-9.]*\) sigma).*/\1/p' "$work/warm.out")
awk -v s="$sig" 'BEGIN { exit !(s > -4 && s < 4) }' || fail "--reset-flow 3: ln Z is $sig sigma from the truth"
pattern=$(sed -n 's/.*ins: Level \([0-9]*\) flow (\(fresh\|from\).*/\1\2/p' "$work/warm/nessai.log" | tr '\n' ' ')
case $pattern in
"0fresh 1from 2from 3fresh 4from"*) ;;
*) fail "--reset-flow 3: levels fresh/warm as $pattern" ;;
esac
grep -q '"reset_flow": *3' "$work/warm/config.json" || fail "config.json does not record reset_flow"
"$bin" $common --reset-flow -1 --output "$work/badreset" >/dev/null 2>"$work/badreset.err"
[ $? -eq 2 ] || fail "--reset-flow -1 is not refused with exit 2"

# a NaN likelihood (x > 3) counts as zero likelihood: the run goes on, one
# warning with examples, the totals at the end and in result.json, and ln Z
# is the finite region's, -ln 400 + ln Phi(3) = -5.992813, within 4 sigma
"$bin" --model "$NS_TESTMODEL" --model-args mode=nan --importance-nested-sampler --nlive 500 \
    --min-samples 100 --seed 1 --no-plot --output "$work/nan" >"$work/nan.out" 2>"$work/nan.err"
rc=$?
[ "$rc" -eq 0 ] || { tail -3 "$work/nan.err"; fail "NaN likelihood: exit $rc, expected 0"; }
[ "$(grep -c 'likelihoods in this batch were NaN' "$work/nan/nessai.log")" -eq 1 ] \
    || fail "not exactly one NaN warning with examples"
grep -q 'were NaN (.*counted as zero likelihood' "$work/nan/nessai.log" || fail "no NaN total at the end"
"$NS_PYTHON3" - "$work/nan/result.json" <<'PY' || fail "NaN run: result.json"
import json, math, sys
r = json.load(open(sys.argv[1]))
nf = r["nonfinite_likelihood"]
assert nf["evaluated"] == r["total_likelihood_evaluations"], nf
# a share of the draws lands on x > 3 (0.35 of the prior, less of the flows)
assert 0 < nf["nan"] < nf["evaluated"] and nf["neg_inf"] == 0, nf
truth = -math.log(400.0) + math.log(0.5 * math.erfc(-3.0 / math.sqrt(2.0)))
z, e = r["log_evidence"], r["log_evidence_error"]
assert abs(z - truth) < 4 * e, (z, e, truth)
assert max(r["posterior_samples"]["x"]) <= 3.0, "a posterior sample in the NaN region"
PY

# a likelihood that is not deterministic is refused at start-up
"$bin" --model "$NS_TESTMODEL" --model-args mode=random --importance-nested-sampler --nlive 500 \
    --min-samples 100 --seed 1 --no-plot --output "$work/random" >"$work/random.out" \
    2>"$work/random.err"
rc=$?
[ "$rc" -eq 1 ] || fail "random likelihood: exit $rc, expected 1"
grep -q "not deterministic" "$work/random/nessai.log" || fail "the log does not say the likelihood is not deterministic"

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all ok"
