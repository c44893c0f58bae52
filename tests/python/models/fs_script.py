"""A script as nessai users write them: the model class in __main__, then
FlowSampler. The coordinator imports this file to build the model, so the
run is guarded by __name__ == "__main__"."""
import json
import sys

import numpy as np

from nessai_farm import FlowSampler, Model


class Line(Model):
    def __init__(self, n_data=20, noise=0.5):
        rng = np.random.default_rng(9)
        self.t = np.linspace(0.0, 1.0, n_data)
        self.y = 1.5 * self.t - 0.5 + rng.normal(0.0, noise, n_data)
        self.noise = noise
        self.names = ["m", "c"]
        self.bounds = {"m": (-5.0, 5.0), "c": (-5.0, 5.0)}

    def log_likelihood(self, x):
        m = np.asarray(x["m"])[..., np.newaxis]
        c = np.asarray(x["c"])[..., np.newaxis]
        r = self.y - (m * self.t + c)
        return -0.5 * np.sum(r * r, axis=-1) / self.noise**2


if __name__ == "__main__":
    out = sys.argv[1]
    fs = FlowSampler(Line(n_data=30), output=out, n_pool=2, seed=1, nlive=200, pytorch_threads=1,
                     result_hdf5=False, stopping=0.1)
    result, posterior = fs.run()
    print(json.dumps({"log_evidence": fs.log_evidence, "n": len(posterior), "dtype": posterior.dtype.str,
                      "names": posterior.dtype.names, "it": posterior.dtype["it"].str,
                      "m": float(posterior["m"].mean()), "spec": fs.model_spec, "args": fs.model_args}))
