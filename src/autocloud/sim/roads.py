"""The simulator's road network: OSRM graphs built from OpenStreetMap files, and routing on them.

Vehicles drive real roads: `build_graph` turns an OpenStreetMap file (`.osm.pbf` extract or
`.osm` XML, such as the generated town) into an OSRM multi-level-Dijkstra graph once and
caches it, and `Router` answers routes, snapping and map matching in-process through
`osrm-bindings` (no osrm-routed server, no network).

Our API speaks (lat, lon) everywhere; OSRM speaks (lon, lat). Only this module converts.
"""

import hashlib
import importlib.metadata
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import osrm  # type: ignore[import-untyped]

from autocloud.domain.errors import ConfigurationError, InvalidInput

LatLon = tuple[float, float]

PROFILE = Path(osrm.__file__).parent / "share" / "profiles" / "car.lua"
MARKER = "graph.complete"  # written last: a directory without it is an interrupted build
_STALE_BUILD_S = 3600.0  # a work directory this old belongs to a build that was killed
_OSM_SUFFIXES = (".osm.pbf", ".osm.bz2", ".osm", ".pbf")
# car.lua sets a tagged way's routing speed to maxspeed * speed_reduction (0.8), and uses a
# per-highway default speed (residential 25, primary 65 km/h, ...) where maxspeed is missing.
_SPEED_REDUCTION = 0.8
# OSRM keeps segment durations in tenths of a second, so a segment's duration is only known
# to within this much; the speed of a short segment is correspondingly uncertain. The first
# and last pieces are a fraction of a stored segment, scaled after rounding: twice as loose.
_DURATION_SLACK_S = 0.06
_END_DURATION_SLACK_S = 0.11


