"""A Python model that fails says so in one line, on the path a failing C
plugin takes: exception type and message, the innermost frame's file:line
and the point; load errors are exit 2 with one line."""
import os
import re
import sys
import unittest

import math

from pyt_util import coordinator, differences, load, model, tmpdir

RUN = ["--seed", "3", "--nlive", "100", "--no-result-hdf5"]


class Errors(unittest.TestCase):
    def run_model(self, spec, *args):
        out = os.path.join(tmpdir(self), "out")
        r = coordinator(["--model", spec, "--output", out] + RUN + list(args), timeout=120)
        log = ""
        if os.path.exists(os.path.join(out, "nessai.log")):
            with open(os.path.join(out, "nessai.log")) as f:
                log = f.read()
        return r, log

    def assert_usage(self, r, *needles):
        self.assertEqual(r.returncode, 2, r.stderr)
        lines = r.stderr.strip().splitlines()
        self.assertEqual(len(lines), 1, r.stderr)
        for n in needles:
            self.assertIn(n, lines[0])

    def test_syntax_error(self):
        r, _ = self.run_model(model("syntax_error", "Broken"))
        self.assert_usage(r, "SyntaxError", "syntax_error.py:7")

    def test_missing_class(self):
        r, _ = self.run_model(model("gaussian", "Gauss"))
        self.assert_usage(r, "defines no class Gauss")

    def test_ambiguous_class(self):
        r, _ = self.run_model(model("two_classes"))
        self.assert_usage(r, "defines 2 model classes", "two_classes.py:Class")
        r, _ = self.run_model(model("two_classes", "B"), "--max-iteration", "5")
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])

    def test_missing_file(self):
        r, _ = self.run_model(model("no_such_file", "X"))
        self.assert_usage(r, "model file", "not found")

    def test_bad_model_args(self):
        r, _ = self.run_model(model("gaussian"), "--model-args", "dim=3, 4")
        self.assert_usage(r, "key=value")
        r, _ = self.run_model(model("gaussian"), "--model-args", "dimension=3")
        self.assert_usage(r, "TypeError", "dimension")

    def check_raise(self, r, log, vectorised):
        self.assertEqual(r.returncode, 1, r.stderr[-3000:])
        with open(model("raises")) as f:
            line = [i for i, t in enumerate(f, 1) if "raise ZeroDivisionError" in t][0]
        self.assertIn("ZeroDivisionError: x0 above 2 at %s:%d" % (model("raises"), line), log)
        m = re.search(r"\(point x0=([-0-9.e]+), x1=([-0-9.e]+)\)", log)
        self.assertIsNotNone(m, log[-3000:])
        self.assertGreater(float(m.group(1)), 2.0)
        self.assertIn("model 'Raises': log_likelihood failed", log)

    def test_raises_vectorised(self):
        r, log = self.run_model(model("raises", "Raises"))
        self.check_raise(r, log, True)

    def test_raises_point_by_point(self):
        r, log = self.run_model(model("raises", "Raises"), "--model-args", "vectorised=False")
        self.check_raise(r, log, False)

    def test_raises_in_pool(self):
        r, log = self.run_model(model("raises", "Raises"), "--n-pool", "2", "--max-retries", "0")
        self.check_raise(r, log, True)

    def test_prior_raises(self):
        r, log = self.run_model(model("raises", "PriorRaises"))
        self.assertEqual(r.returncode, 1, r.stderr[-3000:])
        self.assertIn("model 'PriorRaises': log_prior failed with code 1: log_prior: ValueError: "
                      "x1 below -4 at %s:" % model("raises"), log)
        m = re.search(r"log_prior: .*\(point x0=([-0-9.e]+), x1=([-0-9.e]+)\)", log)
        self.assertIsNotNone(m, log[-3000:])
        self.assertLess(float(m.group(2)), -4.0)

    def test_no_python_plugin(self):
        env = dict(os.environ, NESSAI_PYTHON_PLUGIN="/nonexistent/libnessai_python.so")
        out = os.path.join(tmpdir(self), "out")
        r = coordinator(["--model", model("gaussian"), "--output", out], env=env)
        self.assert_usage(r, "the Python plugin /nonexistent/libnessai_python.so was not found")

    def test_model_output_reaches_the_terminal(self):
        # stdout is a pipe here: without unbuffered streams the lines would stay
        # in Python's buffers, which nothing flushes at exit
        env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
        r = coordinator(["--model", model("printing", "Printing"), "--max-iteration", "10",
                         "--output", os.path.join(tmpdir(self), "out")] + RUN, env=env)
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertIn("hello from __init__", r.stdout)
        self.assertIn("hello from log_likelihood", r.stderr)

    def test_custom_new_point(self):
        results = []
        for extra in ([], ["--n-pool", "2"]):
            out = os.path.join(tmpdir(self), "out")
            r = coordinator(["--model", model("custom_new_point", "CustomNewPoint"), "--output", out]
                            + RUN + ["--maximum-uninformed", "inf"] + extra)
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
            results.append(load(out))
        self.assertEqual(differences(*results), [])
        self.assertLess(abs(results[0]["log_evidence"] - (math.log(2 * math.pi) - 2 * math.log(20))), 0.5)
        # the draws were the model's: with the default new_point the run is another
        out = os.path.join(tmpdir(self), "out")
        r = coordinator(["--model", model("custom_new_point", "DefaultNewPoint"), "--output", out]
                        + RUN + ["--maximum-uninformed", "inf"])
        self.assertEqual(r.returncode, 0, r.stderr[-2000:])
        self.assertNotEqual(differences(results[0], load(out)), [])

    def test_new_point_errors(self):
        r, log = self.run_model(model("custom_new_point", "CustomNewPoint"), "--model-args",
                                "broken='shape'")
        self.assertNotEqual(r.returncode, 0)
        self.assertIn("returned an array of shape (", r.stderr + log)
        r, _ = self.run_model(model("custom_new_point", "OnlyOne"))
        self.assert_usage(r, "defines only one of new_point and new_point_log_prob")

    def check_result_error(self, kind, text):
        r, log = self.run_model(model("wrong_result", "WrongResult"), "--model-args", "kind='%s'" % kind)
        self.assertEqual(r.returncode, 1, r.stderr[-3000:])
        self.assertIn(text, log)

    def test_wrong_shape(self):
        self.check_result_error("shape", "log_likelihood returned an array of dtype float64 and shape "
                                "(1, 1); it must return a float64 array of shape (1,)")

    def test_wrong_dtype(self):
        self.check_result_error("dtype", "returned an array of dtype float32 and shape (1,); it must "
                                "return a float64 array of shape (1,)")

    def test_list(self):
        self.check_result_error("list", "log_likelihood returned list; it must return a float64 array")

    def test_not_a_number(self):
        self.check_result_error("scalar", "log_likelihood returned str 'not a number'; it must return a "
                                "float")

    def test_not_deterministic(self):
        r, log = self.run_model(model("random_model", "Random"))
        self.assertEqual(r.returncode, 1)
        self.assertIn("the log-likelihood is not deterministic", log)



