"""The intake rate limit's token buckets, one per referring source, shared by every API process.

On PostgreSQL the table is UNLOGGED: a commit touching it alone waits for no WAL flush (the cost of every intake
request), and what a crash or a failover loses is only how full each bucket was: they start full again."""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"


def upgrade() -> None:
    unlogged = ["UNLOGGED"] if op.get_bind().dialect.name == "postgresql" else []
    op.create_table(
        "intake_rate_buckets",
        sa.Column("source_id", sa.String(200), primary_key=True),
        sa.Column("tokens", sa.Float(53), nullable=False),
        sa.Column("updated_at", sa.Float(53), nullable=False),
        sa.Column("granted", sa.Boolean, nullable=False),
        prefixes=unlogged,
    )
