"""The trip follower's braking look-ahead: the fast path finds the very speed of a full scan."""

import math
import random
from dataclasses import dataclass

from autocloud.sim.driving import DECEL_MS2, TripFollower


@dataclass
class Piece:
    lat1: float
    lon1: float
    lat2: float
    lon2: float
    length_m: float
    speed_limit_kmh: float


def _route(rng: random.Random, pieces: int) -> list[Piece]:
    """A zigzag of short and long pieces with changing limits, sharp turns and zero lengths."""
    out: list[Piece] = []
    lat, lon = 49.4, 8.7
    for _ in range(pieces):
        heading = rng.choice((0.0, 90.0, 180.0, 270.0, rng.uniform(0.0, 360.0)))
        length = rng.choice((0.0, rng.uniform(0.5, 5.0), rng.uniform(5.0, 120.0), 400.0))
        dlat = length / 111_000 * math.cos(math.radians(heading))
        dlon = length / 72_000 * math.sin(math.radians(heading))
        limit = rng.choice((10.0, 30.0, 50.0, 70.0, 100.0, 130.0))
        out.append(Piece(lat, lon, lat + dlat, lon + dlon, length, limit))
        lat, lon = lat + dlat, lon + dlon
    return out


def _full_scan(f: TripFollower) -> float:
    """`_target_ms` as first written: every term of the window, every second."""
    x = f.travelled_m
    legs = f._legs
    leg = legs[f._index]
    k = 2 * DECEL_MS2
    lowest = math.inf
    for n in legs[f._index : f._index + 8]:
        if n is not leg:
            lowest = min(lowest, n.cap_ms**2 + k * max(n.start_m - x, 0.0))
        lowest = min(lowest, n.exit_ms**2 + k * max(n.start_m + n.length_m - x, 0.0))
    return min(leg.cap_ms, math.sqrt(lowest))


def test_the_look_ahead_equals_a_full_scan_to_the_bit() -> None:
    rng = random.Random(11)
    steps = 0
    for _ in range(150):
        f = TripFollower(_route(rng, rng.randrange(1, 60)), rng.uniform(0.85, 1.0))
        while not f.done and steps < 200_000:
            if f._legs:
                assert f._target_ms() == _full_scan(f)
            f.step(rng.choice((1.0, 1.0, 1.0, 0.5, 2.0)))
            steps += 1
    assert steps > 5_000
