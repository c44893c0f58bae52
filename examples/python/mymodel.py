import numpy as np
from nessai_farm import Model  # or: from nessai.model import Model

class MyModel(Model):
    def __init__(self, dim=2):
        self.names = [f"x{i}" for i in range(dim)]
        self.bounds = {n: (-10.0, 10.0) for n in self.names}
    def log_prior(self, x):
        return np.where(self.in_bounds(x), -self.dims * np.log(20.0), -np.inf)
    def log_likelihood(self, x):
        return -0.5 * sum(x[n] ** 2 for n in self.names)
