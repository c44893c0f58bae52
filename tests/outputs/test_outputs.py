#!/usr/bin/python3
"""test_outputs.py - the files a run leaves for its user (docs/sampler.md, "Outputs").

Usage: test_outputs.py CHECK WORKDIR
  run        a real run of the 2-D Gaussian into WORKDIR/run (the fixture)
  hdf5       result.hdf5 against result.json, key by key: dtypes, shapes, values;
             record arrays as structured arrays, pandas.DataFrame of them, and
             the layout nessai's compute_weights / draw_posterior_samples /
             plot_live_points expect
  csv        posterior.csv and nested_samples.csv read back with csv and numpy
  plots      the PNGs written at the end of the run
  command    nessai-plot on a directory holding only result.json, then only result.hdf5
  skipped    an interpreter without matplotlib, or none at all: the run succeeds,
             one warning, no PNG; --no-plot: no warning, no PNG
Environment: NS_COORDINATOR, NS_EXAMPLES, NS_PLOT (the nessai-plot program).
Exit 0 when every check passes, 1 with the failures listed.
"""

import csv
import json
import math
import os
import shutil
import struct
import subprocess
import sys

import numpy as np

FAILS = []
RUN_ARGS = ["--nlive", "200", "--seed", "1234", "--model-args", "dim=2"]
PNGS = ["posterior_distribution.png", "insertion_indices.png", "logXlogL.png", "state.png",
        "trace.png"]


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)
    return cond


def coordinator(outdir, *extra, env=None):
    cmd = [os.environ["NS_COORDINATOR"], "--model", os.path.join(os.environ["NS_EXAMPLES"], "libgaussian.so"),
           "--output", outdir] + RUN_ARGS + list(extra)
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=300)


def load_json(d):
    with open(os.path.join(d, "result.json")) as f:
        return json.load(f)


