"""monitoring: image statistics per scored image (input_drift)

Revision ID: m110
Revises: 0050
Create Date: 2026-12-02 00:10:00
"""

import sqlalchemy as sa
from alembic import op

revision = "m110"
down_revision = "0050"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "image_statistics",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("SOPInstanceUID", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("transform", sa.String(length=64), nullable=False),
        sa.Column("p05", sa.Float(), nullable=False),
        sa.Column("p50", sa.Float(), nullable=False),
        sa.Column("p95", sa.Float(), nullable=False),
        sa.Column("contrast", sa.Float(), nullable=False),
        sa.Column("noise", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("SOPInstanceUID", "sha256", "transform", name="uq_image_statistics_image"),
    )
    op.create_index("ix_image_statistics_SOPInstanceUID", "image_statistics", ["SOPInstanceUID"])


def downgrade() -> None:
    op.drop_index("ix_image_statistics_SOPInstanceUID", table_name="image_statistics")
    op.drop_table("image_statistics")
