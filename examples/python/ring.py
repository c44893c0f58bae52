"""A model written for one point at a time (plain math on floats, an if):
a thin ring of radius 2 in the plane. nessai's vectorisation check finds the
likelihood is not vectorised (math.hypot raises TypeError on arrays), so
every point is a call of its own.

    nessai-coordinator --model examples/python/ring.py --output outdir
"""
import math

from nessai_farm import Model


class Ring(Model):
    def __init__(self, radius=2.0, width=0.1):
        self.radius, self.width = radius, width
        self.names = ["x", "y"]
        self.bounds = {"x": (-4.0, 4.0), "y": (-4.0, 4.0)}

    def log_prior(self, x):
        return 0.0 if self.in_bounds(x).all() else -math.inf

    def log_likelihood(self, x):
        r = math.hypot(x["x"], x["y"])
        if r == 0.0:
            return -math.inf
        d = (r - self.radius) / self.width
        return -0.5 * d * d - math.log(2.0 * math.pi * r * self.width * math.sqrt(2.0 * math.pi))
