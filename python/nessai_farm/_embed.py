"""What the Python model plugin (python/nessai_python.c) calls.

``load(source, args)`` imports the model file, builds the class with the
--model-args keywords and returns a ``Bridge``: the model, its names and
bounds, which methods are vectorised, the live-point dtype and the model's
identity digest. Errors are raised as ``ModelLoadError`` with a one-line
message; ``describe_exception`` turns any exception into one line with the
innermost frame's file:line.
"""
import ast
import hashlib
import importlib.util
import os
import sys
import traceback

import numpy as np

from .livepoint import get_dtype
from .model import check_vectorised_function

# Seed of the points used to check vectorisation: the same in every process,
# so the coordinator and its workers decide the same way.
CHECK_SEED = 20240101


class ModelLoadError(Exception):
    """A model that cannot be loaded (the message is one line)."""


def parse_model_args(text):
    """--model-args as keyword arguments: "a=1, b='x', c=[1, 2]".

    Each value is read as a Python literal (numbers, strings, tuples, lists,
    dicts, True/False/None); a value that is not a literal is passed as its
    text (``mode=fast`` gives the string "fast").
    """
    text = (text or "").strip()
    if not text:
        return {}
    try:
        call = ast.parse("f(" + text + ")", mode="eval").body
    except SyntaxError:
        raise ModelLoadError(
            "--model-args must be comma-separated key=value pairs, got %r" % text
        ) from None
    if call.args or any(k.arg is None for k in call.keywords):
        raise ModelLoadError("--model-args must be key=value pairs, got %r" % text)
    src = "f(" + text + ")"
    kwargs = {}
    for k in call.keywords:
        if k.arg in kwargs:
            raise ModelLoadError("--model-args gives %s twice" % k.arg)
        try:
            kwargs[k.arg] = ast.literal_eval(k.value)
        except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
            kwargs[k.arg] = ast.get_source_segment(src, k.value)
    return kwargs


def _frame(tb):
    frames = traceback.extract_tb(tb) if tb is not None else []
    if not frames:
        return ""
    f = frames[-1]
    return " at %s:%d" % (f.filename, f.lineno)


def describe_exception(etype, value, tb):
    """One line: type, message, innermost frame file:line."""
    if etype is None:
        return "unknown error"
    if isinstance(value, ModelLoadError):
        return str(value)
    msg = str(value) if value is not None else ""
    if isinstance(value, SyntaxError):
        where = " at %s:%s" % (value.filename, value.lineno) if value.filename else ""
        msg = value.msg
    else:
        where = _frame(tb)
    line = "%s%s%s" % (etype.__name__, ": " + msg if msg else "", where)
    return " ".join(line.split())


# Directories of the model files loaded in this process (a worker loads
# another model when the run changes).
_model_dirs = []


def _under(f, dirs):
    """True for a file below one of dirs, not inside installed packages (a
    virtual environment kept next to the model is not the model's source)."""
    f = os.path.realpath(f)
    for d in dirs:
        if f.startswith(d + os.sep):
            parts = f[len(d) + 1 :].split(os.sep)
            return "site-packages" not in parts and "dist-packages" not in parts
    return False


