"""S1 (d = 2) taking 2 ms per call: long enough to be signalled inside Python."""
import time

from gaussian import Gaussian


class Slow(Gaussian):
    def log_likelihood(self, x):
        time.sleep(0.002)
        return super().log_likelihood(x)
