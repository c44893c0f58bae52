"""FlowSampler: nessai's entry point, running nessai-coordinator.

    from nessai_farm import FlowSampler
    fs = FlowSampler(model, output="outdir", n_pool=4, seed=1, nlive=1000)
    result, posterior = fs.run()

The model instance's class is run by the coordinator (and its workers) from
the file that defines it, built with the keyword arguments it was built with
(``nessai_farm.Model`` records them; for other classes pass
``model_args={...}``). The coordinator's log is streamed to stderr; run()
returns the result dictionary (result.json) and the posterior samples as a
structured array of nessai's live-point dtype. Keyword arguments are the
coordinator's options with underscores (``max_iteration=...`` is
``--max-iteration``); anything else is refused. docs/python.md.
"""
import ast
import json
import os
import re
import signal
import subprocess
import sys

import numpy as np

from .livepoint import get_dtype

# nessai's names for options the coordinator spells otherwise.
ALIASES = {"pytorch_threads": "threads"}


class FarmPool:
    """A farm that remote workers join: ``pool=FarmPool(bind="tcp://*:5555")``
    (``nessai-worker --connect tcp://this-host:5555 --keys OUTPUT/farm-keys`` on
    each node, OUTPUT being the run's output directory)."""

    def __init__(self, bind="tcp://*:5555"):
        if not isinstance(bind, str) or not bind.startswith("tcp://"):
            raise ValueError("FarmPool(bind=...) takes a tcp:// endpoint, e.g. 'tcp://*:5555'")
        self.bind = bind


def _coordinator():
    path = os.environ.get("NESSAI_COORDINATOR")
    if path:
        return path
    try:
        from ._paths import COORDINATOR
    except ImportError:
        COORDINATOR = ""
    if COORDINATOR and os.path.exists(COORDINATOR):
        return COORDINATOR
    return "nessai-coordinator"


def _options(program):
    """Option names (without --) and which of them are on/off switches."""
    text = subprocess.run([program, "--help"], capture_output=True, text=True, check=True).stdout
    names, switches = set(), set()
    for line in text.splitlines():
        m = re.match(r"^  --([a-z0-9-]+)(, --no-[a-z0-9-]+)?( [A-Z]+)?$", line)
        if m:
            names.add(m.group(1))
            if m.group(2):
                switches.add(m.group(1))
    return names, switches


def _model_source(model):
    cls = type(model)
    module = sys.modules.get(cls.__module__)
    path = getattr(module, "__file__", None)
    if not path:
        raise ValueError(
            "the model class %s is not defined in a file: define it in a .py file (or in the script "
            "that runs the sampler)" % cls.__name__
        )
    return os.path.realpath(path), cls.__name__


def _literal_args(kwargs):
    parts = []
    for k, v in kwargs.items():
        text = repr(v)
        try:
            ok = ast.literal_eval(text) == v
        except (ValueError, SyntaxError, TypeError):
            ok = False
        if not ok:
            raise ValueError(
                "model argument %s=%s cannot be given to the coordinator and its workers: "
                "model arguments must be Python literals (numbers, strings, lists, ...)" % (k, text[:60])
            )
        parts.append("%s=%s" % (k, text))
    return ", ".join(parts)


def _check_default_build(model, cls_name):
    """A class that does not record its arguments (not a nessai_farm.Model)
    is built without any: refuse when that gives another model."""
    try:
        fresh = type(model)()
        same = list(fresh.names) == list(model.names) and all(
            np.array_equal(np.asarray(fresh.bounds[n], dtype=float), np.asarray(model.bounds[n], dtype=float))
            for n in model.names
        )
    except Exception:
        same = False
    if not same:
        raise ValueError(
            "the coordinator builds %s from keyword arguments, and %s() is not the model given: "
            "pass them as FlowSampler(..., model_args={...})" % (cls_name, cls_name)
        )


