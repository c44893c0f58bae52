"""Raises for points with x0 > 2 (the error path of a failing model).
--model-args vectorised=False has it called point by point."""
import numpy as np

from nessai_farm import Model


class Raises(Model):
    def __init__(self, vectorised=True):
        self.names = ["x0", "x1"]
        self.bounds = {"x0": (-5.0, 5.0), "x1": (-5.0, 5.0)}
        self.vectorised_likelihood = vectorised

    def log_likelihood(self, x):
        if np.any(x["x0"] > 2.0):
            raise ZeroDivisionError("x0 above 2")
        return -0.5 * (x["x0"] ** 2 + x["x1"] ** 2)


class PriorRaises(Raises):
    """The prior raises instead, for points with x1 < -4."""

    def __init__(self):
        super().__init__()
        self.vectorised_prior = True

    def log_prior(self, x):
        if np.any(x["x1"] < -4.0):
            raise ValueError("x1 below -4")
        return np.where(self.in_bounds(x), -np.log(100.0), -np.inf)

    def log_likelihood(self, x):
        return -0.5 * (x["x0"] ** 2 + x["x1"] ** 2)