class Declarations(unittest.TestCase):
    """periodic and reparameterisations on the class reach the flow proposal
    (its log line names the map each parameter got); wrong ones are exit 2."""

    def run_ring(self, declare, *args):
        out = os.path.join(tmpdir(self), "out")
        r = coordinator(["--model", model("periodic", "Ring"), "--model-args", "declare='%s'" % declare,
                         "--output", out, "--seed", "3", "--nlive", "200", "--no-plot",
                         "--max-iteration", "400"] + list(args), timeout=120)
        log = ""
        if os.path.exists(os.path.join(out, "nessai.log")):
            with open(os.path.join(out, "nessai.log")) as f:
                log = f.read()
        return r, log

    def test_periodic_forms(self):
        for declare, want in (("dict", "phase=periodic"), ("list", "phase=periodic"),
                              ("period", "phase=periodic"), ("prefer", "phase=angle")):
            r, log = self.run_ring(declare)
            self.assertEqual(r.returncode, 0, r.stderr[-2000:])
            self.assertRegex(log, r"reparameterisations %s a=zscore" % want, declare)

    def test_without_declarations_no_angle_map(self):
        r, log = self.run_ring("dict", "--reparameterisations", "phase:zscore")
        self.assertNotEqual(r.returncode, 0)  # a periodic phase needs a map that wraps
        self.assertIn("periodic", r.stderr)

    def test_bad_declarations(self):
        for declare, needle in (("unknown", "Ring.periodic names phse, which is not in names"),
                                ("badtype", "Ring.periodic must be a dict"),
                                ("badperiod", "Ring.periodic['phase'] must be a positive period"),
                                ("badreparam", "Ring.reparameterisations must be a dict")):
            r, _ = self.run_ring(declare)
            self.assertEqual(r.returncode, 2, r.stderr)
            lines = r.stderr.strip().splitlines()
            self.assertEqual(len(lines), 1, r.stderr)
            self.assertIn(needle, lines[0])

if __name__ == "__main__":
    unittest.main()
