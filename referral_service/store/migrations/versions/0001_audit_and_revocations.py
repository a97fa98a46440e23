"""The audit trail (append-only) and the sign-out revocations."""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None

_APPEND_ONLY_SQLITE = (
    "CREATE TRIGGER audit_no_{name} BEFORE {verb} ON audit "
    "BEGIN SELECT RAISE(ABORT, 'the audit trail is append-only'); END"
)
_APPEND_ONLY_POSTGRESQL = (
    """CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN RAISE EXCEPTION 'the audit trail is append-only'; END $$""",
    "CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit "
    "FOR EACH ROW EXECUTE FUNCTION audit_append_only()",
)


def upgrade() -> None:
    op.create_table(
        "audit",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer, "sqlite"), primary_key=True, autoincrement=True),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("user", sa.Text),
        sa.Column("roles", sa.Text, nullable=False),
        sa.Column("source", sa.Text),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("referral_key", sa.Text),
        sa.Column("status", sa.Integer, nullable=False),
        sa.Column("outcome", sa.String(20), nullable=False),
        sa.Column("client", sa.Text),
    )
    op.create_index("audit_by_referral", "audit", ["referral_key", "at"])
    op.create_index("audit_by_user", "audit", ["user", "at"])
    op.create_index("audit_by_time", "audit", ["at"])
    if op.get_bind().dialect.name == "sqlite":
        for verb in ("UPDATE", "DELETE"):
            op.execute(_APPEND_ONLY_SQLITE.format(name=verb.lower(), verb=verb))
    else:
        for statement in _APPEND_ONLY_POSTGRESQL:
            op.execute(statement)

    op.create_table(
        "revoked_sessions",
        sa.Column("session_hash", sa.String(64), primary_key=True),
        sa.Column("expires_at", sa.BigInteger, nullable=False),
    )
    op.create_index("revoked_sessions_by_expiry", "revoked_sessions", ["expires_at"])
