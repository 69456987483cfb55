"""results outbox on the shared lease primitive: lease owner and finish time

Revision ID: 0022
Revises: 0021

The outbox (``result_outbox``) moves onto :class:`radgate.db.lease.LeasedQueue`, the primitive under the
engine's jobs and the publish intents: a row is claimed *by a worker* (``lease_owner``), and only that
worker may record its outcome, so one whose lease ran out cannot overwrite the one that took over;
``finished_at`` says when a row ended ``sent`` or ``failed``. Existing rows are kept as they are:
``sent`` rows finished when they were sent, ``failed`` ones at their last attempt; a row being sent keeps
its lease and is taken over once the lease runs out, as before.
"""

import sqlalchemy as sa
from alembic import op

revision = "0022"
down_revision = "0021"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("result_outbox") as b:
        b.add_column(sa.Column("lease_owner", sa.String(length=128), nullable=True))
        b.add_column(sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True))
    op.execute("UPDATE result_outbox SET finished_at = sent_at WHERE status = 'sent'")
    op.execute("UPDATE result_outbox SET finished_at = last_attempt_at WHERE status = 'failed'")


def downgrade() -> None:
    with op.batch_alter_table("result_outbox") as b:
        b.drop_column("finished_at")
        b.drop_column("lease_owner")
