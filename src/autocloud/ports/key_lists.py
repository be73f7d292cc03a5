"""Port of what cars confirmed of their key lists (adapter: `adapters/sql/command_keys.py`).

The cars' answers (`keys/result`) are written by ingest through a `WriteBatch.replies`
writer, not through this port; this is the read side for the API and the CLI.
"""

from typing import Protocol

from autocloud.domain.command_keyset import KeyListState


class KeyListStore(Protocol):
    def key_list_state(self, vehicle_id: int) -> KeyListState:
        """The newest serial sent to the vehicle and what the car answered to its lists."""
        ...


__all__ = ["KeyListStore"]
