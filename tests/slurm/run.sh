#!/usr/bin/env bash
# tests/slurm/run.sh BUILD_DIR RESULT_DIFF
#
# The shipped deploy/nessai.slurm on a real one-node Slurm cluster on
# localhost: munged, slurmctld and slurmd with their own configuration,
# ports and state under a temporary directory, stopped by pid at the end.
# The build is installed to a temporary prefix and the installed script is
# submitted with only the problem size changed (environment and sbatch
# options):
#   (a) a run that completes, workers from an srun step;
#   (b) at the same time, the same run under a one-minute time limit: it
#       checkpoints on Slurm's signal, requeues itself, resumes, and ends
#       with a result.json identical to (a)'s;
#   (c) the coordinator killed with SIGKILL: the job ends within the
#       workers' --max-wait.
# Fails (never skips) when Slurm or munge is not installed.
set -euo pipefail
build=$(cd "$1" && pwd)
result_diff=$2

fail() { echo "FAIL: $*" >&2; exit 1; }
for prog in munged slurmctld slurmd sbatch squeue scontrol scancel sinfo; do
    command -v "$prog" >/dev/null \
        || fail "$prog not found: install slurm-wlm and munge (scripts/deps.sh)"
done

T=$(mktemp -d /tmp/nessai-slurm.XXXXXX)
chmod 755 "$T"
pids_to_stop=()
cleanup() {
    local rc=$?
    set +e
    if [ -f "$T/slurm.conf" ]; then
        SLURM_CONF=$T/slurm.conf scancel --quiet --user="$(id -un)" 2>/dev/null
        for _ in $(seq 1 20); do
            [ -z "$(SLURM_CONF=$T/slurm.conf squeue -h 2>/dev/null)" ] && break
            sleep 0.5
        done
    fi
    for f in "$T/slurmd.pid" "$T/slurmctld.pid" "$T/munge/munged.pid"; do
        [ -s "$f" ] || continue
        local pid
        pid=$(cat "$f")
        kill -TERM "$pid" 2>/dev/null || continue
        for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.2; done
        kill -KILL "$pid" 2>/dev/null
    done
    if [ "$rc" -ne 0 ] || [ -n "${NESSAI_TEST_KEEP:-}" ]; then
        echo "--- logs (kept in $T)"
        for f in "$T"/log/*.log "$T"/job-*.log; do
            [ -f "$f" ] && { echo "== $f"; grep -v ' DEBUG ' "$f" | tail -n 40; }
        done
    else
        rm -rf "$T"
    fi
    exit "$rc"
}
trap cleanup EXIT

# Two free TCP ports on the loopback interface, for slurmctld and slurmd.
read -r ctld_port slurmd_port < <(/usr/bin/python3 - <<'EOF'
import socket
socks = [socket.socket() for _ in range(2)]
for s in socks:
    s.bind(("127.0.0.1", 0))
print(*[s.getsockname()[1] for s in socks])
EOF
)

# munge: a fresh key and a socket of our own.
mkdir -p "$T/munge" "$T/munge-key" "$T/state" "$T/spool" "$T/log"
chmod 700 "$T/munge-key"
chmod 755 "$T/munge"
dd if=/dev/urandom of="$T/munge-key/munge.key" bs=1024 count=1 status=none
chmod 400 "$T/munge-key/munge.key"
munged --force --socket="$T/munge/socket" --key-file="$T/munge-key/munge.key" \
    --pid-file="$T/munge/munged.pid" --log-file="$T/log/munged.log" \
    --seed-file="$T/munge/seed" || fail "munged did not start"

cpus=$(nproc)
[ "$cpus" -ge 2 ] || fail "needs 2 CPUs, this machine has $cpus"
cat > "$T/slurm.conf" <<EOF
ClusterName=nessaitest
SlurmctldHost=localhost
SlurmctldPort=$ctld_port
SlurmdPort=$slurmd_port
SlurmUser=$(id -un)
SlurmdUser=$(id -un)
AuthType=auth/munge
AuthInfo=socket=$T/munge/socket,cred_expire=10
CredType=cred/munge
StateSaveLocation=$T/state
SlurmdSpoolDir=$T/spool
SlurmctldPidFile=$T/slurmctld.pid
SlurmdPidFile=$T/slurmd.pid
SlurmctldLogFile=$T/log/slurmctld.log
SlurmdLogFile=$T/log/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/none
MpiDefault=none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
ReturnToService=2
KillWait=10
MinJobAge=600
JobRequeue=1
NodeName=localhost NodeAddr=127.0.0.1 CPUs=$cpus State=UNKNOWN
PartitionName=test Nodes=localhost Default=YES MaxTime=INFINITE State=UP
EOF
export SLURM_CONF=$T/slurm.conf
slurmctld -i -f "$SLURM_CONF" || fail "slurmctld did not start"
slurmd -N localhost -f "$SLURM_CONF" || fail "slurmd did not start"
for i in $(seq 1 60); do
    [ "$(sinfo -h -n localhost -o %t 2>/dev/null)" = idle ] && break
    [ "$i" -eq 60 ] && fail "the node did not come up (sinfo: $(sinfo -h -o '%t %E' 2>&1))"
    sleep 0.5
done
echo "slurm: up on localhost, ports $ctld_port/$slurmd_port, $cpus CPUs"

prefix=$T/prefix
cmake --install "$build" --prefix "$prefix" >/dev/null || fail "cmake --install failed"
script=$prefix/share/nessai-farm/deploy/nessai.slurm
[ -x "$script" ] || fail "$script not installed"
grep -q "^NESSAI_PREFIX=\${NESSAI_PREFIX:-$prefix}\$" "$script" \
    || fail "$script is not configured with the install prefix"

model=$prefix/lib/nessai-farm/libgaussian.so
# About 70 s of likelihood time for one worker slot: longer than (b)'s limit.
problem=(NESSAI_MODEL="$model" NESSAI_MODEL_ARGS="dim=2,delay_ms=8"
         NESSAI_ARGS="--nlive 500 --seed 11")

is_final() {
    case "$1" in COMPLETED|FAILED|CANCELLED|TIMEOUT|NODE_FAIL|OUT_OF_MEMORY|PREEMPTED|BOOT_FAIL|DEADLINE) return 0 ;; esac
    return 1
}
job_state() { scontrol show job "$1" 2>/dev/null | sed -n 's/.*JobState=\([A-Z_]*\).*/\1/p'; }
job_field() { scontrol show job "$1" 2>/dev/null | tr ' ' '\n' | sed -n "s/^$2=//p" | head -n 1; }
submit() {   # submit NAME [sbatch options] -- [environment]
    local name=$1
    shift
    local opts=()
    while [ "$1" != -- ]; do opts+=("$1"); shift; done
    shift
    env "$@" sbatch --parsable --job-name="$name" --nodes=1 --cpus-per-task=1 \
        --output="$T/job-$name.log" "${opts[@]}" "$script"
}

mkdir -p "$T/a" "$T/b" "$T/c"
ja=$(submit a --time=10 -- "${problem[@]}" NESSAI_OUTPUT="$T/a" NESSAI_MAX_WAIT=60)
jb=$(submit b --time=1 --signal=TERM@10 -- "${problem[@]}" NESSAI_OUTPUT="$T/b" NESSAI_MAX_WAIT=60)
echo "submitted (a) job $ja and (b) job $jb"

# Wait for both; a requeued job waits for its begin time, which we bring
# forward (the time a cluster keeps a requeued job's credentials).
deadline=$((SECONDS + 420))
while :; do
    sa=$(job_state "$ja")
    sb=$(job_state "$jb")
    is_final "$sa" && is_final "$sb" && break
    [ "$SECONDS" -lt "$deadline" ] || fail "jobs did not finish in time: (a) $sa, (b) $sb"
    if [ "$sb" = PENDING ] && [ "$(job_field "$jb" Reason)" = BeginTime ]; then
        scontrol update JobId="$jb" StartTime=now >/dev/null 2>&1 || true
    fi
    sleep 2
done
echo "(a) $sa, exit $(job_field "$ja" ExitCode); (b) $sb, exit $(job_field "$jb" ExitCode)," \
     "restarts $(job_field "$jb" Restarts)"
[ "$sa" = COMPLETED ] || fail "(a) ended $sa"
[ "$sb" = COMPLETED ] || fail "(b) ended $sb"
[ "$(job_field "$jb" Restarts)" -ge 1 ] || fail "(b) was never requeued"
grep -q "checkpoint written; requeueing job $jb" "$T/job-b.log" \
    || fail "(b) did not requeue on the checkpoint exit code"
grep -q "written reason=signal" "$T/b/nessai.log" || fail "(b) wrote no checkpoint on a signal"
grep -q "Resuming from iteration" "$T/b/nessai.log" || fail "(b) never resumed"
[ "$(grep -c 'nessai.slurm: job' "$T/job-b.log")" -ge 2 ] \
    || fail "(b)'s log does not hold both starts (--open-mode=append)"
grep -q '^ln Z = ' "$T/job-a.log" || fail "(a) printed no ln Z"
"$result_diff" "$T/a/result.json" "$T/b/result.json" \
    || fail "(b)'s continued result differs from (a)'s uninterrupted one"
echo "(a)/(b): $(grep '^ln Z = ' "$T/job-b.log" | tail -n 1), identical results"

# (c) SIGKILL the coordinator once it samples with its workers.
max_wait=20
jc=$(submit c --time=10 -- "${problem[@]}" NESSAI_OUTPUT="$T/c" NESSAI_MAX_WAIT=$max_wait)
deadline=$((SECONDS + 120))
until grep -q "registered id=" "$T/job-c.log" 2>/dev/null && grep -q ' it: ' "$T/c/nessai.log" 2>/dev/null; do
    [ "$SECONDS" -lt "$deadline" ] || fail "(c) did not start sampling: $(job_state "$jc")"
    sleep 1
done
lock=$T/c/nested_sampler_resume.ckpt.lock
cpid=$(grep -o '[0-9][0-9]*' "$lock" | head -n 1)
[ -n "$cpid" ] && kill -0 "$cpid" || fail "(c) no coordinator pid in $lock"
kill -KILL "$cpid"
killed=$SECONDS
until is_final "$(job_state "$jc")"; do
    [ $((SECONDS - killed)) -le $((max_wait + 15)) ] \
        || fail "(c) still $(job_state "$jc") $((SECONDS - killed)) s after the coordinator was killed"
    sleep 1
done
echo "(c) coordinator killed: job $jc $(job_state "$jc") after $((SECONDS - killed)) s" \
     "(workers' --max-wait $max_wait s)"
echo "slurm: 3 passed, 0 failed"