class FlowSampler:
    """Run nessai-coordinator on a model (nessai's FlowSampler interface)."""

    def __init__(self, model, output="outdir", n_pool=None, pool=None, seed=None, model_args=None,
                 **kwargs):
        self.model = model
        self.output = output
        self.program = _coordinator()
        path, cls_name = _model_source(model)
        if model_args is None:
            if getattr(model, "_nessai_farm_init_args", ()):
                raise ValueError(
                    "%s was built with positional arguments; the coordinator builds it from keyword "
                    "arguments: build it with keywords or pass model_args={...}" % cls_name
                )
            if hasattr(model, "_nessai_farm_init_kwargs"):
                model_args = model._nessai_farm_init_kwargs
            else:
                model_args = {}
                _check_default_build(model, cls_name)
        self.model_args = _literal_args(model_args)
        self.model_spec = "%s:%s" % (path, cls_name)
        names, switches = _options(self.program)
        args = ["--model", self.model_spec, "--model-args", self.model_args, "--output", str(output)]
        if seed is not None:
            args += ["--seed", str(int(seed))]
        if n_pool is not None:
            args += ["--n-pool", str(int(n_pool))]
        if pool is not None:
            if not isinstance(pool, FarmPool):
                raise ValueError(
                    "pool must be a nessai_farm.FarmPool (the likelihood runs on nessai-farm's workers, "
                    "not in a multiprocessing pool): pool=FarmPool(bind='tcp://*:5555')"
                )
            args += ["--bind", pool.bind]
        refused = []
        for key, value in kwargs.items():
            opt = ALIASES.get(key, key).replace("_", "-")
            if opt not in names or opt in ("model", "model-args", "output", "help", "version", "config"):
                refused.append(key)
                continue
            if opt in switches:
                if not isinstance(value, bool):
                    raise ValueError("%s takes True or False, got %r" % (key, value))
                args.append("--%s%s" % ("" if value else "no-", opt))
            elif value is None:
                args += ["--" + opt, "none"]
            elif isinstance(value, (bool, int, float, str)):
                args += ["--" + opt, str(value)]
            else:
                raise ValueError("%s=%r: the coordinator takes a number or a string here" % (key, value))
        if refused:
            raise ValueError(
                "nessai-coordinator has no option%s %s (see nessai-coordinator --help for those it has)"
                % ("s" if len(refused) > 1 else "", ", ".join(sorted(refused)))
            )
        self.args = args
        self.result = None
        self.posterior_samples = None

    @property
    def command(self):
        return [self.program] + self.args

    def run(self):
        """Run the coordinator to its end; returns (result, posterior_samples)."""
        env = dict(os.environ)
        here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        env["PYTHONPATH"] = os.pathsep.join(p for p in (here, env.get("PYTHONPATH")) if p)
        proc = subprocess.Popen(self.command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=env, bufsize=1)
        last = ""
        try:
            for line in proc.stderr:
                sys.stderr.write(line)
                if line.strip():
                    last = line.strip()
            out = proc.stdout.read()
            code = proc.wait()
        except KeyboardInterrupt:
            proc.send_signal(signal.SIGINT)
            proc.wait()
            raise
        finally:
            proc.stdout.close()
            proc.stderr.close()
        if out:
            sys.stdout.write(out)
        if code != 0:
            raise RuntimeError("nessai-coordinator exited with code %d: %s" % (code, last))
        with open(os.path.join(str(self.output), "result.json")) as f:
            self.result = json.load(f)
        names = list(self.result["run"]["parameters"])
        if self.result.get("sampler") == "importance_nested_sampler":
            # importance_nested_sampler=True: no nested samples; the i.i.d.
            # samples with their weights (nessai's fields logW, logQ, logU)
            extra = ["logW", "logQ", "logU"]
            self.posterior_samples = _records(self.result["posterior_samples"], names, extra)
            self.samples = _records(self.result["samples"], names, extra)
            self.log_posterior_weights = np.asarray(self.result["log_posterior_weights"], dtype="f8")
            self.nested_samples = None
        else:
            self.posterior_samples = _records(self.result["posterior_samples"], names)
            self.nested_samples = _records(self.result["nested_samples"], names)
        self.log_evidence = self.result["log_evidence"]
        self.log_evidence_error = self.result["log_evidence_error"]
        return self.result, self.posterior_samples


def _records(samples, names, extra=()):
    """A structured array of nessai's live-point dtype (plus the float64
    fields in extra, the importance sampler's) from result.json's samples:
    a dict of columns (posterior_samples) or a list of rows in the dtype's
    field order (nested_samples), as nessai writes them."""
    dtype = np.dtype(get_dtype(names).descr + [(e, "f8") for e in extra])
    if isinstance(samples, dict):
        x = np.empty(len(samples["logL"]), dtype=dtype)
        for field in x.dtype.names:
            x[field] = samples[field]
        return x
    return np.array([tuple(row) for row in samples], dtype=dtype)
