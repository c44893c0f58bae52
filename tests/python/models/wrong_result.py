"""Returns a result of the wrong shape or dtype (--model-args kind=...)."""
import numpy as np

from nessai_farm import Model


class WrongResult(Model):
    def __init__(self, kind="shape"):
        self.names = ["x0", "x1"]
        self.bounds = {"x0": (-5.0, 5.0), "x1": (-5.0, 5.0)}
        self.kind = kind
        self.vectorised_likelihood = kind != "scalar"

    def log_likelihood(self, x):
        v = -0.5 * (x["x0"] ** 2 + x["x1"] ** 2)
        if self.kind == "shape":
            return v.reshape(-1, 1)
        if self.kind == "dtype":
            return v.astype(np.float32)
        if self.kind == "list":
            return list(v)
        return "not a number"
