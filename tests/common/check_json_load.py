#!/usr/bin/python3
"""check_json_load.py TABLE JSON: the array test_json writes (JSON) holds,
read with Python's json module, every double of TABLE (json_numbers.txt)
bit for bit and in order. Exit 0 if so, 1 if not, 2 if a file is missing."""
import json
import math
import struct
import sys


def main():
    if len(sys.argv) != 3:
        print(__doc__, file=sys.stderr)
        return 2
    try:
        with open(sys.argv[1]) as f:
            want = [int(line.split()[0], 16) for line in f]
        with open(sys.argv[2]) as f:
            got = json.load(f)
    except (OSError, ValueError) as e:
        print("cannot read the files: %s" % e, file=sys.stderr)
        return 2
    if len(got) != len(want):
        print("%d numbers in %s, %d in the table" % (len(got), sys.argv[2], len(want)))
        return 1
    bad = 0
    for i, (w, g) in enumerate(zip(want, got)):
        v = float(g)
        same = struct.unpack("<Q", struct.pack("<d", v))[0] == w
        if not same and not (math.isnan(v) and (w >> 52) & 0x7FF == 0x7FF and w & ((1 << 52) - 1)):
            if bad < 10:
                print("entry %d: Python reads %r, the table has %016x" % (i, g, w))
            bad += 1
    if bad:
        print("%d of %d numbers do not read back in Python as the same double" % (bad, len(want)))
        return 1
    print("%d numbers read back in Python bit for bit" % len(want))
    return 0


if __name__ == "__main__":
    sys.exit(main())
