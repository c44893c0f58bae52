#!/usr/bin/python3
"""nessai-plot: nessai's plots of a finished nessai-coordinator run.

Usage: nessai-plot [--only NAMES] [--dpi N] OUTDIR

Reads OUTDIR/result.json (or, without it, OUTDIR/result.hdf5) and writes
into OUTDIR the figures nessai draws for a run:

  posterior_distribution.png   corner plot of the posterior samples (with logL, it,
                               and logP unless constant)
  insertion_indices.png        insertion-index histogram, cmf and breakdown,
                               with the KS p-value of the whole run
  diagnostics/insertion_indices_<iteration>.png
                               the same for each block of nlive iterations
  logXlogL.png                 log-likelihood against log prior volume
  state.png                    history of the run (log L, log X, evaluations,
                               log Z and dlogZ, acceptance, trainings, p-values)
  trace.png                    nested samples of every parameter against log X

For a run of the importance nested sampler (--importance-nested-sampler)
it writes instead:

  posterior_distribution.png   as above (fields: parameters, logP unless
                               constant, logL, it)
  state.png                    one panel per quantity against the level:
                               log L (min / median / max of the live points
                               and the threshold), log Z with |d log Z|,
                               likelihood evaluations, ESS (posterior and
                               live points), removed / added / live counts,
                               the stopping value with its tolerance, and
                               each component's importance
  trace.png                    every parameter of the i.i.d. samples against
                               log W, coloured by the level that drew them
  likelihood_levels.png        histogram of log L of the samples of each level

--only takes a comma-separated list of the names above without ".png"
(posterior_distribution, insertion_indices, diagnostics, logXlogL, state,
trace). Needs numpy and matplotlib (Debian: python3-numpy, python3-matplotlib);
h5py only for a directory holding result.hdf5 alone.

Exit status: 0 every plot written; 1 a plot failed; 2 usage error or no
readable result; 3 numpy or matplotlib is missing.
"""

import argparse
import json
import math
import os
import statistics
import sys

EXIT_FAILED, EXIT_USAGE, EXIT_MISSING = 1, 2, 3
PLOTS = ("posterior_distribution", "insertion_indices", "diagnostics", "logXlogL", "state", "trace")
PLOTS_INS = ("posterior_distribution", "state", "trace", "likelihood_levels")
CORE = ("logP", "logL", "it")
INS_FIELDS = ("logP", "logL", "it", "logW", "logQ", "logU")


def is_ins(d):
    return d.get("sampler") == "importance_nested_sampler"


def ins_records(d, key, names):
    """{field: [values]} (result.json) or a compound array (result.hdf5) as a
    structured array with the importance sampler's fields."""
    import numpy as np

    src = d.get(key)
    fields = list(names) + list(INS_FIELDS)
    if src is None:
        src = {}
    if hasattr(src, "dtype") and src.dtype.names:
        src = {n: src[n] for n in src.dtype.names}
    missing = [n for n in fields if n not in src]
    if missing:
        raise ValueError(f"{key} lacks {missing[0]}")
    arr = np.empty(len(src[fields[0]]), dtype=[(n, "i4" if n == "it" else "f8") for n in fields])
    for n in fields:
        arr[n] = np.asarray(src[n], dtype=float)
    return arr


def load_ins(d, outdir):
    names = [n.decode() if isinstance(n, bytes) else str(n)
             for n in d.get("run", {}).get("parameters", [])]
    if not names:
        post = d.get("posterior_samples", {})
        keys = post.dtype.names if hasattr(post, "dtype") else list(post)
        names = [k for k in keys if k not in INS_FIELDS]
    d["parameters"] = names
    for key in ("samples", "posterior_samples"):
        d[key] = ins_records(d, key, names)
    # the stopping rule's tolerance is a setting: config.json, when present
    d["tolerance"] = float("nan")
    try:
        with open(os.path.join(outdir, "config.json")) as f:
            cfg = json.load(f)
        d["tolerance"] = float(cfg.get("tolerance", "nan"))
    except (OSError, ValueError, TypeError):
        pass
    return d


