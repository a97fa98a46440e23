"""The service database's tables, as the migrations leave them (the queries are written against these)."""

from __future__ import annotations

from sqlalchemy import JSON, BigInteger, Boolean, Column, Date, DateTime, Float, Integer, MetaData, String, Table, Text

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

# The intake rate limit (``store.intake_rates``): a token bucket per referring source. ``updated_at`` is seconds
# since the epoch; ``granted`` whether the last request took a token (the upsert hands it back).
intake_rate_buckets = Table(
    "intake_rate_buckets",
    metadata,
    Column("source_id", String(200), primary_key=True),
    Column("tokens", Float(53), nullable=False),
    Column("updated_at", Float(53), nullable=False),
    Column("granted", Boolean, nullable=False),
)

# One row per referral (``referral_service.domain.referral_row``), kept current by its workflow. The patient's
# details are in ``person_sealed`` (AES-256-GCM under the payload key ring) and ``name_keys`` (keyed hashes of
# each word of the name, for search); nothing else on the row is patient data.
referrals = Table(
    "referrals",
    metadata,
    Column("key", String(200), primary_key=True),
    Column("version_at", BigInteger, nullable=False),  # microseconds since the epoch, workflow time
    Column("version_event", Integer, nullable=False),
    Column("source_id", String(100), nullable=False),
    Column("phase", String(40), nullable=False),
    Column("ended", Boolean, nullable=False),
    Column("track_id", String(100)),
    Column("referrer", Text),
    Column("received_at", DateTime(timezone=True), nullable=False),
    Column("from_setting", String(40)),  # 0004
    Column("hospital_discharge", Date),
    Column("accepted_on", Date),
    Column("first_attended", Date),
    Column("program_discharge", Date),
    Column("sessions_attended", Integer, nullable=False),
    Column("hours_attended", Float, nullable=False),
    Column("absences", Integer, nullable=False),
    Column("team", JSON, nullable=False),
    Column("next_deadline", DateTime(timezone=True)),
    Column("first_session_due", Date),
    Column("next_follow_up", Date),  # 0003
    Column("outreach_due", Date),  # 0003
    Column("at_risk", Boolean, nullable=False),
    Column("overdue", JSON, nullable=False),
    Column("refused_writes", Integer, nullable=False),
    Column("possible_duplicates", JSON),  # 0004; NULL on rows written before it: none known
    Column("measures", JSON),
    Column("person_sealed", Text, nullable=False),
    Column("name_keys", Text, nullable=False),
)

# A token bucket per EHR whose call rate the whole deployment shares (0005); times are seconds since the epoch.
ehr_rate_buckets = Table(
    "ehr_rate_buckets",
    metadata,
    Column("source_id", String(100), primary_key=True),
    Column("tokens", Float, nullable=False),
    Column("refilled_at", Float, nullable=False),
    Column("blocked_until", Float, nullable=False),  # no token before then: the EHR's Retry-After
)
