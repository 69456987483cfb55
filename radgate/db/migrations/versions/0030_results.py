"""results: the outbox of result objects (SR, GSPS, SC) per destination

Revision ID: 0030
Revises: 0001
Create Date: 2026-11-27 18:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0001"
branch_labels = ("results",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "result_outbox",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("SOPInstanceUID", sa.String(length=64), nullable=False),
        sa.Column("SOPClassUID", sa.String(length=64), nullable=False),
        sa.Column("StudyInstanceUID", sa.String(length=64), nullable=False),
        sa.Column("SeriesInstanceUID", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("result_key", sa.String(length=128), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("destination", sa.String(length=256), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=True),
        sa.Column("last_attempt_at", sa.DateTime(), nullable=True),
        sa.Column("sent_at", sa.DateTime(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("SOPInstanceUID", "destination", name="uq_outbox_instance_destination"),
    )
    with op.batch_alter_table("result_outbox", schema=None) as batch_op:
        batch_op.create_index("ix_outbox_due", ["status", "next_attempt_at"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_result_outbox_StudyInstanceUID"), ["StudyInstanceUID"], unique=False
        )
        batch_op.create_index(batch_op.f("ix_result_outbox_result_key"), ["result_key"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("result_outbox", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_result_outbox_result_key"))
        batch_op.drop_index(batch_op.f("ix_result_outbox_StudyInstanceUID"))
        batch_op.drop_index("ix_outbox_due")
    op.drop_table("result_outbox")