def same(a, b):
    """Equal as the same doubles (NaN equal to NaN)."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    return a.shape == b.shape and bool(np.all((a == b) | (np.isnan(a) & np.isnan(b))))


# ---- the fixture ----

def t_run(work):
    out = os.path.join(work, "run")
    shutil.rmtree(out, ignore_errors=True)
    p = coordinator(out, "--nested-samples-csv")
    check(p.returncode == 0, f"run exit {p.returncode}: {p.stderr[-2000:]}")
    check("Plots skipped" not in p.stderr, "a run with matplotlib skipped its plots")


# ---- result.hdf5 ----

INT_KEYS = {"seed", "total_likelihood_evaluations", "insertion_indices", "iterations", "nlive",
            "training_count", "run/dim", "history/likelihood_evaluations", "history/iterations",
            "history/training_iterations", "history/population_iterations",
            "history/checkpoint_iterations"}
# counters of the flow proposal and of the non-finite likelihood stages
INT_KEYS |= {f"proposal_stats/flow/flow_{k}" for k in
             ("trainings", "populations", "latent_draws", "accepted", "parameters", "epochs")}
INT_KEYS |= {f"nonfinite_likelihood/{stage}/{k}"
             for stage in ("initial_live_points", "uninformed_proposal", "flow_proposal")
             for k in ("drawn", "nan", "neg_inf", "pos_inf")}


def compare_tree(j, g, path, names):
    import h5py

    for key, v in j.items():
        p = f"{path}{key}"
        if not check(key in g, f"{p} missing from result.hdf5"):
            continue
        h = g[key]
        if isinstance(v, dict) and p != "posterior_samples":
            check(isinstance(h, h5py.Group), f"{p} is not a group")
            compare_tree(v, h, p + "/", names)
            continue
        x = h[()]
        if p in ("nested_samples", "posterior_samples"):
            want = [(n, "<f8") for n in names] + [("logP", "<f8"), ("logL", "<f8"), ("it", "<i4")]
            check(x.dtype == np.dtype(want), f"{p} dtype {x.dtype}, expected {want}")
            if p == "nested_samples":  # rows, as nessai's JSON encoder writes a structured array
                check(isinstance(v, list), f"{p} in result.json is not a list of rows")
                rows = np.array(v, dtype=float).reshape(len(v), len(want))
                cols = {n: rows[:, i] for i, (n, _) in enumerate(want)}
            else:  # {field: [values]}, as nessai's live_points_to_dict makes it for JSON
                check(isinstance(v, dict) and list(v) == [n for n, _ in want],
                      f"{p} in result.json is not {{field: [values]}} in field order")
                cols = v
            n_rec = len(cols[want[0][0]])
            check(x.shape == (n_rec,), f"{p} shape {x.shape}, expected ({n_rec},)")
            for n, _ in want:
                check(same(x[n], cols[n]), f"{p}[{n}] differs from result.json")
            continue
        elif isinstance(v, bool):
            check(x.dtype == np.bool_ and bool(x) == v, f"{p}: {x!r} for boolean {v}")
        elif isinstance(v, str):
            check(h.dtype.kind == "O" and x.decode() == v, f"{p}: {x!r} for {v!r}")
        elif v is None:
            check(x == b"__none__", f"{p}: {x!r} for None")
        elif isinstance(v, list) and v and not all(isinstance(e, (int, float)) for e in v):
            if all(isinstance(e, str) for e in v):
                check([e.decode() for e in x] == v, f"{p}: strings differ")
            else:
                check(json.loads(x.decode()) == v, f"{p}: JSON text differs")
        else:
            want = "<i8" if p in INT_KEYS else "<f8"
            check(x.dtype == np.dtype(want), f"{p}: dtype {x.dtype}, expected {want}")
            shape = (len(v),) if isinstance(v, list) else ()
            check(x.shape == shape, f"{p}: shape {x.shape}, expected {shape}")
            check(same(x, v), f"{p}: values differ from result.json")
    for key in g:
        check(key in j, f"{path}{key} in result.hdf5 but not in result.json")


def t_hdf5(work):
    import h5py

    out = os.path.join(work, "run")
    j = load_json(out)
    names = j["run"]["parameters"]
    with h5py.File(os.path.join(out, "result.hdf5"), "r") as f:
        compare_tree(j, f, "", names)
        # floats stay float64 when their values are whole: logP of a flat prior
        post = f["posterior_samples"][()]
        check(post.dtype.names == tuple(names) + ("logP", "logL", "it"), "posterior field names")
        try:
            import pandas

            df = pandas.DataFrame(post)
            check(list(df.columns) == list(post.dtype.names), "DataFrame columns")
            check(len(df) == len(post) and str(df["it"].dtype) == "int32", "DataFrame rows / it dtype")
            check(same(df["x0"].to_numpy(), post["x0"]), "DataFrame values")
        except ImportError:
            check(False, "pandas missing (Debian python3-pandas)")
        nested = f["nested_samples"][()]
        nlive = int(f["nlive"][()])
        # nessai's compute_weights(nested_samples["logL"], nlive): the trapezoid
        # rule of docs/algorithm.md over X_i = exp(-i / nlive) for the run and
        # nlive, nlive - 1, ..., 1 live points for the final ones
        logl = nested["logL"].astype(float)
        n_alive = np.full(len(logl), float(nlive))
        n_alive[-nlive:] = np.arange(nlive, 0, -1)
        log_x = np.concatenate([[0.0], np.cumsum(-1.0 / n_alive), [-np.inf]])
        check(same(log_x[1:-1], f["log_prior_volume"][()]), "log_prior_volume is not nessai's ln X")
        ll = np.concatenate([[-np.inf], logl, [logl[-1]]])
        x = np.exp(log_x)
        z_terms = 0.5 * (x[:-1] - x[1:]) * (np.exp(ll[:-1] - ll.max()) + np.exp(ll[1:] - ll.max()))
        log_z = math.log(z_terms.sum()) + ll.max()
        check(abs(log_z - f["log_evidence"][()]) < 1e-9, f"ln Z {log_z} from nested_samples['logL'] "
              f"and nlive, result says {f['log_evidence'][()]}")
        log_w = ll[1:-1] + np.log(x[:-2] - x[1:-1]) - log_z
        check(np.allclose(log_w, f["log_posterior_weights"][()], rtol=0, atol=1e-9),
              "log posterior weights differ from compute_weights' formula")
        # draw_posterior_samples(nested_samples, log_w=...): posterior rows are nested rows
        nested_rows = {tuple(r) for r in nested.tolist()}
        check(all(tuple(r) in nested_rows for r in post.tolist()), "a posterior row is not a nested sample")
        check(nested["it"].dtype == np.int32 and nested["it"].min() >= 0, "it column")
        # the structured arrays rebuilt from result.json as docs/sampler.md shows
        fields = names + ["logP", "logL", "it"]
        dtype = [(n, "f8") for n in fields[:-1]] + [("it", "i4")]
        nested_j = np.array([tuple(row) for row in j["nested_samples"]], dtype=dtype)
        pj = j["posterior_samples"]
        post_j = np.array(list(zip(*(pj[n] for n in fields))), dtype=dtype)
        check(nested_j.dtype == nested.dtype and np.array_equal(nested_j, nested),
              "nested_samples rebuilt from result.json differs from result.hdf5")
        check(post_j.dtype == post.dtype and np.array_equal(post_j, post),
              "posterior_samples rebuilt from result.json differs from result.hdf5")


# ---- CSV ----

def read_csv(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], np.array(rows[1:], dtype=float)


def t_csv(work):
    out = os.path.join(work, "run")
    j = load_json(out)
    names = j["run"]["parameters"] + ["logP", "logL", "it"]
    for fname, key in (("posterior.csv", "posterior_samples"), ("nested_samples.csv", "nested_samples")):
        header, values = read_csv(os.path.join(out, fname))
        check(header == names, f"{fname} header {header}")
        if key == "nested_samples":
            want = np.array(j[key], dtype=float)
        else:
            want = np.array([j[key][n] for n in names], dtype=float).T
        check(values.shape == want.shape, f"{fname} shape {values.shape}, expected {want.shape}")
        check(same(values, want), f"{fname} values differ from result.json")
        arr = np.genfromtxt(os.path.join(out, fname), delimiter=",", names=True)
        check(arr.dtype.names == tuple(names), f"{fname}: numpy names {arr.dtype.names}")
        check(same(arr["logL"], want[:, names.index("logL")]), f"{fname}: numpy logL column")
    shutil.rmtree(os.path.join(work, "nocsv"), ignore_errors=True)  # no resume of an old run
    p = coordinator(os.path.join(work, "nocsv"), "--no-plot", "--max-iteration", "300")
    check(p.returncode == 0, "short run")
    check(os.path.exists(os.path.join(work, "nocsv", "posterior.csv")), "posterior.csv is written by default")
    check(not os.path.exists(os.path.join(work, "nocsv", "nested_samples.csv")),
          "nested_samples.csv without --nested-samples-csv")


# ---- PNGs ----

def png_size(path):
    """(width, height) from the PNG signature and IHDR chunk, or None."""
    with open(path, "rb") as f:
        head = f.read(33)
    if len(head) < 33 or head[:8] != b"\x89PNG\r\n\x1a\n" or head[12:16] != b"IHDR":
        return None
    return struct.unpack(">II", head[16:24])


def check_pngs(d, what):
    for name in PNGS:
        path = os.path.join(d, name)
        if not check(os.path.exists(path), f"{what}: {name} missing"):
            continue
        size = png_size(path)
        if check(size is not None, f"{what}: {name} is not a PNG"):
            w, h = size
            check(300 <= w <= 4000 and 300 <= h <= 4000, f"{what}: {name} is {w}x{h}")
            check(os.path.getsize(path) > 5000, f"{what}: {name} is nearly empty")
    j = load_json(d) if os.path.exists(os.path.join(d, "result.json")) else None
    nlive, iters = (200, None) if j is None else (j["nlive"], j["iterations"])
    diag = os.path.join(d, "diagnostics")
    files = sorted(os.listdir(diag)) if os.path.isdir(diag) else []
    if iters is not None:
        want = sorted(f"insertion_indices_{k * nlive}.png" for k in range(1, len(j["history"]["rolling_p"]) + 1))
        check(files == want and len(want) >= 2, f"{what}: diagnostics {files}, expected {want}")
    for name in files:
        check(png_size(os.path.join(diag, name)) is not None, f"{what}: diagnostics/{name} is not a PNG")


def t_plots(work):
    check_pngs(os.path.join(work, "run"), "end of run")


def t_command(work):
    src = os.path.join(work, "run")
    for keep in ("result.json", "result.hdf5"):
        d = os.path.join(work, "cmd-" + keep.split(".")[1])
        shutil.rmtree(d, ignore_errors=True)
        os.makedirs(d)
        shutil.copy(os.path.join(src, keep), d)
        p = subprocess.run(["/usr/bin/python3", os.environ["NS_PLOT"], d], capture_output=True, text=True,
                           timeout=300)
        check(p.returncode == 0 and not p.stderr, f"nessai-plot on {keep} alone: exit {p.returncode} {p.stderr}")
        check_pngs(d, f"nessai-plot with {keep}")
    # usage errors: one line, exit 2
    p = subprocess.run([os.environ["NS_PLOT"], os.path.join(work, "nowhere")], capture_output=True, text=True)
    check(p.returncode == 2 and len(p.stderr.strip().splitlines()) == 1, f"missing directory: {p.returncode} {p.stderr}")
    p = subprocess.run([os.environ["NS_PLOT"], "--only", "corner", src], capture_output=True, text=True)
    check(p.returncode == 2 and "unknown plot" in p.stderr, "unknown --only name")
    d = os.path.join(work, "cmd-only")
    shutil.rmtree(d, ignore_errors=True)
    os.makedirs(d)
    shutil.copy(os.path.join(src, "result.json"), d)
    p = subprocess.run([os.environ["NS_PLOT"], "--only", "state,trace", d], capture_output=True, text=True)
    check(p.returncode == 0 and sorted(f for f in os.listdir(d) if f.endswith(".png")) == ["state.png", "trace.png"],
          "--only state,trace")


# ---- plots skipped ----

def t_skipped(work):
    # an interpreter without site packages: no numpy, no matplotlib
    bare = os.path.join(work, "bare-python")
    with open(bare, "w") as f:
        f.write('#!/bin/sh\nexec /usr/bin/python3 -S -I "$@"\n')
    os.chmod(bare, 0o755)
    no_program = dict(os.environ, NESSAI_PLOT_PROGRAM=os.path.join(work, "no-such-nessai-plot"))
    cases = (("no matplotlib", ["--plot-python", bare], None),
             ("no interpreter", ["--plot-python", os.path.join(work, "no-such-python")], None),
             ("no plotting program", [], no_program),
             ("no-plot", ["--no-plot"], None))
    for what, extra, env in cases:
        d = os.path.join(work, "skip-" + what.replace(" ", "-"))
        shutil.rmtree(d, ignore_errors=True)
        p = coordinator(d, "--max-iteration", "400", *extra, env=env)
        check(p.returncode == 0, f"{what}: exit {p.returncode}: {p.stderr[-1500:]}")
        check("ln Z = " in p.stdout, f"{what}: no ln Z line")
        check(os.path.exists(os.path.join(d, "result.json")) and os.path.exists(os.path.join(d, "posterior.csv")),
              f"{what}: results missing")
        warn = [ln for ln in p.stderr.splitlines() if "Plots skipped" in ln]
        check(not any(f.endswith(".png") for f in os.listdir(d)), f"{what}: a PNG was written")
        if what == "no-plot":
            check(not warn and "Producing plots" not in p.stderr, "--no-plot still mentions plots")
            continue
        check(len(warn) == 1 and "WARNING" in warn[0], f"{what}: {len(warn)} 'Plots skipped' warnings: {warn}")
        if warn and what != "no plotting program":
            check("nessai-plot " + d in warn[0], f"{what}: the warning does not say how to plot later")
        check("Traceback" not in p.stderr, f"{what}: a Python traceback on stderr")
        with open(os.path.join(d, "nessai.log")) as f:
            check(sum("Plots skipped" in ln for ln in f) == 1, f"{what}: nessai.log lacks the warning")


CHECKS = {"run": t_run, "hdf5": t_hdf5, "csv": t_csv, "plots": t_plots, "command": t_command,
          "skipped": t_skipped}


def main():
    if len(sys.argv) != 3 or sys.argv[1] not in CHECKS:
        print(__doc__, file=sys.stderr)
        return 2
    os.makedirs(sys.argv[2], exist_ok=True)
    CHECKS[sys.argv[1]](sys.argv[2])
    print(f"{sys.argv[1]}: {len(FAILS)} failure(s)")
    return 1 if FAILS else 0


if __name__ == "__main__":
    sys.exit(main())
