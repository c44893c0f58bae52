#!/usr/bin/python3
"""test_progress.py - what a run tells its user while and after it runs (docs/sampler.md).

Usage: test_progress.py CHECK WORKDIR
  progress   in-process run with --progress-interval 0.2: every progress line has
             its fields (iteration, ln Z, dlogZ and the target, evaluations and
             rates, "in-process", elapsed h:mm:ss, remaining estimate or
             "unknown"), stays one line of at most 160 characters, and the last
             estimate is near the iterations that were really left
  nan        a likelihood NaN on 20% of the prior: one warning per stage with
             the count and a fraction near 0.2, a few coordinates, no line per
             point; result.json "nonfinite_likelihood" holds the same counts
  neginf     the same with -inf
  farm       a run on two local workers: the progress line counts the workers,
             nessai.log ends with the farm summary, result.hdf5 holds the farm
             and flow counters as int64
Environment: NS_COORDINATOR, NS_EXAMPLES, NS_TESTMODEL (tests/sampler's model).
Exit 0 when every check passes, 1 with the failures listed.
"""

import json
import math
import os
import re
import shutil
import subprocess
import sys

FAILS = []

# message part of a log line: after "MM-DD HH:MM:SS.mmm nessai LEVEL   : "
LOG_RE = re.compile(r"^\d\d-\d\d \d\d:\d\d:\d\d\.\d{3} \S+ (\w+)\s*: (.*)$")
PROGRESS_RE = re.compile(
    r"^progress: it (\d+), ln Z (-?\d+\.\d{3}) \+/- (\d+\.\d{3}), dlogZ (\S+) \(stop ([0-9.e+-]+)\), "
    r"(\d+) evals \((\d+)/s, run (\d+)/s\), (in-process|workers (\d+)), elapsed (\d+):(\d\d):(\d\d), "
    r"remaining (unknown|~(\d+) it ~(\d+):(\d\d):(\d\d))$")
NF_RE = re.compile(r"^Non-finite log-likelihood for (\d+) of (\d+) points drawn (.+?) \((\d+\.\d\d)%: "
                   r"([^)]*)\), e\.g\. at (.*?); (.*)$")


def check(cond, what):
    if not cond:
        FAILS.append(what)
        print("FAIL:", what)
    return cond


def run(out, model, *args, timeout=300):
    shutil.rmtree(out, ignore_errors=True)
    cmd = [os.environ["NS_COORDINATOR"], "--model", model, "--output", out, "--no-plot"] + list(args)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    check(p.returncode == 0, f"{' '.join(cmd)}: exit {p.returncode}: {p.stderr[-2000:]}")
    return p


def log_messages(out):
    """(level, message) of every line of nessai.log."""
    msgs = []
    with open(os.path.join(out, "nessai.log")) as f:
        for ln in f:
            m = LOG_RE.match(ln.rstrip("\n"))
            if m:
                msgs.append((m.group(1), m.group(2)))
    return msgs


def load_json(out):
    with open(os.path.join(out, "result.json")) as f:
        return json.load(f)


def progress_lines(msgs, workers):
    lines = [m for lvl, m in msgs if m.startswith("progress:")]
    check(len(lines) >= 3, f"only {len(lines)} progress lines")
    parsed = []
    for ln in lines:
        check(len(ln) <= 160, f"progress line longer than 160 characters ({len(ln)}): {ln}")
        m = PROGRESS_RE.match(ln)
        if not check(m, f"progress line does not have the fields: {ln}"):
            continue
        if workers is None:
            check(m.group(9) == "in-process", f"in-process run shows {m.group(9)}")
        parsed.append(m)
    return parsed