def graph_dir(osm_path: Path, cache_dir: Path) -> Path:
    """The cache directory for `osm_path`: `<stem>-<hash of file, profile, OSRM version>`."""
    name = osm_path.name
    stem = next((name[: -len(s)] for s in _OSM_SUFFIXES if name.endswith(s)), None)
    if not stem:
        raise ConfigurationError(
            f"{osm_path}: not an OpenStreetMap file (expected one of {', '.join(_OSM_SUFFIXES)})"
        )
    digest = hashlib.sha256()
    try:
        with osm_path.open("rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError as e:
        raise ConfigurationError(f"cannot read map {osm_path}: {e.strerror or e}") from e
    digest.update(PROFILE.read_bytes())
    digest.update(importlib.metadata.version("osrm-bindings").encode())
    return cache_dir / f"{stem}-{digest.hexdigest()[:12]}"


def build_graph(
    osm_path: Path, cache_dir: Path, *, progress: Callable[[str], None] | None = None
) -> Path:
    """Build (once) the OSRM MLD graph of `osm_path` with car.lua; return its `.osrm` base path.

    The graph is built in a temporary directory next to the cache entry and renamed into place
    after the marker file is written, so an interrupted build never looks complete and two
    processes building the same map at once both end with a valid graph.
    """
    final = graph_dir(osm_path, cache_dir)
    base_name = final.name.rsplit("-", 1)[0] + ".osrm"
    if (final / MARKER).is_file():
        return final / base_name
    say = progress or (lambda _msg: None)
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        for stale in cache_dir.glob(f".{final.name}.*"):  # builds killed before cleaning up
            if time.time() - stale.stat().st_mtime > _STALE_BUILD_S:
                shutil.rmtree(stale, ignore_errors=True)
        work = Path(tempfile.mkdtemp(prefix=f".{final.name}.", dir=cache_dir)).resolve()
    except OSError as e:
        raise ConfigurationError(f"cannot use {cache_dir} as the map cache: {e}") from e
    try:
        base = work / base_name
        timings: dict[str, float] = {}
        threads = ["-t", str(os.cpu_count() or 1)]
        source = str(osm_path.resolve())
        steps: list[tuple[str, list[str]]] = [
            ("extract", ["-p", str(PROFILE), *threads, source, "-o", str(base)]),
            ("partition", [*threads, str(base)]),
            ("customize", [*threads, str(base)]),
        ]
        for command, args in steps:
            say(f"OSRM {command}: {osm_path.name}")
            timings[command] = round(_run_osrm(command, args, osm_path, work), 3)
            say(f"OSRM {command}: done in {timings[command]:.1f} s")
        info = {"source": source, "profile": str(PROFILE), "seconds": timings}
        (work / MARKER).write_text(json.dumps(info, indent=2) + "\n")
        if final.exists() and not (final / MARKER).is_file():
            shutil.rmtree(final)  # left by an interrupted build of an older version
        try:
            work.rename(final)
        except OSError as e:
            if not (final / MARKER).is_file():  # not simply another process winning the race
                raise ConfigurationError(f"cannot store the graph in {final}: {e}") from e
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return final / base_name


def _run_osrm(command: str, args: list[str], osm_path: Path, cwd: Path) -> float:
    """Run `python -m osrm <command> <args>`; return its wall time; raise with OSRM's words."""
    started = time.perf_counter()
    proc = subprocess.run(
        [sys.executable, "-m", "osrm", command, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        check=False,
    )
    if proc.returncode != 0:
        tail = "\n".join((proc.stderr.strip() or proc.stdout.strip()).splitlines()[-12:])
        raise ConfigurationError(
            f"OSRM {command} failed for map {osm_path} (exit code {proc.returncode}):\n{tail}"
        )
    return time.perf_counter() - started


@dataclass(slots=True)
class Road:
    """One straight piece of a route, from (lat1, lon1) to (lat2, lon2).

    `speed_kmh` is the speed OSRM plans with on this piece. `speed_limit_kmh` is derived
    from it: car.lua plans tagged roads at 0.8 x maxspeed, so dividing by 0.8 and rounding
    to 5 km/h recovers the signed limit exactly where `maxspeed` is tagged, and gives a
    plausible limit from the highway class elsewhere (residential 30, tertiary 50,
    secondary 70, primary 80). Reading the tags from the OSM file would be more literal
    but would tie the router to the source file; this keeps the graph self-sufficient.

    Treat it as read-only. It is not frozen only because a route has hundreds of pieces and
    frozen dataclasses take several times longer to create.
    """

    lat1: float
    lon1: float
    lat2: float
    lon2: float
    length_m: float
    speed_limit_kmh: float
    name: str
    speed_kmh: float


@dataclass(frozen=True, slots=True)
class Route:
    """A drivable path from OSRM: totals as OSRM reports them, and the path as `Road` pieces.

    `duration_s` includes OSRM's turn and traffic-signal penalties, so it is a little more
    than the sum of the pieces' length / speed.
    """

    distance_m: float
    duration_s: float
    segments: list[Road]

    @property
    def points(self) -> list[LatLon]:
        """The polyline: start of each piece, then the end of the last one."""
        if not self.segments:
            return []
        last = self.segments[-1]
        return [(s.lat1, s.lon1) for s in self.segments] + [(last.lat2, last.lon2)]

    def resample(self, step_m: float) -> list[LatLon]:
        """Points every `step_m` metres along the path (plus its end), as a vehicle would log."""
        if step_m <= 0:
            raise InvalidInput(f"resampling step must be positive, not {step_m}")
        out: list[LatLon] = []
        carry = 0.0  # distance along the current piece to the next sample
        for s in self.segments:
            while carry <= s.length_m:
                f = carry / s.length_m
                out.append((s.lat1 + f * (s.lat2 - s.lat1), s.lon1 + f * (s.lon2 - s.lon1)))
                carry += step_m
            carry -= s.length_m
        if self.segments and out[-1] != (end := (self.segments[-1].lat2, self.segments[-1].lon2)):
            out.append(end)
        return out


@dataclass(frozen=True, slots=True)
class MatchResult:
    """OSRM's map matching of a trace.

    `confidence` is OSRM's confidence of each sub-matching, weighted by its distance (0 when
    nothing matched); `matched` has the snapped position of each input point, or None where
    OSRM dropped the point as an outlier.
    """

    confidence: float
    matched: list[LatLon | None]
    matchings: int
    distance_m: float


class Router:
    """Routes, snapping and map matching on a graph from `build_graph`, in-process."""

    def __init__(self, osrm_base: Path) -> None:
        if not Path(f"{osrm_base}.mldgr").is_file():
            raise ConfigurationError(f"no OSRM MLD graph at {osrm_base}: run build_graph first")
        try:
            self._osrm = osrm.OSRM(
                algorithm="MLD", storage_config=str(osrm_base), use_shared_memory=False
            )
        except RuntimeError as e:  # files of another OSRM version, truncated files
            raise ConfigurationError(f"cannot load the OSRM graph {osrm_base}: {e}") from e

    def route(self, a: LatLon, b: LatLon) -> Route | None:
        """The fastest route from `a` to `b` (both (lat, lon)), or None if there is none."""
        params = osrm.RouteParameters(
            coordinates=[(a[1], a[0]), (b[1], b[0])],
            steps=True,  # only for road names: annotations do not carry them
            annotations=["distance", "duration"],
            geometries="geojson",
            overview="full",
            generate_hints=False,  # the bindings return empty hints anyway
        )
        result = self._call(self._osrm.Route, params)
        if result is None:
            return None
        r = result["routes"][0]
        leg = r["legs"][0]
        coords = [(c[1], c[0]) for c in r["geometry"]["coordinates"]]
        lengths = list(leg["annotation"]["distance"])
        durations = list(leg["annotation"]["duration"])
        names = _names(coords, leg["steps"])
        segments: list[Road] = []
        for start, end, speed in _speed_runs(lengths, durations):
            limit = _limit(speed)
            segments += [
                Road(*coords[i], *coords[i + 1], lengths[i], limit, names[i], speed)
                for i in range(start, end)
                if lengths[i] > 0
            ]
        return Route(float(r["distance"]), float(r["duration"]), segments)

    def nearest(self, point: LatLon) -> LatLon:
        """The closest point on a drivable road to `point` (lat, lon)."""
        params = osrm.NearestParameters(coordinates=[(point[1], point[0])], generate_hints=False)
        result = self._call(self._osrm.Nearest, params)
        if result is None:
            raise ConfigurationError("the road graph has no drivable road to snap to")
        lon, lat = result["waypoints"][0]["location"]
        return (lat, lon)

    def match(
        self,
        trace: Sequence[LatLon],
        timestamps: Sequence[int] | None = None,
        *,
        radius_m: float | None = None,
    ) -> MatchResult:
        """Map-match a GPS trace ((lat, lon) points, optional UNIX-second timestamps).

        `radius_m` is the GPS accuracy to assume (OSRM's default is 5 m).
        """
        if len(trace) < 2:
            raise InvalidInput(f"map matching needs at least 2 points, not {len(trace)}")
        if timestamps is not None and len(timestamps) != len(trace):
            raise InvalidInput(f"{len(timestamps)} timestamps for {len(trace)} trace points")
        kwargs: dict[str, Any] = {}
        if timestamps is not None:
            kwargs["timestamps"] = list(timestamps)
        if radius_m is not None:
            kwargs["radiuses"] = [radius_m] * len(trace)
        params = osrm.MatchParameters(
            coordinates=[(lon, lat) for lat, lon in trace],
            overview="false",
            generate_hints=False,
            **kwargs,
        )
        result = self._call(self._osrm.Match, params)
        if result is None:
            return MatchResult(0.0, [None] * len(trace), 0, 0.0)
        matchings = list(result["matchings"])
        distance = sum(float(m["distance"]) for m in matchings)
        weighted = sum(float(m["confidence"]) * float(m["distance"]) for m in matchings)
        confidence = weighted / distance if distance > 0 else 0.0
        matched: list[LatLon | None] = []
        for tp in result["tracepoints"]:
            matched.append(None if tp is None else (tp["location"][1], tp["location"][0]))
        return MatchResult(confidence, matched, len(matchings), distance)

    @staticmethod
    def _call(service: Callable[[Any], Any], params: Any) -> Any | None:
        """Call an OSRM service; None for 'no route/match/segment'.

        The bindings raise RuntimeError("<Code> - <message>") for everything but "Ok"; apart
        from the No* codes, those are rejected parameters (Invalid*, TooBig).
        """
        try:
            result = service(params)
        except RuntimeError as e:
            if str(e).startswith(("NoRoute", "NoMatch", "NoSegment", "NoTrips")):
                return None
            raise InvalidInput(f"OSRM rejected the request: {e}") from e
        return result if result["code"] == "Ok" else None


def _names(coords: list[LatLon], steps: Any) -> list[str]:
    """The road name of each piece of the overview polyline, from the route's steps.

    Each step's geometry is a run of the overview's coordinates (consecutive steps share
    their boundary point; the final "arrive" step is a single repeated point), so counting
    points labels every piece. Should that ever not add up, walk both point by point.
    """
    names: list[str] = []
    geometries = [(str(st["name"]), st["geometry"]["coordinates"]) for st in steps]
    for name, geometry in geometries[:-1]:
        names += [name] * (len(geometry) - 1)
    if len(names) == len(coords) - 1:
        return names
    names, i = [], 0  # i: index into coords of the current position
    for name, geometry in geometries:
        for lon, lat in list(geometry)[1:]:
            if i + 1 < len(coords) and (lat, lon) == coords[i + 1]:
                names.append(name)
                i += 1
    return names + [names[-1] if names else ""] * (len(coords) - 1 - len(names))


def _speed_runs(lengths: list[float], durations: list[float]) -> list[tuple[int, int, float]]:
    """Runs [start, end) of pieces that share one planned speed (km/h), from OSRM annotations.

    OSRM stores durations in 0.1 s steps: a 3 m piece planned at 40 km/h lasts 0.27 s, stored
    as 0.3 s, so its own speed reads 36 km/h. Consecutive pieces whose possible speeds (given
    that rounding) overlap are taken to share one speed, computed over all of them, so a
    road's speed is steady instead of jittering from piece to piece.
    """
    runs: list[tuple[int, int, float]] = []
    start, lo, hi = 0, 0.0, math.inf

    def close(end: int) -> None:
        total_len, total_dur = sum(lengths[start:end]), sum(durations[start:end])
        v = total_len / total_dur if total_dur > 0 else lo
        runs.append((start, end, min(max(v, lo), hi) * 3.6))

    last = len(lengths) - 1
    for i, (length, duration) in enumerate(zip(lengths, durations, strict=True)):
        slack = _END_DURATION_SLACK_S if i in (0, last) else _DURATION_SLACK_S
        seg_lo = length / (duration + slack)
        seg_hi = length / (duration - slack) if duration > slack else math.inf
        if max(lo, seg_lo) > min(hi, seg_hi):
            close(i)
            start, lo, hi = i, seg_lo, seg_hi
        else:
            lo, hi = max(lo, seg_lo), min(hi, seg_hi)
    if lengths:
        close(len(lengths))
    return runs


def _limit(speed_kmh: float) -> float:
    """The speed limit implied by a car.lua planning speed (see `Road`), in 5 km/h steps."""
    return float(min(130, max(5, 5 * round(speed_kmh / _SPEED_REDUCTION / 5))))
