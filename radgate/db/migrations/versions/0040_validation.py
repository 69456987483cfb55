"""validation: ground truth, silent trials

Revision ID: 0040
Revises: 0001
Create Date: 2026-11-27 18:30:00.000000
"""

import sqlalchemy as sa
from alembic import op


revision = "0040"
down_revision = "0001"
branch_labels = ("validation",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "ground_truth",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("StudyInstanceUID", sa.String(length=64), nullable=True),
        sa.Column("SeriesInstanceUID", sa.String(length=64), nullable=True),
        sa.Column("label", sa.Integer(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("reference_date", sa.Date(), nullable=True),
        sa.Column("imported_at", sa.DateTime(), nullable=False),
        sa.Column("origin", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("ground_truth", schema=None) as batch_op:
        batch_op.create_index("ix_ground_truth_series", ["SeriesInstanceUID"], unique=False)
        batch_op.create_index("ix_ground_truth_study", ["StudyInstanceUID"], unique=False)

    op.create_table(
        "trials",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("model_name", sa.String(length=64), nullable=False),
        sa.Column("model_version", sa.String(length=32), nullable=True),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("criteria_sha256", sa.String(length=64), nullable=False),
        sa.Column("criteria_toml", sa.Text(), nullable=False),
        sa.Column("criteria_path", sa.Text(), nullable=True),
        sa.Column("started_at", sa.DateTime(), nullable=False),
        sa.Column("last_evaluated_at", sa.DateTime(), nullable=True),
        sa.Column("last_recommendation", sa.String(length=32), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("name"),
    )


def downgrade() -> None:
    op.drop_table("trials")
    with op.batch_alter_table("ground_truth", schema=None) as batch_op:
        batch_op.drop_index("ix_ground_truth_study")
        batch_op.drop_index("ix_ground_truth_series")

    op.drop_table("ground_truth")
