"""A likelihood object with its own parameters, wrapped in a model (the way
bilby likelihoods are): the model copies each point into
likelihood.parameters and calls likelihood.log_likelihood().

    nessai-coordinator --model examples/python/wrapped_likelihood.py:WrappedLikelihood \
        --n-pool 2 --output outdir
"""
import math

import numpy as np

from nessai_farm import Model


class StraightLineLikelihood:
    """Gaussian noise of known width about y = m x + c."""

    def __init__(self, x, y, sigma):
        self.x, self.y, self.sigma = x, y, sigma
        self.parameters = {"m": None, "c": None}

    def log_likelihood(self):
        r = self.y - (self.parameters["m"] * self.x + self.parameters["c"])
        return -0.5 * float(np.sum(r * r)) / self.sigma**2 - self.x.size * math.log(
            math.sqrt(2.0 * math.pi) * self.sigma
        )


class WrappedLikelihood(Model):
    # The likelihood object holds one point at a time.
    allow_vectorised = False

    def __init__(self, n_data=50, seed=42, m=0.8, c=-0.3, sigma=0.2):
        rng = np.random.default_rng(seed)
        x = np.linspace(0.0, 5.0, n_data)
        y = m * x + c + rng.normal(0.0, sigma, n_data)
        self.likelihood = StraightLineLikelihood(x, y, sigma)
        self.priors = {"m": (-2.0, 2.0), "c": (-2.0, 2.0)}
        self.names = list(self.likelihood.parameters)
        self.bounds = dict(self.priors)

    def log_prior(self, x):
        if not self.in_bounds(x).all():
            return -np.inf
        return -sum(math.log(hi - lo) for lo, hi in self.priors.values())

    def log_likelihood(self, x):
        self.likelihood.parameters.update({n: float(x[n]) for n in self.names})
        return self.likelihood.log_likelihood()
