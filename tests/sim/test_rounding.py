"""The simulator's fast rounding gives exactly the floats of the built-in `round`."""

import math
import random

import pytest

from autocloud.sim.rounding import decimal_rounder, round_int

SPECIAL = (0.0, -0.0, 5e-324, -5e-324, 1e300, -1e300, math.inf, -math.inf, 0.5, -0.5, 2.5)


def _values(rng: random.Random, digits: int, count: int) -> list[float]:
    """Ordinary values, tiny and huge ones, exact half-way cases and their neighbours."""
    out: list[float] = list(SPECIAL)
    for i in range(count):
        kind = i % 5
        if kind == 0:
            out.append(rng.uniform(-300.0, 300.0))
        elif kind == 1:
            out.append(rng.uniform(-1.0, 1.0) * 10 ** rng.uniform(-12.0, 12.0))
        elif kind == 2:  # half-way in decimal (as written; binary makes most of them near)
            out.append((rng.randrange(-(10**7), 10**7) + 0.5) / 10**digits)
        elif kind == 3:  # the doubles either side of such a value
            half = (rng.randrange(-(10**5), 10**5) + 0.5) / 10**digits
            out.append(math.nextafter(half, rng.choice((math.inf, -math.inf))))
        else:  # positions: latitude/longitude with many digits
            out.append(rng.uniform(-180.0, 180.0))
    return out


@pytest.mark.parametrize("digits", [0, 1, 2, 3, 7])
def test_decimal_rounder_equals_round(digits: int) -> None:
    fast = decimal_rounder(digits)
    rng = random.Random(digits)
    for x in _values(rng, digits, 200_000):
        want = round(x, digits)
        got = fast(x)
        assert repr(got) == repr(want), (x, digits)  # repr: the sign of zero counts too
    assert math.isnan(fast(math.nan))


def test_round_int_equals_round() -> None:
    rng = random.Random(3)
    for x in _values(rng, 0, 200_000):
        if math.isinf(x):
            with pytest.raises(OverflowError):
                round_int(x)
            continue
        got = round_int(x)
        assert type(got) is int
        assert got == round(x), x
    with pytest.raises(ValueError):
        round_int(math.nan)


def test_digits_out_of_range_are_refused() -> None:
    with pytest.raises(ValueError):
        decimal_rounder(16)