def load_result(outdir):
    """The result as a dict: record arrays as numpy structured arrays."""
    import numpy as np

    jpath = os.path.join(outdir, "result.json")
    hpath = os.path.join(outdir, "result.hdf5")
    if os.path.exists(jpath):
        with open(jpath) as f:
            d = json.load(f)
        if is_ins(d):
            return load_ins(d, outdir)
        names = list(d.get("run", {}).get("parameters", []))
        # nested_samples: rows; posterior_samples: {field: [values]} (as nessai writes them)
        post = d.get("posterior_samples", {})
        if not names:
            names = [k for k in post if k not in CORE]
        fields = names + list(CORE)
        dtype = [(n, "f8") for n in fields[:-1]] + [("it", "i4")]
        rows = d.get("nested_samples", [])
        if any(len(r) != len(fields) for r in rows):
            raise ValueError(f"{jpath}: rows of nested_samples do not have {len(fields)} values")
        arr = np.empty(len(rows), dtype=dtype)
        if rows:
            cols = np.array(rows, dtype=float)
            for i, n in enumerate(fields):
                arr[n] = cols[:, i]
        d["nested_samples"] = arr
        missing = [n for n in fields if n not in post]
        if missing:
            raise ValueError(f"{jpath}: posterior_samples lacks {missing[0]}")
        arr = np.empty(len(post[fields[0]]), dtype=dtype)
        for n in fields:
            arr[n] = np.asarray(post[n], dtype=float)
        d["posterior_samples"] = arr
        d["parameters"] = names
        return d
    if os.path.exists(hpath):
        import h5py

        def read(g):
            out = {}
            for k, v in g.items():
                if isinstance(v, h5py.Group):
                    out[k] = read(v)
                else:
                    x = v[()]
                    if isinstance(x, bytes):
                        x = x.decode()
                    out[k] = x
            return out

        with h5py.File(hpath, "r") as f:
            d = read(f)
        if is_ins(d):
            return load_ins(d, outdir)
        names = [n for n in d["nested_samples"].dtype.names if n not in CORE]
        d["parameters"] = names
        return d
    raise FileNotFoundError(f"no result.json or result.hdf5 in {outdir}")


def finite(a):
    import numpy as np

    a = np.asarray(a, dtype=float)
    return np.where(np.isfinite(a), a, np.nan)


def plot_posterior(d, path, dpi):
    """Lower-triangle pair plot of the posterior: histograms on the diagonal."""
    import matplotlib.pyplot as plt
    import numpy as np

    post = d["posterior_samples"]
    # nessai plots every field; logP only when it varies (a flat prior makes it constant)
    logp = np.asarray(post["logP"], dtype=float)
    varies = logp.size and np.nanmax(logp) > np.nanmin(logp)
    cols = list(d["parameters"]) + (["logP"] if varies else []) + ["logL", "it"]
    data = [np.asarray(post[c], dtype=float) for c in cols]
    keep = np.all([np.isfinite(x) for x in data], axis=0) if len(post) else np.zeros(0, bool)
    data = [x[keep] for x in data]
    k = len(cols)
    size = min(2.2 * k, 30.0)
    fig, axes = plt.subplots(k, k, figsize=(size, size), squeeze=False)
    for i in range(k):
        for j in range(k):
            ax = axes[i, j]
            if j > i:
                ax.set_visible(False)
                continue
            if i == j:
                if data[i].size:
                    ax.hist(data[i], bins="auto", histtype="step", density=True, lw=1.5, color="C0")
                ax.set_yticks([])
            else:
                ax.scatter(data[j], data[i], s=2.0, color="C0", alpha=0.7, edgecolor="none")
            if i == k - 1:
                ax.set_xlabel(cols[j])
            else:
                ax.set_xticklabels([])
            if j == 0 and i > 0:
                ax.set_ylabel(cols[i])
            elif j > 0:
                ax.set_yticklabels([])
    fig.suptitle(f"{len(post)} posterior samples, ln Z = {d.get('log_evidence', float('nan')):.3f}")
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def _bands(n, cmf, ci):
    """Half-width of the binomial interval ci around cmf for n draws (normal approximation)."""
    import numpy as np

    z = statistics.NormalDist().inv_cdf(1 - (1 - ci) / 2)
    return z * np.sqrt(cmf * (1 - cmf) / max(n, 1))