def t_progress(work):
    out = os.path.join(work, "progress")
    model = os.path.join(os.environ["NS_EXAMPLES"], "libgaussian.so")
    run(out, model, "--model-args", "dim=4,delay_ms=0.3", "--nlive", "300", "--seed", "5",
        "--progress-interval", "0.2")
    r = load_json(out)
    parsed = progress_lines(log_messages(out), None)
    if not parsed:
        return
    its = [int(m.group(1)) for m in parsed]
    evals = [int(m.group(6)) for m in parsed]
    check(its == sorted(its) and evals == sorted(evals), "iterations or evaluations go backwards")
    check(evals[-1] <= r["total_likelihood_evaluations"], "more evaluations shown than made")
    for m in parsed:
        check(float(m.group(5)) == 0.1, f"stopping target {m.group(5)}, expected 0.1")
        check(int(m.group(7)) > 0 and int(m.group(8)) > 0, f"zero evaluation rate: {m.group(0)}")
        check(int(m.group(12)) < 60 and int(m.group(13)) < 60, f"elapsed is not h:mm:ss: {m.group(0)}")
        if int(m.group(1)) < 300:
            check(m.group(14) == "unknown", f"an estimate in the first nlive iterations: {m.group(0)}")
    known = [m for m in parsed if m.group(15)]
    if check(known, "no progress line gives an estimate"):
        last = known[-1]
        left, really = int(last.group(15)), r["iterations"] - int(last.group(1))
        check(really / 3 <= left <= really * 3,
              f"last estimate {left} iterations left, the run needed {really} more")
    # the line also goes to stderr, and is the same in both
    print(f"progress: {len(parsed)} lines, last {parsed[-1].group(0)}")


def nonfinite(work, mode, kind):
    out = os.path.join(work, mode)
    p = run(out, os.environ["NS_TESTMODEL"], "--model-args", f"mode={mode}", "--nlive", "1000",
            "--seed", "7")
    msgs = log_messages(out)
    r = load_json(out)
    nf = r.get("nonfinite_likelihood", {})
    warns = [m for lvl, m in msgs if m.startswith("Non-finite log-likelihood")]
    check(all(lvl == "WARNING" for lvl, m in msgs if m.startswith("Non-finite")), "not a WARNING")
    check(not [m for lvl, m in msgs if lvl == "ERROR"], f"{mode}: ERROR lines in nessai.log")
    # the likelihood is x > 6 of U[-10, 10] for the first coordinate: 20%
    stages = {"while populating the initial live points": "initial_live_points",
              "by the uninformed proposal": "uninformed_proposal"}
    for where, key in stages.items():
        got = [w for w in warns if NF_RE.match(w) and NF_RE.match(w).group(3) == where]
        if not check(len(got) == 1, f"{mode}: {len(got)} warnings drawn {where}, expected one"):
            continue
        m = NF_RE.match(got[0])
        bad, drawn, pct = int(m.group(1)), int(m.group(2)), float(m.group(4))
        check(abs(bad / drawn - 0.2) < 0.04, f"{mode} {key}: fraction {bad}/{drawn}, expected 0.2")
        check(abs(pct - 100 * bad / drawn) < 0.01, f"{mode} {key}: {pct}% for {bad}/{drawn}")
        check(m.group(5) == f"{bad} {kind}", f"{mode} {key}: kinds '{m.group(5)}'")
        points = re.findall(r"\(x=(-?[0-9.e+-]+), y=(-?[0-9.e+-]+)\)", m.group(6))
        check(len(points) == 3 and all(float(x) > 6 for x, _ in points),
              f"{mode} {key}: examples {m.group(6)} are not three points with x > 6")
        check("evidence is computed over the region where the likelihood is finite" in m.group(7)
              and f"{pct:.2f}% of the prior" in m.group(7), f"{mode} {key}: the sentence: {m.group(7)}")
        c = nf.get(key, {})
        field = {"NaN": "nan", "-inf": "neg_inf"}[kind]
        check(c.get("drawn") == drawn and c.get(field) == bad and abs(c.get("fraction", 0) - bad / drawn) < 1e-12,
              f"{mode} {key}: result.json {c} against the warning {bad}/{drawn}")
    check(len(warns) == len([w for w in warns if NF_RE.match(w)]), f"{mode}: unparsed warnings {warns}")
    check(len(warns) <= 3, f"{mode}: {len(warns)} non-finite warnings")
    lines = sum(1 for ln in p.stderr.splitlines() if kind in ln)
    check(lines == len(warns), f"{mode}: {lines} lines on stderr mention {kind}")
    # as the warning says: the evidence is that of the 80% of the prior where
    # the likelihood is finite, normalised to it: ln Z = -ln 400 - ln 0.8
    # (0.22 above the full prior's, 4 sigma at nlive 1000)
    want = -math.log(400.0) - math.log(0.8)
    check(abs(r["log_evidence"] - want) < 3 * r["log_evidence_error"],
          f"{mode}: ln Z {r['log_evidence']} +/- {r['log_evidence_error']}, expected {want:.3f}")


