"""A wrapping phase and a plain parameter, with the per-parameter declarations
chosen by the `declare` keyword (tests/python/test_errors.py, Declarations)."""
import numpy as np

from nessai_farm import Model

DECLARE = {
    "dict": ({"phase": None}, None),
    "list": (["phase"], None),
    "period": ({"phase": 2 * np.pi}, None),
    "prefer": ({"phase": None}, {"phase": "angle"}),
    "unknown": ({"phse": None}, None),
    "badtype": (5, None),
    "badperiod": ({"phase": -1.0}, None),
    "badreparam": (None, {"a": 3}),
}


class Ring(Model):
    def __init__(self, declare="dict"):
        self.names = ["phase", "a"]
        self.bounds = {"phase": (0.0, 2 * np.pi), "a": (-5.0, 5.0)}
        self.periodic, self.reparameterisations = DECLARE[declare]

    def log_likelihood(self, x):
        return 4.0 * np.cos(x["phase"] - 0.1) - 0.5 * x["a"] ** 2
