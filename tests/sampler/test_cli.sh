#!/bin/sh
# test_cli.sh - the coordinator's command line: wrong values exit 2 with one
# line on stderr; --help and --version exit 0; a short run writes
# config.json, result.json, result.hdf5 (unless --no-result-hdf5) and
# nessai.log; a failing model exits 1.
# Usage: test_cli.sh WORKDIR   (NS_COORDINATOR, NS_EXAMPLES, NS_TESTMODEL set)
set -u
work=$1
rm -rf "$work"
mkdir -p "$work"
bin=$NS_COORDINATOR
gauss=$NS_EXAMPLES/libgaussian.so
fails=0

fail() {
    echo "FAIL: $*"
    fails=$((fails + 1))
}

# expect_usage DESCRIPTION ARGS...: exit 2, exactly one stderr line, no stdout
expect_usage() {
    what=$1
    shift
    "$bin" "$@" >"$work/out" 2>"$work/err"
    rc=$?
    [ "$rc" -eq 2 ] || fail "$what: exit $rc, expected 2"
    [ "$(wc -l <"$work/err")" -eq 1 ] || { fail "$what: stderr is not one line"; cat "$work/err"; }
    [ ! -s "$work/out" ] || fail "$what: wrote to stdout"
    echo "ok: $what -> $(cat "$work/err")"
}

expect_usage "no --model" --nlive 100
expect_usage "unknown option" --model "$gauss" --nlivee 100
expect_usage "not a number" --model "$gauss" --nlive abc
expect_usage "below the minimum" --model "$gauss" --nlive 1
expect_usage "negative stopping" --model "$gauss" --stopping -1
expect_usage "bad choice" --model "$gauss" --shrinkage-expectation median
expect_usage "bad bool" --model "$gauss" --analytic-priors maybe
expect_usage "threshold above 1" --model "$gauss" --uninformed-acceptance-threshold 2
expect_usage "missing value" --model "$gauss" --nlive
expect_usage "stray argument" --model "$gauss" extra
expect_usage "missing plugin" --model "$work/nonexistent.so" --output "$work/o1"
expect_usage "bad model args" --model "$NS_TESTMODEL" --model-args mode=bogus --output "$work/o2"
expect_usage "missing config file" --config "$work/none.ini"
printf 'nlive = 100\nno_such_setting = 3\n' >"$work/bad.ini"
expect_usage "unknown config key" --config "$work/bad.ini"
printf 'nlive = 1x\n' >"$work/bad2.ini"
expect_usage "bad config value" --config "$work/bad2.ini"

"$bin" --help >"$work/help" 2>&1 || fail "--help exit status"
for opt in --model --nlive --stopping --maximum-uninformed --uninformed-acceptance-threshold \
    --posterior-method --shrinkage-expectation --seed --output --config; do
    grep -q -- "$opt" "$work/help" || fail "--help does not mention $opt"
done
"$bin" --version | grep -q "nessai-coordinator" || fail "--version"

# A short run driven by a config file, overridden on the command line.
cat >"$work/run.ini" <<INI
# settings for the test
[sampler]
nlive = 100
stopping = 5
maximum_uninformed = inf
uninformed-acceptance-threshold = 0
seed = 3
INI
"$bin" --config "$work/run.ini" --model "$gauss" --model-args dim=2 --stopping 0.1 \
    --output "$work/run" >"$work/run.out" 2>"$work/run.err"
rc=$?
[ "$rc" -eq 0 ] || { fail "run exit $rc"; cat "$work/run.err"; }
grep -q "^ln Z = " "$work/run.out" || fail "no ln Z line on stdout"
grep -q "^truth ln Z = -5.99146" "$work/run.out" || fail "no truth line on stdout"
for f in config.json result.json result.hdf5 nessai.log; do
    [ -s "$work/run/$f" ] || fail "missing $f"
done
# result.hdf5 is an HDF5 file (its 8-byte signature)
[ "$(head -c 8 "$work/run/result.hdf5" | od -An -tx1 | tr -d ' \n')" = "894844460d0a1a0a" ] ||
    fail "result.hdf5 is not an HDF5 file"
grep -q '"nlive":[[:space:]]*100' "$work/run/config.json" || fail "config.json lacks the file's nlive"
grep -q '"stopping":[[:space:]]*0.1' "$work/run/config.json" || fail "config.json lacks the command line's stopping"
grep -q '"seed":[[:space:]]*3' "$work/run/config.json" || fail "config.json lacks the seed"
for key in version seed sampling_time total_likelihood_evaluations likelihood_evaluation_time \
    history truth insertion_indices final_p_value final_ks_statistic nested_samples \
    log_posterior_weights logL_birth log_evidence log_evidence_error information training_time \
    population_time posterior_samples likelihood_evaluations min_log_likelihood \
    max_log_likelihood logZ dlogZ mean_acceptance training_iterations population_acceptance \
    population_radii population_iterations rolling_p checkpoint_iterations farm run; do
    grep -q "\"$key\":" "$work/run/result.json" || fail "result.json lacks $key"
done
grep -q "nessai INFO    : Final ln-evidence: " "$work/run/nessai.log" || fail "nessai.log lacks the final evidence"
grep -q "Rolling KS test: D=" "$work/run/nessai.log" || fail "nessai.log lacks the rolling KS line"
grep -q "it:   100: n eval: " "$work/run/nessai.log" || fail "nessai.log lacks the state line"

# A short run that switches to the flow proposal: result.json carries the
# flow proposal's own statistics under proposal_stats.flow.
"$bin" --model "$gauss" --model-args dim=2 --nlive 100 --seed 3 --checkpoint-interval inf \
    --no-result-hdf5 --output "$work/flow" >/dev/null 2>"$work/flow.err"
rc=$?
[ "$rc" -eq 0 ] || { fail "flow run exit $rc"; cat "$work/flow.err"; }
grep -q '"proposal":[[:space:]]*"flow"' "$work/flow/result.json" || fail "flow run did not use the flow proposal"
grep -q '"proposal_stats":' "$work/flow/result.json" || fail "result.json lacks proposal_stats"
for key in flow_trainings flow_populations flow_latent_draws flow_accepted flow_parameters \
    flow_epochs flow_population_precision flow_training_precision flow_training_time flow_epoch_time \
    flow_population_time flow_inverse_time; do
    grep -q "\"$key\":" "$work/flow/result.json" || fail "result.json lacks proposal_stats.flow.$key"
done
grep -q '"flow_trainings":[[:space:]]*[1-9]' "$work/flow/result.json" || fail "flow run reports no training"
[ ! -e "$work/flow/result.hdf5" ] || fail "--no-result-hdf5 still wrote result.hdf5"

# A model that fails mid-run: exit 1, the reason on stderr.
"$bin" --model "$NS_TESTMODEL" --model-args mode=fail --nlive 100 --maximum-uninformed inf \
    --uninformed-acceptance-threshold 0 --seed 1 --output "$work/fail" >/dev/null 2>"$work/fail.err"
rc=$?
[ "$rc" -eq 1 ] || fail "failing model: exit $rc, expected 1"
grep -q "told to fail" "$work/fail.err" || fail "failing model: reason not shown"

if [ "$fails" -ne 0 ]; then
    echo "$fails check(s) failed"
    exit 1
fi
echo "all CLI checks passed"
