"""The dashboard's base map: road GeoJSON of the configured OSM file, cached on disk.

Extracting roads from a city extract takes a second or two, so the result is kept in
`data_dir/map/` under a name derived from the source file's path, size and mtime: a new
or changed map file is extracted again, an unchanged one is read from the cache. The
cache holds gzip bytes, served as they are with `Content-Encoding: gzip`.
"""

import gzip
import hashlib
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from autocloud.domain.errors import NotFound

Extract = Callable[[Path], dict[str, Any]]
Encode = Callable[[dict[str, Any]], bytes]


@dataclass(frozen=True, slots=True)
class MapLayer:
    """One served layer: its gzip body and an ETag for browser caching."""

    gzip: bytes
    etag: str


class MapData:
    """Serves the roads of `map_path` (None: no map configured, every call is NotFound)."""

    def __init__(
        self, map_path: Path | None, cache_dir: Path, extract: Extract, encode: Encode
    ) -> None:
        self.map_path = map_path
        self._cache_dir = cache_dir
        self._extract = extract
        self._encode = encode
        self._lock = threading.Lock()
        self._roads: MapLayer | None = None
        self._key: str | None = None

    def _source_key(self) -> str:
        if self.map_path is None:
            raise NotFound(
                "no base map is configured: set map_path (AUTOCLOUD_MAP_PATH) to the OSM file "
                "the fleet drives on; `autocloud demo` sets it to its town"
            )
        try:
            stat = self.map_path.stat()
        except OSError:
            raise NotFound(f"the configured map file {self.map_path} does not exist") from None
        ident = f"{self.map_path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"
        return hashlib.sha256(ident.encode()).hexdigest()[:16]

    def roads(self) -> MapLayer:
        """The roads layer, extracted on first use (or when the file changed)."""
        key = self._source_key()
        with self._lock:
            if self._roads is not None and self._key == key:
                return self._roads
            assert self.map_path is not None
            cached = self._cache_dir / f"{self.map_path.name}.{key}.roads.geojson.gz"
            if cached.is_file():
                body = cached.read_bytes()
            else:
                body = gzip.compress(self._encode(self._extract(self.map_path)), mtime=0)
                self._cache_dir.mkdir(parents=True, exist_ok=True)
                partial = cached.with_suffix(f".{os.getpid()}.tmp")
                partial.write_bytes(body)
                partial.replace(cached)  # atomic: a concurrent reader never sees half a file
            self._roads = MapLayer(body, f'"{key}"')
            self._key = key
            return self._roads

    def describe(self) -> dict[str, Any]:
        """Name of the map and its layers, for the dashboard to decide what to load."""
        self._source_key()
        assert self.map_path is not None
        return {"name": self.map_path.name, "layers": {"roads": "/dashboard/map/roads.geojson"}}
