"""Tables of remote diagnostic sessions (UDS over MQTT); migration 0004 creates them.

A session is one operator's readout of one vehicle; it has one request row per (ECU, read)
sent to the vehicle, and the vehicle's answers land in `diag_responses` in the ingest
transaction, whether or not a request is waiting for them (nothing a vehicle sends is
dropped). The finished report is stored with the session as JSON.
"""

from sqlalchemy import BigInteger, Boolean, Column, ForeignKey, Index, Integer, String, Table, Text

from autocloud.adapters.sql.schema import metadata

diag_sessions = Table(
    "diag_sessions",
    metadata,
    Column("id", String(32), primary_key=True),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id", ondelete="CASCADE"), nullable=False),
    Column("brand_id", String(64), nullable=False),
    Column("requested_by", String(200), nullable=False),
    Column("created_ms", BigInteger, nullable=False),
    Column("expires_ms", BigInteger, nullable=False),
    Column("completed_ms", BigInteger),
    Column("status", String(16), nullable=False),  # pending, complete, failed
    Column("ecus", Text, nullable=False),  # JSON list of ECU names
    Column("reads", Text, nullable=False),  # JSON list of read names
    Column("clear_dtcs", Boolean, nullable=False),
    Column("report", Text),  # JSON, once complete
    Column("error", Text),
    Index("ix_diag_sessions_vehicle", "vehicle_id", "created_ms"),
    Index("ix_diag_sessions_status", "status", "expires_ms"),
)

diag_requests = Table(
    "diag_requests",
    metadata,
    Column("id", String(64), primary_key=True),  # the `id` on the wire
    Column(
        "session_id", String(32), ForeignKey("diag_sessions.id", ondelete="CASCADE"), nullable=False
    ),
    Column("position", Integer, nullable=False),
    Column("ecu", String(32), nullable=False),
    Column("read", String(32), nullable=False),
    Column("request", Text, nullable=False),  # hex
    Index("ix_diag_requests_session", "session_id", "position"),
)

diag_responses = Table(
    "diag_responses",
    metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("vehicle_id", Integer, ForeignKey("vehicles.id", ondelete="CASCADE"), nullable=False),
    Column("request_id", String(64), nullable=False),
    Column("ecu", String(32), nullable=False),
    Column("response", Text, nullable=False),  # hex
    Column("ts", BigInteger, nullable=False),
    Column("received_ms", BigInteger, nullable=False),
    Index("ix_diag_responses_request", "vehicle_id", "request_id"),
    sqlite_autoincrement=True,
)
