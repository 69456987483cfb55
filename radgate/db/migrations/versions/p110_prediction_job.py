"""scale: a prediction's job as a foreign key

``predictions.job_id`` references ``jobs.id`` (ON DELETE SET NULL) and may be NULL: scores made outside the
engine's queue (``radgate score --into-db``) have no job. Rows written before this revision with a job that
does not exist (``0`` for retrospective scores) get NULL first. A prediction's deployment is reached through
its job (``fk_jobs_deployment``, p100); ``predictions.deployment`` itself gets no key, because retrospective
rows name ``retro:MODEL:VERSION``, which is not a deployment. SQLite takes the change in batch mode (the
table is copied), as p100 did.

Revision ID: p110
Revises: p100
"""

import sqlalchemy as sa
from alembic import op

revision = "p110"
down_revision = "p100"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.alter_column("job_id", existing_type=sa.Integer(), nullable=True)
    op.execute(
        "UPDATE predictions SET job_id = NULL WHERE job_id IS NOT NULL "
        "AND job_id NOT IN (SELECT id FROM jobs)"
    )
    with op.batch_alter_table("predictions") as batch:
        batch.create_foreign_key("fk_predictions_job", "jobs", ["job_id"], ["id"], ondelete="SET NULL")


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_constraint("fk_predictions_job", type_="foreignkey")
    op.execute("UPDATE predictions SET job_id = 0 WHERE job_id IS NULL")
    with op.batch_alter_table("predictions") as batch:
        batch.alter_column("job_id", existing_type=sa.Integer(), nullable=False)