def plot_indices(indices, nlive, p_value, path, dpi, breakdown=True, title=None):
    """nessai's insertion-index figure: pmf, analytic minus estimated cmf, breakdown."""
    import matplotlib.pyplot as plt
    import numpy as np

    indices = np.asarray(indices, dtype=int)
    if not indices.size:
        print(f"nessai-plot: no insertion indices, {os.path.basename(path)} not drawn", file=sys.stderr)
        return
    x = np.arange(1.0, nlive + 1)
    analytic = x / x[-1]
    estimated = np.cumsum(np.bincount(indices, minlength=nlive)[:nlive]) / len(indices)
    ncols = 3 if breakdown else 2
    fig, ax = plt.subplots(1, ncols, figsize=(5 * ncols, 5))
    nbins = min(len(np.histogram_bin_edges(indices, "auto")) - 1, 1000)
    ax[0].axhline(1 / nlive, color="black", alpha=0.5, label="pmf")
    sig = (nbins / len(indices)) ** 0.5
    ax[0].axhline((1 + sig) / nlive, color="black", ls=":", alpha=0.5, label="1-sigma")
    ax[0].axhline((1 - sig) / nlive, color="black", ls=":", alpha=0.5)
    ax[0].hist(indices, density=True, histtype="step", bins=nbins, range=(0, nlive - 1),
               color="C0", label="Estimated")
    ax[1].plot(x - 1, analytic - estimated, color="C0", label="Analytic cmf - Estimated cmf")
    for ci in (0.68, 0.95, 0.997):
        w = _bands(len(indices), analytic, ci)
        ax[1].fill_between(x - 1, -w, w, color="grey", alpha=0.2)
    for a in ax[:2]:
        a.legend(loc="lower right")
        a.set_xlim([0, nlive - 1])
        a.set_xlabel("Insertion index")
    if breakdown:
        batches = np.array_split(indices, 8)
        colours = plt.get_cmap("viridis")(np.linspace(0, 1, len(batches)))
        for batch, colour in zip(batches, colours):
            if len(batch):
                cmf = np.cumsum(np.bincount(batch, minlength=nlive)[:nlive]) / len(batch)
                ax[2].plot(x - 1, analytic - cmf, lw=0.75, color=colour)
        nb = max(len(b) for b in batches)
        for ci in (0.68, 0.95, 0.997):
            w = _bands(nb, analytic, ci)
            ax[2].fill_between(x - 1, -w, w, color="grey", alpha=0.2)
        ax[2].set_xlim([0, nlive - 1])
        ax[2].set_xlabel("Insertion index")
        ax[2].set_title("Breakdown (8 batches, early to late)")
    head = title + ", " if title else ""
    fig.suptitle(f"{head}{len(indices)} insertion indices, KS p-value = {p_value:.4g}")
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def plot_all_indices(d, path, dpi):
    plot_indices(d["insertion_indices"], int(d["nlive"]), float(d.get("final_p_value", math.nan)),
                 path, dpi)


def plot_diagnostics(d, outdir, dpi):
    """One insertion-index figure per block of nlive iterations, as nessai draws during a run."""
    nlive = int(d["nlive"])
    idx = list(d["insertion_indices"])
    rolling = list(d.get("history", {}).get("rolling_p", []))
    ddir = os.path.join(outdir, "diagnostics")
    os.makedirs(ddir, exist_ok=True)
    for k, p in enumerate(rolling):
        block = idx[k * nlive:(k + 1) * nlive]
        if len(block) < nlive:
            break
        it = (k + 1) * nlive
        plot_indices(block, nlive, float(p), os.path.join(ddir, f"insertion_indices_{it}.png"), dpi,
                     breakdown=False, title=f"iterations {it - nlive + 1}-{it}")


def plot_logxlogl(d, path, dpi):
    import matplotlib.pyplot as plt
    import numpy as np

    logx = finite(d["log_prior_volume"])
    logl = finite(d["nested_samples"]["logL"])[: len(logx)]
    fig = plt.figure()
    plt.plot(logx, logl)
    bits = float(d.get("information", math.nan)) * math.log2(math.e)
    plt.title(f"log Z={float(d.get('log_evidence', math.nan)):.2f} H={bits:.2f} bits")
    plt.grid(which="both")
    plt.xlabel("log prior-volume")
    plt.ylabel("log-likelihood")
    if len(logx):
        plt.xlim([np.nanmin(logx), 0.0])
    fig.savefig(path, bbox_inches="tight", dpi=dpi)
    plt.close(fig)


