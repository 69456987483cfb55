"""learning: promotion criteria, change records, label requests

Revision ID: l100
Revises: 0001
Create Date: 2026-12-01 22:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = "l100"
down_revision = "0001"
branch_labels = ("learning",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "promotion_criteria",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("challenger", sa.String(length=64), nullable=False),
        sa.Column("champion", sa.String(length=64), nullable=False),
        sa.Column("criteria_sha256", sa.String(length=64), nullable=False),
        sa.Column("criteria_toml", sa.Text(), nullable=False),
        sa.Column("criteria_path", sa.Text(), nullable=True),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("locked_by", sa.String(length=64), nullable=False),
        sa.Column("challenger_results_at_lock", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("promotion_criteria", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_promotion_criteria_challenger"), ["challenger"], unique=False)

    op.create_table(
        "change_records",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("challenger", sa.String(length=64), nullable=False),
        sa.Column("champion", sa.String(length=64), nullable=False),
        sa.Column("what", sa.Text(), nullable=False),
        sa.Column("data", sa.Text(), nullable=False),
        sa.Column("metrics", sa.Text(), nullable=False),
        sa.Column("verdict", sa.Text(), nullable=False),
        sa.Column("criteria_id", sa.Integer(), nullable=False),
        sa.Column("criteria_sha256", sa.String(length=64), nullable=False),
        sa.Column("approved_by", sa.String(length=64), nullable=False),
        sa.Column("override", sa.Text(), nullable=True),
        sa.Column("record_sha256", sa.String(length=64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("rolled_back_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("rolled_back_by", sa.String(length=64), nullable=True),
        sa.Column("rollback_note", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("change_records", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_change_records_status"), ["status"], unique=False)
        batch_op.create_index(batch_op.f("ix_change_records_challenger"), ["challenger"], unique=False)
        batch_op.create_index(batch_op.f("ix_change_records_champion"), ["champion"], unique=False)

    op.create_table(
        "label_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("batch", sa.String(length=32), nullable=False),
        sa.Column("deployment", sa.String(length=64), nullable=False),
        sa.Column("StudyInstanceUID", sa.String(length=64), nullable=False),
        sa.Column("SeriesInstanceUID", sa.String(length=64), nullable=False),
        sa.Column("strategy", sa.String(length=16), nullable=False),
        sa.Column("rank", sa.Integer(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("priority", sa.Float(), nullable=False),
        sa.Column("stratum", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("requested_by", sa.String(length=64), nullable=False),
        sa.Column("requested_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("label_requests", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_label_requests_batch"), ["batch"], unique=False)
        batch_op.create_index(
            batch_op.f("ix_label_requests_SeriesInstanceUID"), ["SeriesInstanceUID"], unique=False
        )
        batch_op.create_index("ix_label_requests_deployment_status", ["deployment", "status"], unique=False)


def downgrade() -> None:
    op.drop_table("label_requests")
    op.drop_table("change_records")
    op.drop_table("promotion_criteria")
