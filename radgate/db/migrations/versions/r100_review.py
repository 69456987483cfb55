"""review: review_reads (every read: action, finding, region, reason, free text, SR revision)

Revision ID: r100
Revises: 0001
Create Date: 2026-12-02 00:20:00
"""

import sqlalchemy as sa
from alembic import op

revision = "r100"
down_revision = "0001"
branch_labels = ("review",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "review_reads",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("StudyInstanceUID", sa.String(length=64), nullable=False),
        sa.Column("SeriesInstanceUID", sa.String(length=64), nullable=True),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("region", sa.Text(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("actor", sa.String(length=128), nullable=False),
        sa.Column("sr_sop_uid", sa.String(length=64), nullable=True),
        sa.Column("label_request_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("review_reads", schema=None) as batch_op:
        batch_op.create_index("ix_review_reads_study", ["StudyInstanceUID", "created_at"], unique=False)


def downgrade() -> None:
    op.drop_table("review_reads")
