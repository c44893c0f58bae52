"""S1 as a Python model: the same values, bit for bit, as examples/gaussian.c
(the same operations in the same order: sum of squares from x0 up, then
norm - 0.5 s; the log-prior as the loader's default, -(sum of log widths))."""
import math

import numpy as np

from nessai_farm import Model


class Gaussian(Model):
    def __init__(self, dim=2):
        self.names = ["x%d" % i for i in range(dim)]
        self.bounds = {n: (-10.0, 10.0) for n in self.names}
        self.norm = -0.5 * math.log(2.0 * math.pi) * float(dim)
        self.truth_log_evidence = -dim * math.log(20.0)
        log_volume = 0.0
        for _ in self.names:
            log_volume += math.log(20.0)
        self.log_volume = log_volume

    def log_likelihood(self, x):
        s = 0.0
        for n in self.names:
            s = s + x[n] * x[n]
        return self.norm - 0.5 * s

    def log_prior(self, x):
        return np.where(self.in_bounds(x), -self.log_volume, -np.inf)
