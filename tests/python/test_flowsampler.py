"""FlowSampler runs nessai-coordinator on a model instance: from a script's
__main__, with a local pool, with a farm for remote workers; it refuses
options the coordinator does not have."""
import json
import os
import subprocess
import sys
import threading
import unittest

import numpy as np

from pyt_util import (MODELS, WORKER, coordinator, differences, load, model, spawn_worker, stop,
                      tmpdir, wait_for_line)

from nessai_farm import FarmPool, FlowSampler


class FlowSamplerTest(unittest.TestCase):
    def test_script_main(self):
        d = tmpdir(self)
        out = os.path.join(d, "fs")
        r = subprocess.run([sys.executable, model("fs_script"), out], capture_output=True, text=True,
                           timeout=300)
        self.assertEqual(r.returncode, 0, r.stderr[-3000:])
        self.assertIn("Results saved to", r.stderr)  # the log was streamed
        summary = json.loads(r.stdout.strip().splitlines()[-1])
        self.assertEqual(summary["spec"], model("fs_script", "Line"))
        self.assertEqual(summary["args"], "n_data=30")
        self.assertEqual(summary["names"], ["m", "c", "logP", "logL", "it"])
        self.assertEqual(summary["it"], "<i4")
        self.assertGreater(summary["n"], 100)
        self.assertLess(abs(summary["m"] - 1.5), 0.8)
        res = load(out)
        self.assertEqual(res["farm"]["local_workers"], 2)
        self.assertEqual(res["log_evidence"], summary["log_evidence"])
        # the same run straight from the coordinator
        ref = os.path.join(d, "ref")
        r = coordinator(["--model", model("fs_script", "Line"), "--model-args", "n_data=30",
                         "--output", ref, "--seed", "1", "--nlive", "200", "--no-result-hdf5"])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertEqual(differences(res, load(ref)), [])

    def test_posterior_array(self):
        sys.path.insert(0, MODELS)
        from gaussian import Gaussian
        out = os.path.join(tmpdir(self), "out")
        fs = FlowSampler(Gaussian(dim=3), output=out, n_pool=2, seed=4, nlive=150, result_hdf5=False)
        self.assertIn("dim=3", fs.model_args)
        result, post = fs.run()
        self.assertEqual(post.dtype.names, ("x0", "x1", "x2", "logP", "logL", "it"))
        self.assertEqual(len(post), len(result["posterior_samples"]["logL"]))
        np.testing.assert_array_equal(post["x1"], result["posterior_samples"]["x1"])
        self.assertEqual(fs.log_evidence, result["log_evidence"])

    def test_importance_nested_sampler(self):
        """importance_nested_sampler=True (nessai's keyword) runs the
        importance sampler, with its own keywords (reset_flow) passed on."""
        sys.path.insert(0, MODELS)
        from gaussian import Gaussian
        out = os.path.join(tmpdir(self), "ins")
        fs = FlowSampler(Gaussian(dim=2), output=out, n_pool=2, seed=5, nlive=1000,
                         importance_nested_sampler=True, reset_flow=2, plot=False,
                         result_hdf5=False)
        self.assertIn("--importance-nested-sampler", fs.args)
        result, post = fs.run()
        self.assertEqual(result["sampler"], "importance_nested_sampler")
        self.assertEqual(post.dtype.names, ("x0", "x1", "logP", "logL", "it", "logW", "logQ", "logU"))
        self.assertEqual(post.dtype["it"], np.dtype("<i4"))
        self.assertEqual(len(post), len(result["posterior_samples"]["logL"]))
        self.assertIsNone(fs.nested_samples)
        self.assertEqual(len(fs.samples), len(fs.log_posterior_weights))
        np.testing.assert_array_equal(fs.samples["logW"], result["samples"]["logW"])
        # the model's truth, -2 ln 20, within 4 sigma-hat
        truth = -2.0 * np.log(20.0)
        self.assertLess(abs(fs.log_evidence - truth), 4.0 * fs.log_evidence_error)
        self.assertLess(abs(np.mean(post["x0"])), 0.1)

    def test_farm_pool(self):
        sys.path.insert(0, MODELS)
        from gaussian import Gaussian
        d = tmpdir(self)
        out = os.path.join(d, "out")
        fs = FlowSampler(Gaussian(dim=2), output=out, pool=FarmPool(bind="tcp://127.0.0.1:*"), seed=2,
                         nlive=150, result_hdf5=False)
        self.assertIn("--bind", fs.command)
        box = {}
        t = threading.Thread(target=lambda: box.update(r=fs.run()))
        t.start()
        m = wait_for_line(os.path.join(out, "nessai.log"), r"--connect (tcp://[0-9.]+:[0-9]+)")
        self.assertIsNotNone(m)
        w = spawn_worker(m.group(1))
        self.addCleanup(stop, w)
        t.join(300)
        self.assertIn("r", box)
        self.assertEqual(box["r"][0]["farm"]["workers_seen"], 1)
        self.assertEqual(w.wait(timeout=30), 0)

    def test_refused(self):
        sys.path.insert(0, MODELS)
        from gaussian import Gaussian
        g = Gaussian()
        with self.assertRaisesRegex(ValueError, "no options flow_class, plot_pool"):
            FlowSampler(g, output="x", flow_class="RealNVP", plot_pool=True)
        with self.assertRaisesRegex(ValueError, "plot takes True or False"):
            FlowSampler(g, output="x", plot="yes")
        self.assertIn("--no-plot", FlowSampler(g, output="x", plot=False).args)
        self.assertIn("--plot", FlowSampler(g, output="x", plot=True).args)
        with self.assertRaisesRegex(ValueError, "FarmPool"):
            FlowSampler(g, output="x", pool=object())
        with self.assertRaisesRegex(ValueError, "must be Python literals"):
            FlowSampler(g, output="x", model_args={"f": object()})
        with self.assertRaisesRegex(ValueError, "positional"):
            FlowSampler(Gaussian(2), output="x")

    def test_class_without_recorded_args(self):
        sys.path.insert(0, MODELS)
        from plain_model import Plain
        out = os.path.join(tmpdir(self), "o")
        with self.assertRaisesRegex(ValueError, r"Plain\(\) is not the model given"):
            FlowSampler(Plain(dim=3), output=out)
        self.assertEqual(FlowSampler(Plain(), output=out).model_args, "")
        fs = FlowSampler(Plain(dim=3), output=out, model_args={"dim": 3}, seed=1, nlive=100,
                         max_iteration=50)
        self.assertEqual(fs.model_args, "dim=3")
        result, post = fs.run()
        self.assertEqual(post.dtype.names[:3], ("y0", "y1", "y2"))

    def test_failed_run(self):
        sys.path.insert(0, MODELS)
        from raises import Raises
        fs = FlowSampler(Raises(), output=os.path.join(tmpdir(self), "o"), seed=1, nlive=50)
        with self.assertRaisesRegex(RuntimeError, "exited with code 1"):
            fs.run()


if __name__ == "__main__":
    unittest.main()
