"""S5 as a Python model, the same values bit for bit as examples/rosenbrock.c
(s += 100 a a + b b over i < d - 1, then -s). No log_prior of its own: the
loader's default (uniform in the bounds) is used, as for the C plugin."""
from nessai_farm import Model

TRUTH = {2: -5.80413, 4: -15.10169, 8: -33.72162}


class Rosenbrock(Model):
    def __init__(self, dim=2):
        self.names = ["x%d" % i for i in range(dim)]
        self.bounds = {n: (-5.0, 5.0) for n in self.names}
        self.truth_log_evidence = TRUTH.get(dim)

    def log_likelihood(self, x):
        s = 0.0
        for lo, hi in zip(self.names[:-1], self.names[1:]):
            a = x[hi] - x[lo] * x[lo]
            b = 1.0 - x[lo]
            s = s + (100.0 * a * a + b * b)
        return -s
