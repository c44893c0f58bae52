"""A Model base class with nessai's interface.

Model classes written for nessai subclass ``nessai.model.Model``; when
nessai is not installed, ``nessai_farm.Model`` takes its place: the same
attributes (``names``, ``bounds``, ``allow_vectorised``,
``allow_vectorised_prior``, ``vectorised_likelihood``, ...) and the same
default methods (``new_point``, ``new_point_log_prob``, ``in_bounds``, the
unit-hypercube maps). Subclasses define ``log_likelihood`` and
``log_prior``.
"""
import numpy as np

from .livepoint import (
    empty_structured_array,
    live_points_to_array,
    numpy_array_to_live_points,
    parameters_to_live_point,
)


def check_vectorised_function(func, x, dtype="f8", atol=1e-15, rtol=1e-15):
    """True if func gives on the batch x what it gives point by point.

    The batch call may raise TypeError, ValueError or AttributeError (the
    function is then not vectorised); any other exception propagates.
    """
    if len(x) <= 1:
        raise ValueError("need at least two points to check vectorisation")
    single = np.array([func(xx) for xx in x], dtype=dtype).flatten()
    try:
        batch = func(x).astype(dtype)
    except (TypeError, ValueError, AttributeError):
        return False
    if batch.shape != single.shape:
        return False
    return bool(np.allclose(single, batch, atol=atol, rtol=rtol))


class Model:
    """Base class of a user model (nessai's ``Model`` interface)."""

    def __new__(cls, *args, **kwargs):
        # Recorded so that FlowSampler can have the coordinator build the same model.
        self = super().__new__(cls)
        self._nessai_farm_init_args = args
        self._nessai_farm_init_kwargs = dict(kwargs)
        return self

    _names = None
    _bounds = None
    _lower = None
    _upper = None
    allow_vectorised = True
    allow_vectorised_prior = True
    likelihood_chunksize = None
    allow_multi_valued_likelihood = False
    parallelise_prior = False
    reparameterisations = None
    _vectorised_likelihood = None
    _vectorised_prior = None
    n_pool = None
    pool = None
    rng = None
    likelihood_evaluations = 0

    def set_rng(self, rng=None):
        if self.rng is not None:
            raise RuntimeError("the model's rng is already set")
        self.rng = rng if rng is not None else np.random.default_rng()

    @property
    def names(self):
        if self._names is None:
            raise RuntimeError("`names` is not set!")
        return self._names

    @names.setter
    def names(self, names):
        if not isinstance(names, list):
            raise TypeError("`names` must be a list")
        if len(names) < 2:
            raise ValueError("a model needs at least two parameters, got names=%r" % (names,))
        self._names = names
        self._lower = self._upper = None

    @property
    def bounds(self):
        if self._bounds is None:
            raise RuntimeError("`bounds` is not set!")
        return self._bounds

    @bounds.setter
    def bounds(self, bounds):
        if not isinstance(bounds, dict):
            raise TypeError("`bounds` must be a dictionary.")
        if len(bounds) < 2:
            raise ValueError("a model needs at least two parameters, got bounds=%r" % (bounds,))
        if not all(len(b) == 2 for b in bounds.values()):
            raise ValueError("Each entry in `bounds` must have length 2.")
        self._bounds = {p: np.asarray(b) for p, b in bounds.items()}
        self._lower = self._upper = None

    @property
    def dims(self):
        return len(self.names)

    def _set_upper_lower(self):
        b = np.array([self.bounds[n] for n in self.names], dtype="f8")
        self._lower, self._upper = b[:, 0], b[:, 1]

    @property
    def lower_bounds(self):
        if self._lower is None:
            self._set_upper_lower()
        return self._lower

    @property
    def upper_bounds(self):
        if self._upper is None:
            self._set_upper_lower()
        return self._upper

    def _check_points(self, n=10):
        return np.concatenate([self.new_point() for _ in range(n)])

    @property
    def vectorised_likelihood(self):
        """Whether log_likelihood takes a batch (checked once on 10 points)."""
        if self._vectorised_likelihood is None:
            self._vectorised_likelihood = bool(self.allow_vectorised) and check_vectorised_function(
                self.log_likelihood, self._check_points()
            )
        return self._vectorised_likelihood

    @vectorised_likelihood.setter
    def vectorised_likelihood(self, value):
        self._vectorised_likelihood = value

    @property
    def vectorised_prior(self):
        """Whether log_prior takes a batch (checked once on 10 points)."""
        if self._vectorised_prior is None:
            self._vectorised_prior = bool(self.allow_vectorised_prior) and check_vectorised_function(
                self.log_prior, self._check_points()
            )
        return self._vectorised_prior

    @vectorised_prior.setter
    def vectorised_prior(self, value):
        self._vectorised_prior = value

    def new_point(self, N=1):
        """N points uniform in the bounds with a finite log-prior."""
        if self.rng is None:
            raise RuntimeError("the model's rng is not set: call set_rng() first")
        out = empty_structured_array(N, self.names)
        n = 0
        while n < N:
            p = numpy_array_to_live_points(
                self.rng.uniform(self.lower_bounds, self.upper_bounds, [N - n if N > 1 else 1, self.dims]),
                self.names,
            )
            lp = np.asarray(self.log_prior(p) if N > 1 else [self.log_prior(p)], dtype="f8").reshape(-1)
            p = p[np.isfinite(lp)]
            m = min(p.size, N - n)
            out[n : n + m] = p[:m]
            n += m
        return out

    def new_point_log_prob(self, x):
        """ln q of new_point's distribution, up to a constant: 0."""
        return np.zeros(x.size)

    def in_bounds(self, x):
        """True for points inside the bounds (inclusive)."""
        ok = np.ones(x.size, dtype=bool)
        for n, lo, hi in zip(self.names, self.lower_bounds, self.upper_bounds):
            ok &= (x[n] >= lo) & (x[n] <= hi)
        return ok

    def to_unit_hypercube(self, x):
        """Rescale points from the bounds to [0, 1]^d."""
        y = x.copy()
        for n, lo, hi in zip(self.names, self.lower_bounds, self.upper_bounds):
            y[n] = (x[n] - lo) / (hi - lo)
        return y

    def from_unit_hypercube(self, x):
        """Rescale points from [0, 1]^d to the bounds."""
        y = x.copy()
        for n, lo, hi in zip(self.names, self.lower_bounds, self.upper_bounds):
            y[n] = lo + (hi - lo) * x[n]
        return y

    def sample_unit_hypercube(self, n=1):
        if self.rng is None:
            raise RuntimeError("the model's rng is not set: call set_rng() first")
        return numpy_array_to_live_points(self.rng.uniform(0.0, 1.0, [n, self.dims]), self.names)

    def unstructured_view(self, x):
        return live_points_to_array(x, self.names)

    def log_likelihood(self, x):
        raise NotImplementedError("the model must define log_likelihood(x)")

    def log_prior(self, x):
        """Uniform in the bounds (nessai requires subclasses to define it)."""
        log_volume = np.sum(np.log(self.upper_bounds - self.lower_bounds))
        return np.where(self.in_bounds(x), -log_volume, -np.inf)

    def __getstate__(self):
        state = self.__dict__.copy()
        state.pop("pool", None)
        return state


__all__ = ["Model", "check_vectorised_function", "parameters_to_live_point"]
