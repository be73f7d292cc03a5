"""What each car last answered to the signed key lists it was sent (`keys/result`).

On the shared `metadata` (adapters/sql/schema.py); migration 0008 creates it. One row per
vehicle, written in the ingest transaction by `command_keys.write_key_list_results`: the
highest serial the car confirmed it applied, and the last list it refused with the car's
reason. The serial the platform sent last is the `command_counters` row `key-list`.
"""

from sqlalchemy import BigInteger, Column, ForeignKey, Integer, String, Table

from autocloud.adapters.sql.schema import metadata

key_list_acks = Table(
    "key_list_acks",
    metadata,
    Column("vehicle_id", Integer, ForeignKey("vehicles.id", ondelete="CASCADE"), primary_key=True),
    Column("applied_serial", BigInteger),  # the highest serial the car applied
    Column("applied_ts", BigInteger),  # vehicle time of that answer
    Column("applied_ms", BigInteger),  # platform receive time
    Column("refused_serial", BigInteger),  # the last list refused (NULL: it was unreadable)
    Column("refused_reason", String(500)),  # NULL: the car never refused a list
    Column("refused_ts", BigInteger),
    Column("refused_ms", BigInteger),
)
