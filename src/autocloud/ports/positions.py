"""Port of the fleet map's snapshot: every vehicle's last position and state, in one read.

Adapter: `adapters/sql/positions.py` (SQLite and PostgreSQL); tested through the API in
`tests/api/test_positions.py`.
"""

from collections.abc import Collection
from typing import Protocol

from autocloud.domain.positions import Position


class PositionReader(Protocol):
    def positions(self, scope: str | None, vins: Collection[str] | None) -> list[Position]:
        """Every vehicle of brand `scope` (None: all brands), limited to `vins` when given
        (an owner's token), with its last reported map fields and presence, in id order."""
        ...