def t_nan(work):
    nonfinite(work, "nan20", "NaN")


def t_neginf(work):
    nonfinite(work, "neginf20", "-inf")


def t_farm(work):
    import h5py
    import numpy as np

    out = os.path.join(work, "farm")
    model = os.path.join(os.environ["NS_EXAMPLES"], "libgaussian.so")
    run(out, model, "--model-args", "dim=3,delay_ms=0.2", "--nlive", "200", "--seed", "9",
        "--n-pool", "2", "--progress-interval", "0.2")
    msgs = log_messages(out)
    parsed = progress_lines(msgs, 2)
    workers = [int(m.group(10)) for m in parsed if m.group(10) is not None]
    check(len(workers) == len(parsed) and workers and max(workers) == 2,
          f"progress lines show workers {workers}, expected 2")
    r = load_json(out)
    farm = r["farm"]
    summary = [m for lvl, m in msgs if m.startswith("Farm summary:")]
    check(len(summary) == 3, f"{len(summary)} farm summary lines: {summary}")
    text = " ".join(summary)
    want = [f"{farm['workers_seen'] + farm['refused']} registered", f"{farm['workers_seen']} accepted",
            f"{farm['refused']} refused", f"{farm['workers_lost']} lost",
            f"{farm['chunks']} chunks done", f"{farm['chunks_resent']} re-sent",
            f"{farm['redone_evaluations']} evaluations redone", f"{farm['spot_checked']} points checked",
            f"{farm['spot_failures']} failed", f"likelihood CPU time on workers {farm['worker_cpu_s']:.3f} s"]
    for w in want:
        check(w in text, f"farm summary lacks '{w}': {text}")
    check(farm["workers_seen"] == 2, f"workers_seen {farm['workers_seen']}")
    # the summary is the last thing the sampler says about the farm, after the totals
    names = [m for _, m in msgs]
    if summary:
        check(names.index(summary[0]) > max(i for i, m in enumerate(names) if m.startswith("Total likelihood")),
              "the farm summary comes before the run's totals")
    with h5py.File(os.path.join(out, "result.hdf5"), "r") as f:
        for key, v in farm.items():
            if isinstance(v, str):
                continue
            ds = f["farm"][key]
            want = "<f8" if key.endswith("_s") else "<i8"
            check(ds.dtype == np.dtype(want), f"farm/{key}: {ds.dtype}, expected {want}")
            check(ds[()] == v, f"farm/{key}: {ds[()]} against {v} in result.json")
        flow = r["proposal_stats"]["flow"]
        for key in ("flow_trainings", "flow_populations", "flow_latent_draws", "flow_accepted",
                    "flow_parameters", "flow_epochs"):
            ds = f["proposal_stats"]["flow"][key]
            check(ds.dtype == np.dtype("<i8") and ds[()] == flow[key],
                  f"proposal_stats/flow/{key}: {ds.dtype} {ds[()]} against {flow[key]}")
        for stage in ("initial_live_points", "uninformed_proposal", "flow_proposal"):
            g = f["nonfinite_likelihood"][stage]
            check(g["drawn"].dtype == np.dtype("<i8") and g["fraction"].dtype == np.dtype("<f8"),
                  f"nonfinite_likelihood/{stage} dtypes")


CHECKS = {"progress": t_progress, "nan": t_nan, "neginf": t_neginf, "farm": t_farm}


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
