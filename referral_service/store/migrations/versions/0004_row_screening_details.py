"""What the inbox reads from a referral's row instead of its workflow: where the patient steps down from (with
the discharge date already there, the step-down eligibility) and the open referrals that may be the same patient."""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"


def upgrade() -> None:
    # Rows written before this stay without them until their workflow next changes (or a rebuild).
    op.add_column("referrals", sa.Column("from_setting", sa.String(40)))
    op.add_column("referrals", sa.Column("possible_duplicates", sa.JSON))
