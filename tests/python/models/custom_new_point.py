"""A model with its own new_point and new_point_log_prob: draws from a
Gaussian of width 8 about the origin (truncated to the bounds), ln q up to a
constant; --model-args broken='shape' returns one point too many; OnlyOne
defines new_point alone."""
import numpy as np

from nessai_farm import Model, numpy_array_to_live_points


class CustomNewPoint(Model):
    def __init__(self, broken=None):
        self.names = ["x0", "x1"]
        self.bounds = {"x0": (-10.0, 10.0), "x1": (-10.0, 10.0)}
        self.broken = broken

    def log_prior(self, x):
        return np.where(self.in_bounds(x), -2.0 * np.log(20.0), -np.inf)

    def log_likelihood(self, x):
        return -0.5 * (x["x0"] ** 2 + x["x1"] ** 2)

    def new_point(self, N=1):
        out = np.empty((0, 2))
        while len(out) < N:
            y = self.rng.normal(0.0, 8.0, size=(N, 2))
            out = np.concatenate([out, y[np.all(np.abs(y) <= 10.0, axis=1)]])
        if self.broken == "shape":
            return numpy_array_to_live_points(out[: N + 1], self.names)
        return numpy_array_to_live_points(out[:N], self.names)

    def new_point_log_prob(self, x):
        return -0.5 * (x["x0"] ** 2 + x["x1"] ** 2) / 64.0


class OnlyOne(CustomNewPoint):
    new_point_log_prob = Model.new_point_log_prob


class DefaultNewPoint(CustomNewPoint):
    new_point = Model.new_point
    new_point_log_prob = Model.new_point_log_prob
