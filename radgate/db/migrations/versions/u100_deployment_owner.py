"""deployments: who manages each one (the config file's [[deployments]], or `radgate deployments add`)

Revision ID: u100
Revises: 0001
Create Date: 2026-12-02 00:10:00

Existing deployments all came from a config file: they get ``managed_by = 'config'``.
"""

import sqlalchemy as sa
from alembic import op

revision = "u100"
down_revision = "0001"
branch_labels = ("deployment_owner",)
depends_on = ("0021",)  # the deployments table (0020) as the policy revision left it


def upgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("managed_by", sa.String(length=8), server_default="config", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("deployments", schema=None) as batch_op:
        batch_op.drop_column("managed_by")
