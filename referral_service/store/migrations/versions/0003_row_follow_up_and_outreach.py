"""What "my day" reads from a referral's row: the next follow-up call due, and the outreach a streak asked for."""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    # Rows written before this stay without them until their workflow next changes (or a rebuild).
    op.add_column("referrals", sa.Column("next_follow_up", sa.Date))
    op.add_column("referrals", sa.Column("outreach_due", sa.Date))
