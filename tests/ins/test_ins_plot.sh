#!/bin/sh
# test_ins_plot.sh - nessai's importance-sampler plots: a short
# --importance-nested-sampler run with --plot writes posterior_distribution,
# state, trace and likelihood_levels .png (valid PNG files of sane pixel and
# byte size); nessai-plot OUTDIR redraws them, also from result.hdf5 alone;
# a plot of the standard sampler asked for on such a directory is a one-line
# usage error (exit 2).
# Usage: test_ins_plot.sh WORKDIR
#   (NS_COORDINATOR, NS_PLOT, NS_EXAMPLES, NS_PYTHON3 set)
set -u
work=$1
rm -rf "$work"
mkdir -p "$work"
fails=0
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
pngs="posterior_distribution state trace likelihood_levels"

# every PNG: signature, IHDR width/height within 200..6000, 10 kB .. 5 MB
check_pngs() {
    "$NS_PYTHON3" - "$1" $pngs <<'PY'
import os, struct, sys
d = sys.argv[1]
bad = 0
for name in sys.argv[2:]:
    p = os.path.join(d, name + ".png")
    if not os.path.exists(p):
        print(f"missing {p}"); bad += 1; continue
    b = open(p, "rb").read()
    if b[:8] != b"\x89PNG\r\n\x1a\n" or b[12:16] != b"IHDR":
        print(f"{p} is not a PNG"); bad += 1; continue
    w, h = struct.unpack(">II", b[16:24])
    if not (200 <= w <= 6000 and 200 <= h <= 6000 and 10_000 <= len(b) <= 5_000_000):
        print(f"{p}: {w}x{h}, {len(b)} bytes"); bad += 1; continue
    print(f"ok {name}.png {w}x{h} {len(b)} bytes")
sys.exit(bad)
PY
}

"$NS_COORDINATOR" --model "$NS_EXAMPLES/libgaussian.so" --model-args dim=2 \
    --importance-nested-sampler --nlive 1000 --seed 3 --plot --plot-python "$NS_PYTHON3" \
    --output "$work/run" >"$work/run.out" 2>"$work/run.err" || fail "the run failed"
grep -q "Producing plots in" "$work/run/nessai.log" || fail "the run did not draw plots"
if grep -q "Plots skipped\|plots failed" "$work/run/nessai.log"; then
    fail "plots: $(grep "Plots skipped\|plots failed" "$work/run/nessai.log")"
fi
check_pngs "$work/run" || fail "plots of the run"

# nessai-plot OUTDIR redraws them
for p in $pngs; do rm -f "$work/run/$p.png"; done
"$NS_PYTHON3" "$NS_PLOT" "$work/run" || fail "nessai-plot OUTDIR: exit $?"
check_pngs "$work/run" || fail "plots of nessai-plot OUTDIR"

# from result.hdf5 alone
mkdir -p "$work/h5"
cp "$work/run/result.hdf5" "$work/run/config.json" "$work/h5/"
"$NS_PYTHON3" "$NS_PLOT" "$work/h5" || fail "nessai-plot on result.hdf5: exit $?"
check_pngs "$work/h5" || fail "plots from result.hdf5"

# a standard-sampler plot on an importance-sampler directory
"$NS_PYTHON3" "$NS_PLOT" --only insertion_indices "$work/run" 2>"$work/only.err"
rc=$?
[ "$rc" -eq 2 ] || fail "--only insertion_indices: exit $rc, expected 2"
[ "$(wc -l <"$work/only.err")" -eq 1 ] || fail "--only insertion_indices: not one line"
cat "$work/only.err"

[ "$fails" -eq 0 ] || { echo "$fails failure(s)"; exit 1; }
echo "all ok"
