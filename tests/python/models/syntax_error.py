from nessai_farm import Model


class Broken(Model):
    def __init__(self):
        self.names = ["x0", "x1"]
        self.bounds = {"x0": (0, 1), "x1": (0, 1)

    def log_likelihood(self, x):
        return 0.0