def _import_file(path):
    """Import the model file afresh, with its directory first on sys.path;
    modules of model directories loaded before are forgotten, so that a
    sibling module of the same name is this model's."""
    directory = os.path.dirname(path)
    name = os.path.splitext(os.path.basename(path))[0]
    dirs = _model_dirs + [directory]
    for key, mod in list(sys.modules.items()):
        f = getattr(mod, "__file__", None)
        if f and _under(f, dirs):
            del sys.modules[key]
    sys.path[:] = [p for p in sys.path if os.path.realpath(p or ".") not in dirs]
    sys.path.insert(0, directory)
    _model_dirs[:] = [d for d in _model_dirs if d != directory] + [directory]
    importlib.invalidate_caches()
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise ModelLoadError("cannot import %s: not a Python file" % path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def _find_class(module, path, cls_name):
    if cls_name:
        cls = getattr(module, cls_name, None)
        if cls is None:
            raise ModelLoadError("%s defines no class %s" % (path, cls_name))
        if not isinstance(cls, type):
            raise ModelLoadError("%s:%s is not a class" % (path, cls_name))
        return cls
    found = [
        c
        for c in vars(module).values()
        if isinstance(c, type) and c.__module__ == module.__name__ and hasattr(c, "log_likelihood")
    ]
    models = [c for c in found if any(k.__name__ == "Model" for k in c.__mro__[1:])]
    found = models or found
    if len(found) != 1:
        raise ModelLoadError(
            "%s defines %s model classes (Model subclasses with log_likelihood): name one with "
            "--model %s:Class"
            % (path, len(found) or "no", path)
        )
    return found[0]


def _identity(path, model):
    """SHA-1 over the model file, the modules it imported from its directory
    and the files the class lists in ``identity_files`` (relative to it)."""
    directory = os.path.dirname(path)
    files = {os.path.realpath(path)}
    for mod in list(sys.modules.values()):
        f = getattr(mod, "__file__", None)
        if f and _under(f, [directory]):
            files.add(os.path.realpath(f))
    for f in getattr(model, "identity_files", None) or ():
        files.add(os.path.realpath(os.path.join(directory, f)))
    h = hashlib.sha1()
    for f in sorted(files):
        h.update(os.path.relpath(f, directory).encode() + b"\0")
        try:
            with open(f, "rb") as fh:
                h.update(hashlib.sha1(fh.read()).digest())
        except OSError as e:
            raise ModelLoadError("cannot read %s for the model's identity: %s" % (f, e.strerror))
    return "py:" + h.hexdigest()


def _overrides(model, method):
    """True if the model's method is its own, not that of a Model base
    (nessai's or nessai_farm's)."""
    impl = getattr(type(model), method, None)
    for klass in type(model).__mro__:
        if klass.__name__ == "Model" and klass.__module__ in ("nessai.model", "nessai_farm.model"):
            return impl is not vars(klass).get(method)
    return impl is not None


def _check_points(bridge):
    rng = np.random.default_rng(CHECK_SEED)
    x = np.zeros(10, dtype=bridge.dtype)
    x["logP"] = np.nan
    x["logL"] = np.nan
    for j, n in enumerate(bridge.names):
        x[n] = rng.uniform(bridge.lower[j], bridge.upper[j], 10)
    return x


def _declarations(bridge, model):
    """The per-parameter declarations the sampler reads (docs/flow.md, "Model
    declarations"): ``periodic``, a dict name -> period (None: upper - lower)
    or a list of names, and ``reparameterisations``, a dict name -> the
    preferred map. Returns three lists in names' order: 0/1 flags, periods
    (0.0 = upper - lower) and map names ("" = no preference)."""
    periodic = getattr(model, "periodic", None)
    if periodic is None:
        periodic = {}
    elif isinstance(periodic, (list, tuple, set, frozenset)):
        periodic = {n: None for n in periodic}
    if not isinstance(periodic, dict):
        raise ModelLoadError(
            "%s.periodic must be a dict name -> period (or None) or a list of names, got %r"
            % (bridge.name, periodic)
        )
    reparams = getattr(model, "reparameterisations", None)
    if reparams is None:
        reparams = {}
    if not isinstance(reparams, dict) or not all(isinstance(v, str) for v in reparams.values()):
        raise ModelLoadError(
            "%s.reparameterisations must be a dict name -> reparameterisation name, got %r"
            % (bridge.name, reparams)
        )
    for what, table in (("periodic", periodic), ("reparameterisations", reparams)):
        unknown = sorted(str(n) for n in table if n not in bridge.names)
        if unknown:
            raise ModelLoadError(
                "%s.%s names %s, which %s not in names %s"
                % (bridge.name, what, ", ".join(unknown), "is" if len(unknown) == 1 else "are",
                   bridge.names)
            )
    flags, periods = [], []
    for n in bridge.names:
        flags.append(1 if n in periodic else 0)
        p = periodic.get(n)
        try:
            p = 0.0 if p is None else float(p)
        except (TypeError, ValueError):
            raise ModelLoadError("%s.periodic[%r] must be a number or None, got %r"
                                 % (bridge.name, n, p)) from None
        if not p >= 0.0 or p == float("inf"):
            raise ModelLoadError("%s.periodic[%r] must be a positive period, got %r"
                                 % (bridge.name, n, p))
        periods.append(p)
    return flags, periods, [reparams.get(n, "") for n in bridge.names]


def _vectorised(bridge, attr, allow, func):
    """nessai's rule: the model's own property when it has one (a nessai or
    nessai_farm Model), else the same check on 10 fixed points."""
    model = bridge.model
    if isinstance(getattr(type(model), attr, None), property):
        if getattr(model, "rng", None) is None and hasattr(model, "set_rng"):
            model.rng = np.random.default_rng(CHECK_SEED)
        return bool(getattr(model, attr))
    explicit = getattr(model, attr, None)
    if explicit is not None:
        return bool(explicit)
    if not getattr(model, allow, True):
        return False
    return check_vectorised_function(func, _check_points(bridge))


class Bridge:
    def __init__(self, source, args):
        path, _, cls_name = source.partition(".py:")
        path = path + ".py" if cls_name else source
        kwargs = parse_model_args(args)
        module = _import_file(path)
        cls = _find_class(module, path, cls_name)
        self.name = cls.__name__
        self.model = model = cls(**kwargs)
        names = getattr(model, "names", None)
        if not isinstance(names, (list, tuple)) or not all(isinstance(n, str) for n in names):
            raise ModelLoadError("%s.names must be a list of strings, got %r" % (self.name, names))
        self.names = list(names)
        bounds = getattr(model, "bounds", None)
        if not isinstance(bounds, dict):
            raise ModelLoadError("%s.bounds must be a dict name -> (lower, upper)" % self.name)
        self.lower, self.upper = [], []
        for n in self.names:
            if n not in bounds:
                raise ModelLoadError("%s.bounds has no entry for %r" % (self.name, n))
            try:
                lo, hi = (float(v) for v in bounds[n])
            except (TypeError, ValueError):
                raise ModelLoadError(
                    "%s.bounds[%r] must be two numbers (lower, upper), got %r" % (self.name, n, bounds[n])
                ) from None
            self.lower.append(lo)
            self.upper.append(hi)
        self.periodic, self.period, self.reparameterisations = _declarations(self, model)
        if not callable(getattr(model, "log_likelihood", None)):
            raise ModelLoadError("%s has no log_likelihood method" % self.name)
        self.log_likelihood = model.log_likelihood
        lp = getattr(model, "log_prior", None)
        self.log_prior = lp if callable(lp) and _overrides(model, "log_prior") else None
        self.dtype = get_dtype(self.names)
        self.empty = np.empty
        has_np = _overrides(model, "new_point")
        has_lq = _overrides(model, "new_point_log_prob")
        if has_np != has_lq:
            raise ModelLoadError(
                "%s defines only one of new_point and new_point_log_prob: define both or neither"
                % self.name
            )
        # the importance nested sampler's prior map: used when the class has
        # its own from_unit_hypercube (else the loader's linear map)
        self.unit_hypercube = _overrides(model, "from_unit_hypercube") and callable(
            getattr(model, "to_unit_hypercube", None))
        self.new_point = model.new_point if has_np else None
        self.new_point_log_prob = model.new_point_log_prob if has_lq else None
        self.vectorised = _vectorised(self, "vectorised_likelihood", "allow_vectorised", model.log_likelihood)
        self.vectorised_prior = (
            _vectorised(self, "vectorised_prior", "allow_vectorised_prior", self.log_prior)
            if self.log_prior is not None
            else False
        )
        truth = getattr(model, "truth_log_evidence", None)
        self.truth_log_evidence = float("nan") if truth is None else float(truth)
        self.identity = _identity(os.path.realpath(path), model)

    def describe_result(self, what, result, n):
        """Why a returned value cannot be used (one line)."""
        want = "a float64 array of shape (%d,)" % n if n >= 0 else "a float"
        if isinstance(result, np.ndarray):
            got = "an array of dtype %s and shape %s" % (result.dtype, result.shape)
        else:
            got = "%s %r" % (type(result).__name__, result) if np.ndim(result) == 0 else type(result).__name__
            if len(got) > 80:
                got = got[:77] + "..."
        return "%s returned %s; it must return %s" % (what, got, want)

    def locate(self, func, x):
        """Index of the first point whose own call raises, or -1."""
        for i in range(len(x)):
            try:
                func(x[i : i + 1])
            except Exception:
                return i
        return -1

    def draw(self, seed, n):
        """new_point(N=n) with the model's rng seeded from the sampler, as
        an (n, d) float64 array."""
        self.model.rng = np.random.default_rng(seed)
        x = self.new_point(N=n)
        names = getattr(getattr(x, "dtype", None), "names", None) or ()
        missing = [p for p in self.names if p not in names]
        if missing or np.shape(x) != (n,):
            got = "an array of shape %s with fields %s" % (np.shape(x), list(names)) if names else type(x).__name__
            raise ModelLoadError(
                "new_point(N=%d) returned %s; it must return a structured array of %d points with a "
                "field for each of %s" % (n, got, n, ", ".join(self.names))
            )
        return np.ascontiguousarray(np.stack([np.asarray(x[p], dtype="f8") for p in self.names], axis=-1))


    def cube(self, to_cube, buf):
        """to_unit_hypercube (to_cube true) or from_unit_hypercube of the
        model on n points given as a buffer of n * d float64, as an (n, d)
        float64 array."""
        x = np.frombuffer(buf, dtype="f8").reshape(-1, len(self.names))
        pts = np.zeros(x.shape[0], dtype=self.dtype)
        pts["logP"] = np.nan
        pts["logL"] = np.nan
        for j, n in enumerate(self.names):
            pts[n] = x[:, j]
        what = "to_unit_hypercube" if to_cube else "from_unit_hypercube"
        y = getattr(self.model, what)(pts)
        names = getattr(getattr(y, "dtype", None), "names", None) or ()
        if [p for p in self.names if p not in names] or np.shape(y) != (x.shape[0],):
            raise ModelLoadError(
                "%s returned %s; it must return a structured array of %d points with a field "
                "for each of %s" % (what, type(y).__name__, x.shape[0], ", ".join(self.names)))
        return np.ascontiguousarray(np.stack([np.asarray(y[p], dtype="f8") for p in self.names],
                                             axis=-1))


def load(source, args):
    return Bridge(source, args)


def format_point(names, values):
    return ", ".join("%s=%s" % (n, repr(float(v))) for n, v in zip(names, values))

