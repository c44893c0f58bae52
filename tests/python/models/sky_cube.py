"""The sky toy of examples/sky.c as a Python model with its own unit-hypercube
maps (ra = 2 pi u0, dec = asin(2 u1 - 1)) for the importance nested sampler:
isotropic prior, von Mises-Fisher likelihood, ln Z = ln((1 - e^-2k) / 2k)."""
import math

import numpy as np

from nessai_farm import Model


class SkyCube(Model):
    def __init__(self, kappa=5.0, ra0=3.0, dec0=-0.7):
        self.names = ["ra", "dec"]
        self.bounds = {"ra": (0.0, 2 * math.pi), "dec": (-math.pi / 2, math.pi / 2)}
        self.kappa = float(kappa)
        self.mu = np.array([math.cos(dec0) * math.cos(ra0), math.cos(dec0) * math.sin(ra0),
                            math.sin(dec0)])
        self.truth_log_evidence = math.log(-math.expm1(-2 * self.kappa) / (2 * self.kappa))

    def log_likelihood(self, x):
        dot = (self.mu[0] * np.cos(x["dec"]) * np.cos(x["ra"])
               + self.mu[1] * np.cos(x["dec"]) * np.sin(x["ra"]) + self.mu[2] * np.sin(x["dec"]))
        return self.kappa * (dot - 1.0)

    def log_prior(self, x):
        ok = self.in_bounds(x)
        with np.errstate(divide="ignore", invalid="ignore"):
            return np.where(ok, np.log(np.cos(x["dec"])) - math.log(4 * math.pi), -np.inf)

    def from_unit_hypercube(self, u):
        x = u.copy()
        x["ra"] = 2 * math.pi * u["ra"]
        x["dec"] = np.arcsin(2 * u["dec"] - 1)
        return x

    def to_unit_hypercube(self, x):
        u = x.copy()
        u["ra"] = x["ra"] / (2 * math.pi)
        u["dec"] = 0.5 * (np.sin(x["dec"]) + 1)
        return u
