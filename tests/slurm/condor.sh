#!/usr/bin/env bash
# tests/slurm/condor.sh BUILD_DIR RESULT_DIFF
#
# HTCondor is not packaged for Debian 12, so the installed deploy/nessai.sub
# is run by hand: its jobs' commands (submit_commands.py reads them from the
# file) are started as an execute node would, with HTCondor's kill signal
# (SIGTERM) and its self-checkpoint cycle: the coordinator exits with the
# file's +SuccessCheckpointExitCode, its transferred output is handed to a new
# start in a new scratch directory, and a worker job that was never restarted
# follows the coordinator through the published address file. The result
# must equal an uninterrupted run's, bit for bit.
set -euo pipefail
build=$(cd "$1" && pwd)
result_diff=$2
here=$(cd "$(dirname "$0")" && pwd)

fail() { echo "FAIL: $*" >&2; exit 1; }
T=$(mktemp -d /tmp/nessai-condor.XXXXXX)
started=()
cleanup() {
    local rc=$?
    set +e
    for pid in "${started[@]}"; do kill -KILL "$pid" 2>/dev/null; done
    wait 2>/dev/null
    if [ "$rc" -ne 0 ] || [ -n "${NESSAI_TEST_KEEP:-}" ]; then
        echo "--- logs (kept in $T)"
        for f in "$T"/*.log "$T"/*/outdir/nessai.log; do
            [ -f "$f" ] && { echo "== $f"; grep -v ' DEBUG ' "$f" | tail -n 25; }
        done
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
trap cleanup EXIT

prefix=$T/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null || fail "cmake --install failed"
sub=$prefix/share/nessai-farm/deploy/nessai.sub
grep -q "^prefix *= $prefix\$" "$sub" || fail "$sub is not configured with the install prefix"
grep -q '^+SuccessCheckpointExitCode = 77$' "$sub" || fail "$sub: no +SuccessCheckpointExitCode = 77"
grep -q -- '--checkpoint-exit-code 77' "$sub" || fail "$sub: the coordinator does not exit 77"

commands() {   # the jobs of the submit file for the shared directory $1
    /usr/bin/python3 "$here/submit_commands.py" "$sub" shared_dir="$1" \
        model="$prefix/lib/nessai-farm/libgaussian.so" model_args="dim=2,delay_ms=2" \
        extra_args="--nlive 500 --seed 5" request_cpus=1
}
job() {   # job ROLE SHARED: the command of the first job of ROLE, one word a line
    commands "$2" | awk -F'\t' -v r="$1" '$1 == r { for (i = 3; i <= NF; i++) print $i; exit }'
}
wait_for() {   # wait_for SECONDS WHAT COMMAND...
    local until=$((SECONDS + $1)) what=$2
    shift 2
    until "$@"; do
        [ "$SECONDS" -lt "$until" ] || fail "timed out waiting for $what"
        sleep 0.5
    done
}
samples() { grep -q ' it: ' "$1/outdir/nessai.log" 2>/dev/null; }

[ "$(commands "$T/x" | awk -F'\t' '$1 == "worker"' | wc -l)" -ge 1 ] || fail "no worker jobs in $sub"
[ "$(commands "$T/x" | awk -F'\t' '$1 == "coordinator"' | wc -l)" -eq 1 ] \
    || fail "not one coordinator job in $sub"

# Reference: the same jobs, uninterrupted.
mkdir -p "$T/ref-shared" "$T/ref-scratch"
mapfile -t wcmd < <(job worker "$T/ref-shared")
mapfile -t ccmd < <(job coordinator "$T/ref-shared")
(cd "$T/ref-shared" && exec "${wcmd[@]}") > "$T/ref-worker.log" 2>&1 &
rw=$!
started+=("$rw")
(cd "$T/ref-scratch" && exec "${ccmd[@]}") > "$T/ref-coordinator.log" 2>&1 \
    || fail "the reference coordinator failed"
wait "$rw" || fail "the reference worker did not end with 0 after the run"

# The self-checkpointing run. The worker job starts first and waits.
shared=$T/shared
mkdir -p "$shared" "$T/scratch1" "$T/spool" "$T/scratch2"
mapfile -t wcmd < <(job worker "$shared")
mapfile -t ccmd < <(job coordinator "$shared")
(cd "$shared" && exec "${wcmd[@]}") > "$T/worker.log" 2>&1 &
wpid=$!
started+=("$wpid")
(cd "$T/scratch1" && exec "${ccmd[@]}") > "$T/coordinator1.log" 2>&1 &
c1=$!
started+=("$c1")
wait_for 60 "the first start to sample" samples "$T/scratch1"
first=$(cat "$shared/farm.address")
[ "$first" = "$(cat "$T/scratch1/outdir/farm.address")" ] \
    || fail "the published address differs from the coordinator's"
kill -TERM "$c1"   # HTCondor's kill_sig
rc=0
wait "$c1" || rc=$?
[ "$rc" -eq 77 ] || fail "the coordinator exited $rc on SIGTERM, not 77"
# The checkpoint files go to the spool and come back for the next start.
cp -a "$T/scratch1/outdir" "$T/spool/"
cp -a "$T/spool/outdir" "$T/scratch2/"
kill -0 "$wpid" 2>/dev/null || fail "the worker job left when the coordinator checkpointed"
(cd "$T/scratch2" && exec "${ccmd[@]}") > "$T/coordinator2.log" 2>&1 \
    || fail "the resumed coordinator failed"
second=$(cat "$shared/farm.address")
[ "$second" != "$first" ] || fail "the second start published the first one's address ($first)"
grep -q "Resuming from iteration" "$T/scratch2/outdir/nessai.log" || fail "the second start did not resume"
wait_for 30 "the worker job to end" eval '! kill -0 '"$wpid"' 2>/dev/null'
rc=0
wait "$wpid" || rc=$?
[ "$rc" -eq 0 ] || fail "the worker job ended with $rc, not 0"
grep -q "registered id=.* coordinator=$second " "$T/worker.log" \
    || fail "the worker did not follow the coordinator to $second"
"$result_diff" "$T/ref-scratch/outdir/result.json" "$T/scratch2/outdir/result.json" \
    || fail "the self-checkpointed result differs from the uninterrupted one"
echo "condor: checkpoint exit 77, resumed from the spool, worker followed $first -> $second;" \
     "$(grep '^ln Z' "$T/coordinator2.log")"
echo "condor: 1 passed, 0 failed"
