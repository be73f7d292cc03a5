"""Decimal rounding for the simulator's readings: the same floats as ``round(x, n)``, faster.

What: :func:`decimal_rounder` returns a function equal to ``lambda x: round(x, digits)`` for
every float (same value, same sign of zero, same NaN and infinity handling), and
:func:`round_int` equals ``round(x)`` (an ``int``).

Why: a car's reading rounds about 20 values every second (temperatures to 0.1 °C, a
position to 1e-7°...). CPython's ``round(x, n)`` is correctly rounded because it goes
through a decimal string and back (``_Py_dg_dtoa`` then ``_Py_dg_strtod``), about 0.4-1 µs
on this machine, a tenth of the cost of a whole car update (BENCHMARKS.md, "Simulator").

How, and why it gives the very same floats: ``round(x, n)`` is the double nearest to
``k / 10**n``, where ``k`` is the exact value ``x * 10**n`` rounded to an integer (ties to
even). Here ``y = x * 10**n`` is computed in floating point, so it may differ from the exact
product by half a unit in its last place, at most 2**-20 while ``|y| < 1e9``; the integer
nearest to ``y`` is then the integer nearest to the exact product unless the product lies
within that error of a half-way point. So the fast path is taken only when ``y`` is more
than 1e-4 away from a half-way point (and ``|y| < 1e9``): ``k`` is the same integer, exactly
representable, and ``k / 10**n`` is one correctly rounded IEEE division of two exact
doubles, so it is the double nearest to ``k / 10**n``, as ``round`` returns. Everything else
(half-way cases, huge values, NaN, infinities) goes to ``round`` itself; a result of zero
keeps the sign of ``x``, as ``round``'s does. ``tests/sim/test_rounding.py`` compares both on
a million values, half-way cases and their neighbours included.
"""

from __future__ import annotations

from collections.abc import Callable
from math import floor

__all__ = ["decimal_rounder", "round_int"]

_FAST_LIMIT = 1e9  # |x * 10**digits| below this: the product's error is below 2**-20
_MARGIN = 0.4999  # the fast path's distance to a half-way point: |y - k| below this


def decimal_rounder(digits: int) -> Callable[[float], float]:
    """A function equal to ``round(x, digits)`` for every float ``x`` (0 <= digits <= 15)."""
    if not 0 <= digits <= 15:
        raise ValueError("digits must be between 0 and 15")
    scale = 10.0**digits  # exact for these digits

    def rounded(x: float) -> float:
        y = x * scale
        if -_FAST_LIMIT < y < _FAST_LIMIT:
            k = floor(y + 0.5)
            if -_MARGIN < y - k < _MARGIN:
                return k / scale if k else x * 0.0  # a zero keeps the sign of x, as in round
        return round(x, digits)

    rounded.__name__ = rounded.__qualname__ = f"round{digits}"
    return rounded


def round_int(x: float) -> int:
    """``round(x)``: the nearest integer, ties to even (for a float ``x``)."""
    if -_FAST_LIMIT < x < _FAST_LIMIT:
        k = floor(x + 0.5)
        if -_MARGIN < x - k < _MARGIN:
            return k
    return round(x)
