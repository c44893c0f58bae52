"""Not deterministic: a different value at every call."""
import numpy as np

from nessai_farm import Model


class Random(Model):
    def __init__(self):
        self.names = ["x0", "x1"]
        self.bounds = {"x0": (-5.0, 5.0), "x1": (-5.0, 5.0)}
        self.gen = np.random.default_rng()
        self.vectorised_likelihood = True

    def log_likelihood(self, x):
        return -0.5 * (x["x0"] ** 2 + x["x1"] ** 2) + self.gen.normal(size=len(x))
