"""A model whose values come from a sibling module and a data file: its
identity covers all three (idhelper.py is imported from the same
directory, data.txt is declared in identity_files)."""
import os

import numpy as np

from idhelper import scale
from nessai_farm import Model


class IdModel(Model):
    identity_files = ["data.txt"]

    def __init__(self):
        self.names = ["a", "b", "c"]
        self.bounds = {n: (-5.0, 5.0) for n in self.names}
        with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "data.txt")) as f:
            self.offset = float(f.read())

    def log_likelihood(self, x):
        return -scale() * (x["a"] ** 2 + x["b"] ** 2 + (x["c"] - self.offset) ** 2) + np.log1p(x["a"] ** 2)
