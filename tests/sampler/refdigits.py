"""Decimal numbers written for the C reference tables of the sampler tests.

nstr(x) rounds a decimal.Decimal to 17 significant digits (nearest, ties
to even) and writes it without trailing zeros: positional for decimal
exponents -4 to 16, otherwise d.ddde-N. Seventeen digits pin down a double.
"""
import decimal


def nstr(x, digits=17):
    if x == 0:
        return "0.0"
    mant, exp = format(x, ".%de" % (digits - 1)).split("e")
    exp = int(exp)
    neg = mant.startswith("-")
    d = mant.lstrip("-").replace(".", "").rstrip("0") or "0"
    if -5 < exp < digits:
        if exp >= 0:
            r = d[: exp + 1].ljust(exp + 1, "0") + "." + (d[exp + 1:] or "0")
        else:
            r = "0." + "0" * (-exp - 1) + d
    else:
        r = d[0] + "." + (d[1:] or "0") + "e" + ("+" if exp > 0 else "") + str(exp)
    return ("-" if neg else "") + r


def context(prec):
    """A decimal context with prec digits, nearest-even rounding."""
    return decimal.Context(prec=prec, rounding=decimal.ROUND_HALF_EVEN)
