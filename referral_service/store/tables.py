"""The service database's tables, as the migrations leave them (the queries are written against these)."""

from __future__ import annotations

from sqlalchemy import BigInteger, Column, Integer, MetaData, String, Table, Text

metadata = MetaData()

audit = Table(
    "audit",
    metadata,
    Column("id", BigInteger().with_variant(Integer, "sqlite"), primary_key=True, autoincrement=True),
    Column("at", String(40), nullable=False),  # UTC ISO 8601 with microseconds: text order is time order
    Column("user", Text),
    Column("roles", Text, nullable=False),
    Column("source", Text),
    Column("action", Text, nullable=False),
    Column("referral_key", Text),
    Column("status", Integer, nullable=False),
    Column("outcome", String(20), nullable=False),
    Column("client", Text),  # the caller's address: the connection's peer, or a trusted proxy's header
)

# A signed-out session's id (a hash of it), kept until the cookie would have expired anyway.
revoked_sessions = Table(
    "revoked_sessions",
    metadata,
    Column("session_hash", String(64), primary_key=True),
    Column("expires_at", BigInteger, nullable=False),  # seconds since the epoch
)