def _legend(ax, *twins):
    h, lab = ax.get_legend_handles_labels()
    for t in twins:
        h2, l2 = t.get_legend_handles_labels()
        h, lab = h + h2, lab + l2
    ax.legend(h, lab, frameon=False, loc="best")


def plot_state(d, path, dpi):
    """nessai's state plot, drawn from the run's history."""
    import matplotlib.pyplot as plt
    import numpy as np
    from matplotlib.lines import Line2D

    h = d["history"]
    nlive = int(d["nlive"])
    it = np.asarray(h["iterations"], dtype=float)
    final_it = int(d.get("iterations", it[-1] if len(it) else 0))
    fig, ax = plt.subplots(7, 1, sharex=True, figsize=(12, 12))
    for a in ax:
        for c in h.get("checkpoint_iterations", []):
            a.axvline(c, ls=":", color="#66ccff")
        a.axvline(final_it, color="#ff9900", ls="-.")
    lmin, lmax = finite(h["min_log_likelihood"]), finite(h["max_log_likelihood"])
    ax[0].plot(it, lmin, label="Min log L")
    ax[0].plot(it, lmax, label="Max log L")
    ax[0].set_ylabel(r"$\log L$")
    tw = ax[0].twinx()
    diff = lmax - lmin
    tw.plot(it, np.where(diff > 0, diff, np.nan), color="C2", ls=":", label=r"$\Delta \log L$")
    tw.set_yscale("log")
    tw.set_ylabel(r"$\Delta \log L$")
    _legend(ax[0], tw)
    logx = finite(d.get("log_prior_volume", []))
    ax[1].plot(np.arange(1, len(logx) + 1), logx, label="log X")
    ax[1].set_ylabel(r"$\log X$")
    # how steeply log L rises as log X falls: |d log L / d log X| between
    # consecutive nested samples, as a rolling mean over nlive // 10 of them
    logl = finite(d["nested_samples"]["logL"])[: len(logx)]
    tw = ax[1].twinx()
    if len(logl) > 1:
        grad = np.abs(np.diff(logl) / np.diff(logx))
        grad = np.where(np.isfinite(grad), grad, np.nan)
        w = max(1, nlive // 10)
        if len(grad) >= w:
            ok = np.isfinite(grad)
            csum = np.concatenate([[0.0], np.cumsum(np.where(ok, grad, 0.0))])
            cnt = np.concatenate([[0], np.cumsum(ok)])
            n = cnt[w:] - cnt[:-w]
            mean = np.where(n > 0, (csum[w:] - csum[:-w]) / np.maximum(n, 1), np.nan)
            tw.plot(np.arange(w + 1, len(grad) + 2), mean, color="C1", ls="--", label="Gradient")
            if np.any(mean > 0):
                tw.set_yscale("log")
    tw.set_ylabel(r"$|d \log L / d \log X|$")
    _legend(ax[1], tw)
    ax[2].plot(it, h["likelihood_evaluations"], label="Evaluations")
    ax[2].set_ylabel("Likelihood\n evaluations")
    if np.any(np.asarray(h["likelihood_evaluations"], dtype=float) > 0):
        ax[2].set_yscale("log")
    tw = ax[2].twinx()
    tw.plot(it, np.asarray(h["sampling_time"], dtype=float) / 60, ls="--", color="C1", label="Time")
    tw.set_ylabel("Sampling \ntime [min]")
    _legend(ax[2], tw)
    ax[3].plot(it, finite(h["logZ"]), label="logZ")
    ax[3].set_ylabel(r"$\log Z$")
    tw = ax[3].twinx()
    dz = finite(h["dlogZ"])
    tw.plot(it, np.where(dz > 0, dz, np.nan), color="C1", ls="--", label="dlogZ")
    tw.set_yscale("log")
    tw.set_ylabel(r"$d \log Z$")
    _legend(ax[3], tw)
    ax[4].plot(it, finite(h["mean_acceptance"]), label="Proposal")
    ax[4].plot(h["population_iterations"], finite(h["population_acceptance"]), label="Population")
    ax[4].set_ylabel("Acceptance")
    acc = np.concatenate([finite(h["mean_acceptance"]), finite(h["population_acceptance"])])
    if np.any(acc > 0):
        ax[4].set_yscale("log")
        ax[4].set_ylim(top=1.1)
    tw = ax[4].twinx()
    tw.plot(h["population_iterations"], finite(h["population_radii"]), color="C2", ls=":",
            label="Radius")
    tw.set_ylabel("Population radius")
    _legend(ax[4], tw)
    tr = np.asarray(h["training_iterations"], dtype=float)
    ax[5].plot(tr[1:], tr[1:] - tr[:-1])
    if len(tr):
        ax[5].axvline(tr[0], color="lightgrey")
    ax[5].set_ylabel(r"$\Delta$ train")
    rp = finite(h.get("rolling_p", []))
    if len(rp):
        ax[6].plot((np.arange(len(rp)) + 1) * nlive, rp, "o", label="p-value")
    ax[6].set_ylabel("p-value")
    ax[6].set_ylim([-0.1, 1.1])
    ax[-1].set_xlabel("Iteration")
    secs = float(d.get("sampling_time", math.nan))
    stamp = f"{int(secs // 3600)}:{int(secs % 3600 // 60):02d}:{secs % 60:06.3f}" if math.isfinite(secs) else "?"
    fig.suptitle(f"Sampling time: {stamp}", fontsize=16)
    handles = [Line2D([0], [0], color="#ff9900", ls="-.", label="Current iteration"),
               Line2D([0], [0], color="#66ccff", ls=":", label="Checkpoint")]
    fig.legend(handles=handles, frameon=False, ncol=3, loc=(0.6, 0.0))
    fig.tight_layout()
    fig.subplots_adjust(top=0.95, bottom=0.06)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def plot_trace(d, path, dpi):
    """nessai's trace plot: every parameter of the nested samples against log X."""
    import matplotlib.pyplot as plt

    ns = d["nested_samples"]
    logx = finite(d["log_prior_volume"])
    names = list(d["parameters"])
    n = min(len(logx), len(ns))
    fig, axes = plt.subplots(len(names), 1, figsize=(5, min(50, 3 * len(names))), sharex=True,
                             squeeze=False)
    for a, name in zip(axes[:, 0], names):
        a.plot(logx[:n], ns[name][:n], marker=",", ls="")
        a.set_ylabel(name)
    axes[-1, 0].set_xlabel("log X")
    axes[-1, 0].invert_xaxis()
    fig.savefig(path, bbox_inches="tight", dpi=dpi)
    plt.close(fig)


def _levels(n):
    """Colours for the prior (-1) and n levels."""
    import matplotlib.pyplot as plt
    import numpy as np

    return plt.get_cmap("viridis")(np.linspace(0, 1, max(n, 1) + 1))


def plot_ins_state(d, path, dpi):
    """History of an importance nested sampler run, one panel per quantity."""
    import matplotlib.pyplot as plt
    import numpy as np

    h = d.get("history", {})
    def series(k):
        return finite(h.get(k, []))
    it = np.arange(len(series("logZ")))
    crit = h.get("stopping_criteria", {})
    crit_name, crit_val = next(iter(crit.items()), ("stopping criterion", []))
    fig, axes = plt.subplots(7, 1, figsize=(8, 18), sharex=True)
    ax = axes[0]
    ax.plot(it, series("min_log_likelihood"), label="min")
    ax.plot(it, series("median_logL"), label="median")
    ax.plot(it, series("max_log_likelihood"), label="max")
    ax.plot(it, series("logL_threshold"), "k--", label="threshold")
    ax.set_ylabel("log L")
    ax.legend(frameon=False, fontsize="small", ncol=4)
    ax = axes[1]
    ax.plot(it, series("logZ"), label="log Z", color="C0")
    ax.set_ylabel("log Z")
    tw = ax.twinx()
    dz = series("logdZ")
    tw.plot(it, np.where(dz > 0, dz, np.nan), color="C1", label="|d log Z|")
    tw.set_yscale("log")
    tw.set_ylabel("|d log Z|")
    _legend(ax, tw)
    ax = axes[2]
    ax.plot(it, series("likelihood_evaluations"), color="C2")
    ax.set_ylabel("likelihood\nevaluations")
    ax = axes[3]
    ax.plot(it, series("n_post"), label="posterior")
    ax.plot(it, series("live_points_ess"), label="live points")
    ax.set_ylabel("ESS")
    ax.legend(frameon=False, fontsize="small")
    ax = axes[4]
    ax.plot(it, series("n_removed"), label="removed")
    ax.plot(it, series("n_added"), label="added")
    ax.plot(it, series("n_live"), label="live")
    ax.set_ylabel("samples")
    ax.legend(frameon=False, fontsize="small", ncol=3)
    ax = axes[5]
    ax.plot(it, finite(crit_val), color="C3", label=crit_name)
    tol = d.get("tolerance", float("nan"))
    if math.isfinite(tol):
        ax.axhline(tol, color="k", ls=":", label=f"tolerance {tol:g}")
    ax.set_ylabel("stopping\ncriterion")
    ax.legend(frameon=False, fontsize="small")
    ax = axes[6]
    imp = d.get("proposal_importance", {})
    tot = finite(imp.get("total", []))
    if tot.size:
        # component k is the prior (k = 0) or the flow of level k - 1
        x = np.arange(tot.size) - 1
        w = 0.28
        ax.bar(x - w, finite(imp.get("posterior", [])), w, label="posterior")
        ax.bar(x, finite(imp.get("evidence", [])), w, label="evidence")
        ax.bar(x + w, tot, w, label="total")
        ax.legend(frameon=False, fontsize="small", ncol=3)
    ax.set_ylabel("importance\n(final)")
    ax.set_xlabel("level (-1 = prior)")
    fig.suptitle(f"log Z = {d.get('log_evidence', float('nan')):.3f} +/- "
                 f"{d.get('log_evidence_error', float('nan')):.3f} after {len(it)} levels")
    fig.tight_layout()
    fig.subplots_adjust(top=0.96)
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def plot_ins_trace(d, path, dpi):
    """Every parameter of the i.i.d. samples against log W, coloured by level."""
    import matplotlib.pyplot as plt
    import numpy as np

    s = d["samples"]
    names = list(d["parameters"])
    logw = finite(s["logW"])
    lev = np.asarray(s["it"], dtype=int)
    nlev = int(lev.max()) + 1 if lev.size else 0
    fig, axes = plt.subplots(len(names), 1, figsize=(6, min(50, 2.2 * len(names) + 1)),
                             sharex=True, squeeze=False)
    sc = None
    for a, name in zip(axes[:, 0], names):
        sc = a.scatter(logw, s[name], c=lev, cmap="viridis", vmin=-1, vmax=max(nlev - 1, 0),
                       s=1.0, edgecolor="none", rasterized=True)
        a.set_ylabel(name)
    axes[-1, 0].set_xlabel("log W")
    if sc is not None:
        fig.colorbar(sc, ax=axes[:, 0].tolist(), label="level (-1 = prior)")
    fig.savefig(path, bbox_inches="tight", dpi=dpi)
    plt.close(fig)


def plot_ins_levels(d, path, dpi):
    """Histogram of log L of the samples drawn by each level (and the prior)."""
    import matplotlib.pyplot as plt
    import numpy as np

    s = d["samples"]
    logl = finite(s["logL"])
    lev = np.asarray(s["it"], dtype=int)
    ok = np.isfinite(logl)
    nlev = int(lev.max()) + 1 if lev.size else 0
    colours = _levels(nlev)
    fig, ax = plt.subplots(figsize=(8, 5))
    if ok.any():
        # the prior's long tail of low log L would squash the levels: start at
        # the 1st percentile of the flows' samples (all samples without flows)
        flows = ok & (lev >= 0)
        lo = np.percentile(logl[flows], 1) if flows.any() else np.nanmin(logl[ok])
        bins = np.linspace(lo, np.nanmax(logl[ok]), 60)
        ax.set_xlim(lo, bins[-1])
        for k in range(-1, nlev):
            sel = ok & (lev == k)
            if sel.any():
                ax.hist(logl[sel], bins=bins, histtype="step", color=colours[k + 1],
                        label="prior" if k < 0 else None, density=True)
    sm = plt.cm.ScalarMappable(cmap="viridis", norm=plt.Normalize(-1, max(nlev - 1, 0)))
    fig.colorbar(sm, ax=ax, label="level (-1 = prior)")
    ax.set_xlabel("log L")
    ax.set_ylabel("density")
    ax.legend(frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=dpi)
    plt.close(fig)


def main(argv=None):
    parts = __doc__.split("\n\n")
    ap = argparse.ArgumentParser(prog="nessai-plot", description=parts[0],
                                 epilog="\n\n".join(parts[2:]),
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("outdir", help="output directory of a nessai-coordinator run")
    ap.add_argument("--only", default=None,
                    help="comma-separated plots to draw (default: every plot of the run's sampler)")
    ap.add_argument("--dpi", type=int, default=100, help="resolution (default 100)")
    ap.add_argument("--from-coordinator", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    quiet = args.from_coordinator
    try:
        import numpy  # noqa: F401
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot  # noqa: F401
        import warnings

        warnings.filterwarnings("ignore", module="matplotlib")
    except ImportError as e:
        if not quiet:
            print(f"nessai-plot: error: {e}; install numpy and matplotlib (Debian: apt-get install "
                  "python3-numpy python3-matplotlib)", file=sys.stderr)
        return EXIT_MISSING
    wanted = None if args.only is None else [w.strip() for w in args.only.split(",") if w.strip()]
    bad = [w for w in wanted or [] if w not in PLOTS and w not in PLOTS_INS]
    if bad:
        print(f"nessai-plot: error: unknown plot {bad[0]!r}; choose from "
              f"{', '.join(sorted(set(PLOTS + PLOTS_INS)))}", file=sys.stderr)
        return EXIT_USAGE
    try:
        d = load_result(args.outdir)
    except Exception as e:  # a missing or damaged result: one line, not a traceback
        print(f"nessai-plot: error: cannot read the result in {args.outdir}: {e}", file=sys.stderr)
        return EXIT_USAGE
    out = args.outdir
    if is_ins(d):
        kinds = PLOTS_INS
        if wanted is None:
            wanted = list(kinds)
        bad = [w for w in wanted if w not in kinds]
        if bad:
            print(f"nessai-plot: error: {bad[0]!r} is not drawn for an importance nested sampler "
                  f"run; choose from {', '.join(kinds)}", file=sys.stderr)
            return EXIT_USAGE
        jobs = {
            "posterior_distribution": lambda: plot_posterior(d, os.path.join(out, "posterior_distribution.png"), args.dpi),
            "state": lambda: plot_ins_state(d, os.path.join(out, "state.png"), args.dpi),
            "trace": lambda: plot_ins_trace(d, os.path.join(out, "trace.png"), args.dpi),
            "likelihood_levels": lambda: plot_ins_levels(d, os.path.join(out, "likelihood_levels.png"), args.dpi),
        }
        status = 0
        for name in kinds:
            if name in wanted:
                try:
                    jobs[name]()
                except Exception as e:
                    print(f"nessai-plot: error: {name}: {type(e).__name__}: {e}", file=sys.stderr)
                    status = EXIT_FAILED
        return status
    if wanted is None:
        wanted = list(PLOTS)
    bad = [w for w in wanted if w not in PLOTS]
    if bad:
        print(f"nessai-plot: error: {bad[0]!r} is drawn only for an importance nested sampler "
              f"run; choose from {', '.join(PLOTS)}", file=sys.stderr)
        return EXIT_USAGE
    jobs = {
        "posterior_distribution": lambda: plot_posterior(d, os.path.join(out, "posterior_distribution.png"), args.dpi),
        "insertion_indices": lambda: plot_all_indices(d, os.path.join(out, "insertion_indices.png"), args.dpi),
        "diagnostics": lambda: plot_diagnostics(d, out, args.dpi),
        "logXlogL": lambda: plot_logxlogl(d, os.path.join(out, "logXlogL.png"), args.dpi),
        "state": lambda: plot_state(d, os.path.join(out, "state.png"), args.dpi),
        "trace": lambda: plot_trace(d, os.path.join(out, "trace.png"), args.dpi),
    }
    status = 0
    for name in PLOTS:
        if name not in wanted:
            continue
        try:
            jobs[name]()
        except Exception as e:
            print(f"nessai-plot: error: {name}: {type(e).__name__}: {e}", file=sys.stderr)
            status = EXIT_FAILED
    return status


if __name__ == "__main__":
    sys.exit(main())
