"""Problem E: the mean and width of 1000 Gaussian data drawn with seed 1234.

    nessai-coordinator --model examples/python/gaussian_data.py:GaussianData \
        --n-pool 4 --output outdir

The data are drawn in __init__, from the seed, so the coordinator and every
worker build the same data (--model-args "n_data=5000, seed=1" to change).
"""
import numpy as np

from nessai_farm import Model


class GaussianData(Model):
    def __init__(self, n_data=1000, seed=1234, mu=1.7, sigma=0.7):
        rng = np.random.default_rng(seed)
        self.data = rng.normal(mu, sigma, size=n_data)
        self.names = ["mu", "sigma"]
        self.bounds = {"mu": [-3.0, 3.0], "sigma": [0.01, 3.0]}

    def log_prior(self, x):
        log_p = np.log(self.in_bounds(x), dtype="float")
        for n in self.names:
            log_p -= np.log(self.bounds[n][1] - self.bounds[n][0])
        return log_p

    def log_likelihood(self, x):
        # Vectorised: x holds one or many points; columns broadcast against the data.
        mu = np.asarray(x["mu"])[..., np.newaxis]
        sigma = np.asarray(x["sigma"])[..., np.newaxis]
        return np.sum(-np.log(sigma) - 0.5 * ((self.data - mu) / sigma) ** 2, axis=-1)
