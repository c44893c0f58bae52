from nessai_farm import Model


class A(Model):
    def __init__(self):
        self.names = ["x0", "x1"]
        self.bounds = {"x0": (-5.0, 5.0), "x1": (-5.0, 5.0)}

    def log_likelihood(self, x):
        return -0.5 * (x["x0"] ** 2 + x["x1"] ** 2)


class B(A):
    pass
