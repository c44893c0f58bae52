#!/usr/bin/env bash
# tests/slurm/install.sh BUILD_DIR SOURCE_DIR - the installed files as a
# plugin author and a cluster user meet them: cmake --install to a temporary
# prefix (moved afterwards, so nothing may depend on where it was made), the
# documented one-line plugin build through pkg-config, the standalone example
# with make and with CMake (find_package), runs of the installed programs on
# those plugins, and the launchers configured for the prefix.
set -euo pipefail
build=$(cd "$1" && pwd)
src=$(cd "$2" && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
T=$(mktemp -d /tmp/nessai-install.XXXXXX)
trap 'rm -rf "$T"' EXIT

cmake --install "$build" --prefix "$T/first" >/dev/null || fail "cmake --install failed"
mv "$T/first" "$T/prefix"
P=$T/prefix
for f in bin/nessai-coordinator bin/nessai-worker include/nessai/model.h \
         lib/nessai-farm/libgaussian.so lib/pkgconfig/nessai-farm.pc \
         lib/cmake/nessai-farm/nessai-farmConfig.cmake \
         share/nessai-farm/deploy/nessai.slurm share/nessai-farm/deploy/nessai.sub \
         share/nessai-farm/deploy/nessai-worker.service \
         share/nessai-farm/examples/standalone/Makefile; do
    [ -e "$P/$f" ] || fail "$f is not installed"
done
cmp -s "$P/include/nessai/model.h" "$src/common/include/nessai/model.h" \
    || fail "the installed model.h differs from common/include/nessai/model.h"
[ -x "$P/share/nessai-farm/deploy/nessai.slurm" ] || fail "nessai.slurm is not executable"

# The launchers name the prefix they were installed to (here $T/first).
for f in nessai.slurm nessai.sub nessai-worker.service nessai-condor-coordinator.sh; do
    grep -q "$T/first" "$P/share/nessai-farm/deploy/$f" || fail "$f does not name the install prefix"
    ! grep -n '@[A-Z_]*@' "$P/share/nessai-farm/deploy/$f" || fail "$f has unconfigured placeholders"
done

export PKG_CONFIG_PATH=$P/lib/pkgconfig
[ "$(pkg-config --modversion nessai-farm)" = "$(sed -n 's/^project(nessai_farm VERSION \([0-9.]*\).*/\1/p' "$src/CMakeLists.txt")" ] \
    || fail "nessai-farm.pc has the wrong version"
inc=$(pkg-config --variable=includedir nessai-farm)
[ "$(cd "$inc" && pwd)" = "$P/include" ] || fail "pkg-config includedir $inc is not $P/include"

cp -r "$P/share/nessai-farm/examples/standalone" "$T/sa"
cd "$T/sa"
! grep -q example_util mymodel.c || fail "the standalone example uses examples/example_util.h"
# The line in the README.
cc $(pkg-config --cflags nessai-farm) -shared -fPIC mymodel.c -o libmymodel.so -lm \
    || fail "the one-line plugin build failed"
make -s libmymodel.so CFLAGS="-O2 -Wall -Wextra -Werror" -B >/dev/null || fail "make failed"
cmake -S . -B b -DCMAKE_PREFIX_PATH="$P" >/dev/null || fail "find_package(nessai-farm) failed"
cmake --build b >/dev/null || fail "the CMake build of the standalone example failed"

run() {   # run PLUGIN OUT [options]: ln Z line of a short run with 2 local workers
    "$P/bin/nessai-coordinator" --model "$1" --output "$2" --n-pool 2 --nlive 200 --seed 3 \
        "${@:3}" 2>/dev/null | grep '^ln Z'
}
a=$(run ./libmymodel.so o1 --model-args dim=2,sigma=0.5) || fail "the coordinator failed on the plugin"
b=$(run ./b/libmymodel.so o2 --model-args dim=2,sigma=0.5) || fail "the coordinator failed on the CMake plugin"
[ "$a" = "$b" ] || fail "the two builds of the plugin give different runs: $a / $b"
run "$P/lib/nessai-farm/libgaussian.so" o3 >/dev/null || fail "the installed example plugin does not run"
rc=0
"$P/bin/nessai-coordinator" --model ./libmymodel.so --model-args dim=2,sigmaa=1 --output o4 \
    2> err.txt || rc=$?
[ "$rc" -eq 2 ] && grep -q "unknown model argument 'sigmaa=1'" err.txt \
    || fail "a mistyped model argument is not refused with exit 2: $(cat err.txt)"
# Python models from the installed files: the embedding plugin beside the
# example plugins (not the build tree's), nessai_farm beside it, nessai-plot
# beside the coordinator, and FlowSampler with the installed package.
[ -e "$P/lib/nessai-farm/libnessai_python.so" ] || fail "libnessai_python.so is not installed"
[ -e "$P/lib/nessai-farm/nessai_farm/__init__.py" ] || fail "the nessai_farm package is not installed"
[ -x "$P/bin/nessai-plot" ] || fail "nessai-plot is not installed"
cp "$src/examples/python/mymodel.py" .
LD_DEBUG=files "$P/bin/nessai-coordinator" --model mymodel.py --output o5 --n-pool 2 --nlive 200 \
    --seed 3 > py.out 2> py.err || fail "the installed coordinator failed on a Python model: $(tail -3 py.err)"
grep "libnessai_python.so.*dynamically loaded" py.err | grep -q "file=$P/lib/nessai-farm/" \
    || fail "the installed coordinator did not load the installed Python plugin"
[ -s o5/posterior_distribution.png ] || fail "the installed nessai-plot drew no posterior plot"
cat > fs.py <<'PY'
from mymodel import MyModel
from nessai_farm import FlowSampler
result, post = FlowSampler(MyModel(), output="o6", n_pool=2, seed=3, nlive=200, plot=False).run()
print("ln Z = %.4f" % result["log_evidence"], len(post))
PY
PYTHONPATH=$P/lib/nessai-farm /usr/bin/python3 fs.py > fs.out 2> fs.err \
    || fail "FlowSampler with the installed package failed: $(tail -3 fs.err)"
[ "$(grep -o '^ln Z = [-0-9.]*' py.out | head -1)" = "$(grep -o '^ln Z = [-0-9.]*' fs.out | head -1)" ] \
    || fail "FlowSampler and the coordinator differ: $(cat py.out fs.out)"
echo "install: $a with the installed files only"
echo "install: 1 passed, 0 failed"
