"""scale: production schema for jobs, routing decisions and predictions

JSONB for their JSON columns on PostgreSQL (``radgate.db.types.JSONText``; TEXT on SQLite), foreign keys
(jobs and routing decisions to their deployment, a routing decision to its job), CHECK constraints on the
status columns, ``predictions.mode`` wide enough for ``retrospective``, and indexes for the worklist (policy, urgency) and monitoring (deployment, created_at).

Revision ID: p100
Revises: 0021
"""

import sqlalchemy as sa
from alembic import op

revision = "p100"
down_revision = "0021"
branch_labels = None
depends_on = None

JSON_COLUMNS = {
    "jobs": ["instances"],
    "routing_decisions": ["instances"],
    "predictions": ["scores", "flags", "features", "used_instances", "findings"],
}
JOB_STATUSES = ("queued", "running", "done", "failed", "cancelled")
ROUTING_DECISIONS = ("matched", "not_applicable", "off")
PREDICTION_MODES = ("off", "silent", "shadow", "live", "retrospective")
PREDICTION_POLICIES = ("released", "withheld", "silent", "shadow", "off", "retrospective")


def _one_of(column: str, values: tuple[str, ...]) -> str:
    return f"{column} IN ({', '.join(repr(v) for v in values)})"


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in JSON_COLUMNS.items():
            for column in columns:
                op.execute(f'ALTER TABLE {table} ALTER COLUMN "{column}" TYPE jsonb USING "{column}"::jsonb')
    with op.batch_alter_table("jobs") as batch:
        batch.create_foreign_key(
            "fk_jobs_deployment", "deployments", ["deployment"], ["name"], onupdate="CASCADE"
        )
        batch.create_check_constraint("ck_jobs_status", _one_of("status", JOB_STATUSES))
    with op.batch_alter_table("routing_decisions") as batch:
        batch.create_foreign_key(
            "fk_routing_decisions_deployment", "deployments", ["deployment"], ["name"], onupdate="CASCADE"
        )
        batch.create_foreign_key(
            "fk_routing_decisions_job", "jobs", ["job_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_check_constraint("ck_routing_decisions_decision", _one_of("decision", ROUTING_DECISIONS))
    with op.batch_alter_table("predictions") as batch:
        # "retrospective" (radgate score --into-db) does not fit the deployments' VARCHAR(8)
        batch.alter_column("mode", type_=sa.String(16), existing_type=sa.String(8), existing_nullable=False)
        batch.create_check_constraint("ck_predictions_mode", _one_of("mode", PREDICTION_MODES))
        batch.create_check_constraint("ck_predictions_policy", _one_of("policy", PREDICTION_POLICIES))
        batch.create_index("ix_predictions_policy_urgency", ["policy", "urgency"])
        batch.create_index("ix_predictions_deployment_created", ["deployment", "created_at"])


def downgrade() -> None:
    with op.batch_alter_table("predictions") as batch:
        batch.drop_index("ix_predictions_deployment_created")
        batch.drop_index("ix_predictions_policy_urgency")
        batch.drop_constraint("ck_predictions_policy", type_="check")
        batch.drop_constraint("ck_predictions_mode", type_="check")
        batch.alter_column("mode", type_=sa.String(8), existing_type=sa.String(16), existing_nullable=False)
    with op.batch_alter_table("routing_decisions") as batch:
        batch.drop_constraint("ck_routing_decisions_decision", type_="check")
        batch.drop_constraint("fk_routing_decisions_job", type_="foreignkey")
        batch.drop_constraint("fk_routing_decisions_deployment", type_="foreignkey")
    with op.batch_alter_table("jobs") as batch:
        batch.drop_constraint("ck_jobs_status", type_="check")
        batch.drop_constraint("fk_jobs_deployment", type_="foreignkey")
    if op.get_bind().dialect.name == "postgresql":
        for table, columns in JSON_COLUMNS.items():
            for column in columns:
                op.alter_column(table, column, type_=sa.Text(), postgresql_using=f'"{column}"::text')
