# Prepended to each python:3 action of /whisk.system/utils (wispd seeds the
# python versions only where no nodejs kind can run). OpenWhisk ships these
# actions in JavaScript, and their answers follow JavaScript's conversions:
# the helpers below give the same strings, truthiness and indexes, so an
# answer does not depend on which language ran it.
import math as _math
from decimal import Decimal as _Decimal


def js_truthy(v):
    """JavaScript's ToBoolean for a JSON value: [] and {} are true."""
    if v is None or v is False:
        return False
    if isinstance(v, (int, float)) and not isinstance(v, bool):
        return v != 0 and not (isinstance(v, float) and _math.isnan(v))
    if isinstance(v, str):
        return v != ""
    return True


def _js_number(x):
    """Number.prototype.toString for a JSON number (ECMA-262 Number::toString)."""
    if isinstance(x, int) and abs(x) <= 2 ** 53:
        return str(x)
    f = float(x)
    if _math.isnan(f):
        return "NaN"
    if _math.isinf(f):
        return "Infinity" if f > 0 else "-Infinity"
    if f == 0:
        return "0"
    sign = "-" if f < 0 else ""
    # the shortest digits that read back as f: repr gives them
    digits, exp = _Decimal(repr(abs(f))).as_tuple()[1:]
    s = "".join(map(str, digits)).rstrip("0")
    exp += len(digits) - len(s)
    k = len(s)
    n = exp + k  # f = 0.s * 10^n
    if k <= n <= 21:
        return sign + s + "0" * (n - k)
    if 0 < n <= 21:
        return sign + s[:n] + "." + s[n:]
    if -6 < n <= 0:
        return sign + "0." + "0" * -n + s
    e = n - 1
    mant = s if k == 1 else s[0] + "." + s[1:]
    return sign + mant + "e" + ("+" if e >= 0 else "-") + str(abs(e))


def js_string(v):
    """JavaScript's ToString for a JSON value."""
    if v is None:
        return "null"
    if v is True:
        return "true"
    if v is False:
        return "false"
    if isinstance(v, (int, float)):
        return _js_number(v)
    if isinstance(v, str):
        return v
    if isinstance(v, list):
        return js_join(v, ",")
    return "[object Object]"


def js_join(items, sep):
    """Array.prototype.join: null items are empty strings."""
    return sep.join("" if v is None else js_string(v) for v in items)


def js_integer(v):
    """ToIntegerOrInfinity(ToNumber(v)) for a JSON value (NaN is 0)."""
    if v is True:
        return 1
    if v is None or v is False:
        return 0
    if isinstance(v, list):
        v = js_join(v, ",")
    elif isinstance(v, dict):
        return 0
    if isinstance(v, str):
        t = v.strip()
        if t == "":
            return 0
        try:
            v = int(t, 0) if t[:2].lower() in ("0x", "0o", "0b") else float(t)
        except ValueError:
            return 0
    if isinstance(v, float):
        if _math.isnan(v):
            return 0
        if _math.isinf(v):
            return v
        return int(v)
    return v


def js_sort_key(v):
    """Array.prototype.sort's default order: by ToString, in UTF-16 code units."""
    return js_string(v).encode("utf-16-be", "surrogatepass")


def js_need(v, what, method):
    """The TypeError JavaScript raises when v has no such method."""
    if not isinstance(v, what):
        raise TypeError("%s is not a function" % method)
    return v
