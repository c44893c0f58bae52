"""The examples in examples/python run and find their answers; the bridge
sees the vectorised and the point-by-point ones as such; signals stop a run
whose model is inside Python as they stop any other."""
import math
import os
import signal
import subprocess
import unittest

import numpy as np

from pyt_util import COORDINATOR, SOURCE, coordinator, differences, load, model, tmpdir, wait_for_line

EX = os.path.join(SOURCE, "examples", "python")


def posterior(out):
    r = load(out)
    return {k: np.array(v) for k, v in r["posterior_samples"].items()}, r


class Examples(unittest.TestCase):
    def run_example(self, spec, *args):
        out = os.path.join(tmpdir(self), "out")
        r = coordinator(["--model", os.path.join(EX, spec), "--output", out, "--seed", "5",
                         "--no-result-hdf5"] + list(args), timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        return posterior(out)

    def test_gaussian_data_pool(self):
        p, r = self.run_example("gaussian_data.py:GaussianData", "--n-pool", "2", "--nlive", "500")
        self.assertEqual(r["farm"]["local_workers"], 2)
        data = np.random.default_rng(1234).normal(1.7, 0.7, size=1000)
        # The posterior of the mean is centred on the sample mean, width sigma / sqrt(n).
        self.assertLess(abs(p["mu"].mean() - data.mean()), 0.01)
        self.assertLess(abs(p["mu"].std() - data.std() / math.sqrt(1000)), 0.005)
        self.assertLess(abs(p["sigma"].mean() - data.std()), 0.01)

    def test_wrapped_likelihood(self):
        p, r = self.run_example("wrapped_likelihood.py", "--nlive", "300")
        self.assertEqual(r["run"]["model_name"], "WrappedLikelihood")
        self.assertLess(abs(p["m"].mean() - 0.8), 0.06)
        self.assertLess(abs(p["c"].mean() + 0.3), 0.15)

    def test_ring(self):
        p, r = self.run_example("ring.py", "--nlive", "200", "--n-pool", "2")
        radius = np.hypot(p["x"], p["y"])
        self.assertLess(abs(np.median(radius) - 2.0), 0.05)
        # the truth: ln Z = -ln(64) for a normalised ring well inside the box
        self.assertLess(abs(r["log_evidence"] + math.log(64.0)), 5 * r["log_evidence_error"] + 0.05)


    def test_readme_example(self):
        p, r = self.run_example("mymodel.py:MyModel", "--model-args", "dim=4", "--n-pool", "2",
                                "--nlive", "500")
        truth = 2.0 * math.log(2.0 * math.pi) - 4.0 * math.log(20.0)
        self.assertLess(abs(r["log_evidence"] - truth), 5 * r["log_evidence_error"] + 0.05)
        with open(os.path.join(EX, "mymodel.py")) as f:
            text = f.read()
        for doc in ("README.md", os.path.join("docs", "python.md")):
            with open(os.path.join(SOURCE, doc)) as f:
                self.assertIn("```python\n" + text + "```\n", f.read(), doc)


class Vectorisation(unittest.TestCase):
    def bridge(self, spec, args=""):
        from nessai_farm import _embed
        return _embed.load(spec, args)

    def test_detected(self):
        self.assertTrue(self.bridge(os.path.join(EX, "gaussian_data.py:GaussianData")).vectorised)
        self.assertFalse(self.bridge(os.path.join(EX, "ring.py")).vectorised)
        # allow_vectorised = False: never checked, never vectorised
        self.assertFalse(self.bridge(os.path.join(EX, "wrapped_likelihood.py")).vectorised)
        b = self.bridge(model("raises", "Raises"), "vectorised=False")
        self.assertFalse(b.vectorised)

    def test_live_point_dtype(self):
        b = self.bridge(model("gaussian"), "dim=3")
        self.assertEqual(b.dtype.names, ("x0", "x1", "x2", "logP", "logL", "it"))
        self.assertEqual([b.dtype[n].str for n in b.dtype.names], ["<f8"] * 5 + ["<i4"])
        self.assertEqual(b.dtype.itemsize, 3 * 8 + 20)

    def test_model_args(self):
        from nessai_farm._embed import ModelLoadError, parse_model_args
        self.assertEqual(parse_model_args("a=1, b=2.5, c='x', d=[1, 2], e=True, f=fast, g=None"),
                         {"a": 1, "b": 2.5, "c": "x", "d": [1, 2], "e": True, "f": "fast", "g": None})
        self.assertEqual(parse_model_args(""), {})
        for bad in ("1", "a=1, a=2", "a=", "**k"):
            with self.assertRaises(ModelLoadError):
                parse_model_args(bad)


class Signals(unittest.TestCase):
    def interrupt(self, sig):
        out = os.path.join(tmpdir(self), "out")
        cmd = [COORDINATOR, "--model", model("slow", "Slow"), "--output", out, "--seed", "2",
               "--nlive", "200", "--no-result-hdf5"]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            self.assertIsNotNone(wait_for_line(os.path.join(out, "nessai.log"), r"it:\s+200", 60, proc))
            proc.send_signal(sig)
            self.assertEqual(proc.wait(timeout=20), 130)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
        self.assertTrue(os.path.exists(os.path.join(out, "nested_sampler_resume.ckpt")))
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        # the resumed run ends where an uninterrupted one ends
        ref = os.path.join(tmpdir(self), "ref")
        r = coordinator(cmd[1:cmd.index("--output")] + ["--output", ref] + cmd[cmd.index("--output") + 2:])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        a, b = load(out), load(ref)
        self.assertGreater(a["iterations"], 400)
        self.assertEqual(len(a["history"].pop("checkpoint_iterations")), 1)
        b["history"].pop("checkpoint_iterations")
        self.assertEqual(differences(a, b), [])

    def test_sigint(self):
        self.interrupt(signal.SIGINT)

    def test_sigterm(self):
        self.interrupt(signal.SIGTERM)



class UnitHypercube(unittest.TestCase):
    """A class's own from_unit_hypercube reaches the importance nested sampler:
    every sample's cube prior ln pi_U is then 0 (the linear map of the bounds
    would give ln cos(dec) + ln(pi / 2) instead), and ln Z matches the truth."""

    def test_own_maps(self):
        out = os.path.join(tmpdir(self), "out")
        r = coordinator(["--model", model("sky_cube", "SkyCube"), "--output", out, "--seed", "4",
                         "--importance-nested-sampler", "--nlive", "1000", "--min-samples", "200",
                         "--no-plot"], timeout=600)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        res = load(out)
        logu = np.array(res["samples"]["logU"])
        self.assertTrue(np.all(logu == 0.0))
        self.assertLess(abs(res["run"]["delta_in_sigma"]), 4.0)

if __name__ == "__main__":
    unittest.main()
