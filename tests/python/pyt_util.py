"""Helpers of the Python-model tests: running the programs of the build tree,
comparing result.json files, temporary directories."""
import json
import math
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
MODELS = os.path.join(HERE, "models")
BIN = os.environ["NESSAI_BIN_DIR"]
EXAMPLES = os.environ["NESSAI_EXAMPLES_DIR"]
SOURCE = os.environ.get("NESSAI_SOURCE_DIR", os.path.dirname(os.path.dirname(HERE)))
COORDINATOR = os.path.join(BIN, "nessai-coordinator")
WORKER = os.path.join(BIN, "nessai-worker")

# Keys whose values are clocks, hosts or the model's identity, not results.
IGNORED = {"run", "farm"}


def model(name, cls=None):
    path = os.path.join(MODELS, name + ".py")
    return path + (":" + cls if cls else "")


def plugin(name):
    return os.path.join(EXAMPLES, "lib%s.so" % name)


def tmpdir(test):
    d = tempfile.mkdtemp(prefix="nessai-py-")
    test.addCleanup(shutil.rmtree, d, True)
    return d


def coordinator(args, timeout=300, **kw):
    """Run nessai-coordinator to its end. Returns the CompletedProcess.
    Without plots unless args ask for them: these tests compare results,
    and matplotlib would add seconds to every run."""
    args = list(args)
    if "--plot" not in args and "--no-plot" not in args and "--help" not in args:
        args.append("--no-plot")
    return subprocess.run([COORDINATOR] + args, capture_output=True, text=True,
                          timeout=timeout, **kw)


def load(out):
    with open(os.path.join(out, "result.json")) as f:
        return json.load(f)


def differences(a, b, path=""):
    """Paths where two result trees differ (NaN equals NaN; times ignored)."""
    out = []
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            if (not path and k in IGNORED) or "time" in k:
                continue
            if k not in a or k not in b:
                out.append(path + "/" + k + " (missing)")
            else:
                out += differences(a[k], b[k], path + "/" + k)
    elif isinstance(a, list) and isinstance(b, list):
        if len(a) != len(b):
            out.append(path + " (lengths %d, %d)" % (len(a), len(b)))
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                out += differences(x, y, "%s[%d]" % (path, i))
                if len(out) > 5:
                    break
    elif isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        pass
    elif a != b or type(a) is not type(b):
        out.append("%s: %r != %r" % (path, a, b))
    return out


def spawn_worker(endpoint, *extra, log=None):
    err = open(log, "w") if log else subprocess.DEVNULL
    try:
        return subprocess.Popen([WORKER, "--connect", endpoint,
                                 "--allow-model-dir", MODELS + ":" + EXAMPLES] + list(extra),
                                stdout=subprocess.DEVNULL, stderr=err)
    finally:
        if log:
            err.close()


def wait_for_line(path, pattern, timeout=30.0, proc=None):
    """The first match of pattern in the file at path, waiting for it."""
    t0 = time.time()
    while time.time() - t0 < timeout:
        if os.path.exists(path):
            with open(path) as f:
                m = re.search(pattern, f.read())
            if m:
                return m
        if proc is not None and proc.poll() is not None:
            break
        time.sleep(0.05)
    return None


def stop(proc):
    if proc.poll() is None:
        proc.send_signal(signal.SIGKILL)
    proc.wait()
