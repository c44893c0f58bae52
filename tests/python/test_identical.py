"""The Python S1 and S5 models give the result.json of the C plugins, bit for
bit, with the same seed: in-process, with a local pool and with a remote
worker."""
import os
import subprocess
import sys
import unittest

from pyt_util import (coordinator, differences, load, model, plugin, spawn_worker, stop, tmpdir,
                      wait_for_line, COORDINATOR)

COMMON = ["--seed", "7", "--nlive", "300", "--no-result-hdf5"]


class Identical(unittest.TestCase):
    def run_pair(self, py_model, c_plugin, args, extra_py=(), extra_c=()):
        d = tmpdir(self)
        out_py, out_c = os.path.join(d, "py"), os.path.join(d, "c")
        r = coordinator(["--model", py_model, "--model-args", args, "--output", out_py] + COMMON
                        + list(extra_py))
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        r = coordinator(["--model", c_plugin, "--model-args", args, "--output", out_c] + COMMON
                        + list(extra_c))
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        a, b = load(out_py), load(out_c)
        self.assertEqual(differences(a, b), [])
        self.assertGreater(a["iterations"], 100)
        self.assertEqual(a["log_evidence"], b["log_evidence"])
        return a

    def test_comparison_sees_another_seed(self):
        d = tmpdir(self)
        for seed in ("7", "8"):
            r = coordinator(["--model", plugin("gaussian"), "--output", os.path.join(d, seed),
                             "--seed", seed, "--nlive", "300", "--no-result-hdf5"])
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertNotEqual(differences(load(os.path.join(d, "7")), load(os.path.join(d, "8"))), [])

    def test_s1_in_process(self):
        a = self.run_pair(model("gaussian", "Gaussian"), plugin("gaussian"), "dim=2")
        self.assertEqual(a["run"]["model_name"], "Gaussian")
        self.assertTrue(a["run"]["model_path"].endswith("gaussian.py:Gaussian"))

    def test_s1_d4_pool(self):
        a = self.run_pair(model("gaussian"), plugin("gaussian"), "dim=4", ["--n-pool", "3"])
        self.assertEqual(a["farm"]["local_workers"], 3)
        self.assertGreater(a["farm"]["chunks"], 0)

    def test_s5_in_process(self):
        self.run_pair(model("rosenbrock", "Rosenbrock"), plugin("rosenbrock"), "dim=2")

    def test_s5_pool(self):
        self.run_pair(model("rosenbrock", "Rosenbrock"), plugin("rosenbrock"), "dim=2",
                      ["--n-pool", "3"])

    def test_s1_remote_worker(self):
        d = tmpdir(self)
        out_py, out_c = os.path.join(d, "py"), os.path.join(d, "c")
        proc = subprocess.Popen([COORDINATOR, "--model", model("gaussian", "Gaussian"),
                                 "--model-args", "dim=2", "--output", out_py,
                                 "--bind", "tcp://127.0.0.1:*"] + COMMON,
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        self.addCleanup(stop, proc)
        m = wait_for_line(os.path.join(out_py, "nessai.log"), r"--connect (tcp://[0-9.]+:[0-9]+)",
                          proc=proc)
        self.assertIsNotNone(m, "the coordinator did not open its farm")
        wlog = os.path.join(d, "worker.log")
        worker = spawn_worker(m.group(1), log=wlog)
        self.addCleanup(stop, worker)
        self.assertEqual(proc.wait(timeout=300), 0)
        self.assertEqual(worker.wait(timeout=30), 0)
        with open(wlog) as f:
            self.assertIn("loaded model Gaussian", f.read())
        r = coordinator(["--model", plugin("gaussian"), "--model-args", "dim=2", "--output", out_c]
                        + COMMON)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        a, b = load(out_py), load(out_c)
        self.assertEqual(differences(a, b), [])
        self.assertEqual(a["farm"]["workers_seen"], 1)


if __name__ == "__main__":
    unittest.main(argv=sys.argv[:1] + sys.argv[1:])
