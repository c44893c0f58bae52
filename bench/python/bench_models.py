"""Models of the Python bridge benchmark (bench/python/bench_python.c)."""
import math

from nessai_farm import Model


class Gaussian(Model):
    """S1, vectorised with numpy (the values of examples/gaussian.c)."""

    def __init__(self, dim=8):
        self.names = ["x%d" % i for i in range(dim)]
        self.bounds = {n: (-10.0, 10.0) for n in self.names}
        self.norm = -0.5 * math.log(2.0 * math.pi) * float(dim)

    def log_likelihood(self, x):
        s = 0.0
        for n in self.names:
            s = s + x[n] * x[n]
        return self.norm - 0.5 * s


class GaussianPointwise(Gaussian):
    """The same, called one point at a time (plain floats)."""

    allow_vectorised = False

    def log_likelihood(self, x):
        s = 0.0
        for n in self.names:
            v = float(x[n])
            s += v * v
        return self.norm - 0.5 * s
