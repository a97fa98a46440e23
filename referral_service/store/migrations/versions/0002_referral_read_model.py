"""The referral read model: one row per referral, kept current by its workflow."""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.create_table(
        "referrals",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("version_at", sa.BigInteger, nullable=False),
        sa.Column("version_event", sa.Integer, nullable=False),
        sa.Column("source_id", sa.String(100), nullable=False),
        sa.Column("phase", sa.String(40), nullable=False),
        sa.Column("ended", sa.Boolean, nullable=False),
        sa.Column("track_id", sa.String(100)),
        sa.Column("referrer", sa.Text),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("hospital_discharge", sa.Date),
        sa.Column("accepted_on", sa.Date),
        sa.Column("first_attended", sa.Date),
        sa.Column("program_discharge", sa.Date),
        sa.Column("sessions_attended", sa.Integer, nullable=False),
        sa.Column("hours_attended", sa.Float, nullable=False),
        sa.Column("absences", sa.Integer, nullable=False),
        sa.Column("team", sa.JSON, nullable=False),
        sa.Column("next_deadline", sa.DateTime(timezone=True)),
        sa.Column("first_session_due", sa.Date),
        sa.Column("at_risk", sa.Boolean, nullable=False),
        sa.Column("overdue", sa.JSON, nullable=False),
        sa.Column("refused_writes", sa.Integer, nullable=False),
        sa.Column("measures", sa.JSON),
        sa.Column("person_sealed", sa.Text, nullable=False),
        sa.Column("name_keys", sa.Text, nullable=False),
    )
    op.create_index("referrals_open_by_phase", "referrals", ["ended", "phase"])
    op.create_index("referrals_by_hospital_discharge", "referrals", ["hospital_discharge"])
