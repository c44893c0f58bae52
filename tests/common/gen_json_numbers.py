#!/usr/bin/python3
"""The table of tests/common/test_json.c: doubles and the JSON text Python
writes for them, one per line as "<the double's 64 bits in hex> <text>".

The text is json.dumps(value) (Python's repr: the fewest digits that read
back as the same double, 1e+300, 1e-05, -0.0, NaN, Infinity), except that
whole numbers below 2^53 in magnitude are written as integers, as
ns_json_print writes them (Python writes ints so). Edge cases first, then
random doubles from a fixed seed: any bit pattern, log-uniform magnitudes,
subnormals, and short decimals. Run with Debian's /usr/bin/python3;
check_generated.py (ctest common/generated_tables) compares its output with
json_numbers.txt.
"""
import json
import math
import random
import struct
import sys

EDGES = [
    0.0, -0.0, 1.0, -1.0, 0.5, 1.5, 3.0, -42.0, 100.0, 0.1, 0.2, 0.3, 0.1 + 0.2, 1 / 3, 2 / 3,
    1e-4, 1e-5, 0.0001234, 1.5e-5, 9.999e-5, 4.35, 123456.789, 1e15, 1e15 + 0.5, 1e16, 1e17,
    1.2345678901234567e16, 1e21, 1e22, 1e23, 9.999999999999999e22, 1e100, 1e300, 1e-300,
    2.0 ** 52 + 0.5, 2.0 ** 53 - 1, 2.0 ** 53, 2.0 ** 53 + 2, 2.0 ** 54, 2.0 ** 63, 2.0 ** 64,
    -2.0 ** 53, 1.7976931348623157e308, -1.7976931348623157e308, 2.2250738585072014e-308,
    2.225073858507201e-308, 5e-324, -5e-324, 1e-323, 4.9406564584124654e-322, 1e-310,
    math.pi, math.e, -math.pi * 1e-7, 1.0 + 2.0 ** -52, 1.0 - 2.0 ** -53, 0.9999999999999999,
    math.inf, -math.inf, math.nan, 6.02214076e23, 1.602176634e-19, 299792458.5,
]


def text(v):
    if math.isfinite(v) and v == int(v) and abs(v) < 2.0 ** 53 and not (v == 0 and math.copysign(1, v) < 0):
        return str(int(v))
    return json.dumps(v)


def bits(v):
    return struct.unpack("<Q", struct.pack("<d", v))[0]


def main():
    rng = random.Random(20260101)
    values = list(EDGES)
    while len(values) < len(EDGES) + 1500:  # any finite bit pattern
        v = struct.unpack("<d", struct.pack("<Q", rng.getrandbits(64)))[0]
        if math.isfinite(v):
            values.append(v)
    for _ in range(1500):  # magnitudes 1e-30 to 1e30, both signs
        values.append(rng.choice((-1, 1)) * 10.0 ** rng.uniform(-30, 30))
    for _ in range(300):  # subnormals
        values.append(struct.unpack("<d", struct.pack("<Q", rng.getrandbits(52)))[0])
    for _ in range(700):  # short decimals, as a user writes them
        values.append(round(rng.uniform(-1000, 1000), rng.randint(0, 8)) * 10.0 ** rng.randint(-12, 12))
    out = sys.stdout
    for v in values:
        out.write("%016x %s\n" % (bits(v), text(v)))


if __name__ == "__main__":
    main()
