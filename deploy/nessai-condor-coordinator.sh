#!/bin/sh
# The coordinator job of deploy/nessai.sub (HTCondor):
#   nessai-condor-coordinator.sh PUBLISH OUTPUT [nessai-coordinator options]
# runs nessai-coordinator --output OUTPUT --bind 'tcp://*:0' (or $NESSAI_BIND) with the
# options given, and copies OUTPUT/farm.address, once the coordinator has
# written it, to PUBLISH on a file system that the worker jobs see (OUTPUT is
# in the job's scratch directory and travels with the checkpoint). The
# coordinator replaces this shell, so it receives HTCondor's kill signal
# itself and its exit code is the job's.
set -eu
if [ $# -lt 2 ]; then
    echo "usage: nessai-condor-coordinator.sh PUBLISH OUTPUT [nessai-coordinator options]" >&2
    exit 2
fi
publish=$1
out=$2
shift 2
bindir=${NESSAI_PREFIX:-@NESSAI_PREFIX@}/bin
mkdir -p "$out"
# A farm.address brought back with the checkpoint names the previous start.
rm -f "$out/farm.address"
(
    i=0
    while [ ! -s "$out/farm.address" ] && [ "$i" -lt 1200 ]; do
        sleep 0.5
        i=$((i + 1))
    done
    if [ -s "$out/farm.address" ]; then
        # What workers need of the farm's keys, first (they look for them
        # beside the address): the coordinator's public key, the shared
        # worker pair and the model line; never the coordinator's secret.
        if [ -d "$out/farm-keys" ]; then
            keys=$(dirname "$publish")/farm-keys
            rm -rf "$keys.tmp.$$" && mkdir -m 700 "$keys.tmp.$$" \
                && for f in coordinator.key worker.key worker.key_secret model; do
                       [ ! -e "$out/farm-keys/$f" ] || cp -p "$out/farm-keys/$f" "$keys.tmp.$$/"
                   done \
                && rm -rf "$keys" && mv -f "$keys.tmp.$$" "$keys"
        fi
        cp "$out/farm.address" "$publish.tmp.$$" && mv -f "$publish.tmp.$$" "$publish"
    fi
) &
exec "$bindir/nessai-coordinator" --output "$out" --bind "${NESSAI_BIND:-tcp://*:0}" "$@"
