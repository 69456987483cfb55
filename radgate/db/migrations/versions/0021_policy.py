"""policy: deployments first-class (results keyed by series x deployment), decisions, intents, local validation

Revision ID: 0021
Revises: 0020
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = ("0030", "0040")  # alters the results and validation tables' timestamps too

#: Every timestamp column: timezone-aware UTC on PostgreSQL from this revision (radgate.clock.UTCDateTime);
#: SQLite has no time zone type and keeps storing UTC, as it always did.
TIMESTAMPS = {
    "deployment_changes": ["at"],
    "ground_truth": ["imported_at"],
    "instances": ["received_at"],
    "jobs": ["available_at", "lease_expires_at", "enqueued_at", "series_completed_at", "started_at",
             "finished_at"],
    "model_versions": ["registered_at"],
    "predictions": ["created_at"],
    "rejections": ["at"],
    "result_outbox": ["created_at", "next_attempt_at", "lease_until", "last_attempt_at", "sent_at"],
    "routing_decisions": ["decided_at"],
    "studies": ["first_received", "last_received", "completed_at"],
    "trials": ["started_at", "last_evaluated_at"],
    "deployments": ["created_at", "updated_at"],
    "series": ["first_received", "last_received", "completed_at"],
}


def _timestamps(aware: bool) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    kind = "timestamptz" if aware else "timestamp"
    for table, columns in TIMESTAMPS.items():
        for column in columns:
            op.execute(
                f'ALTER TABLE {table} ALTER COLUMN "{column}" TYPE {kind} USING "{column}" AT TIME ZONE \'UTC\''
            )


def upgrade() -> None:
    _timestamps(aware=True)
    with op.batch_alter_table("deployments") as b:
        b.add_column(sa.Column("operating_point", sa.String(length=64), nullable=True))
        b.add_column(sa.Column("findings", sa.Text(), nullable=True))
        b.add_column(
            sa.Column("incidental", sa.String(length=16), nullable=False, server_default="review_only")
        )
    with op.batch_alter_table("deployments") as b:
        b.alter_column("incidental", server_default=None)

    with op.batch_alter_table("jobs") as b:
        b.drop_constraint("uq_job_series_model", type_="unique")
        b.create_unique_constraint("uq_job_series_deployment", ["SeriesInstanceUID", "deployment"])
        b.add_column(sa.Column("instances", sa.Text(), nullable=True))

    with op.batch_alter_table("routing_decisions") as b:
        b.add_column(sa.Column("instances", sa.Text(), nullable=True))

    with op.batch_alter_table("predictions") as b:
        b.drop_constraint("uq_prediction", type_="unique")
        b.create_unique_constraint("uq_prediction", ["SeriesInstanceUID", "deployment"])
        b.add_column(sa.Column("used_instances", sa.Text(), nullable=False, server_default="[]"))
        b.add_column(sa.Column("policy", sa.String(length=16), nullable=False, server_default="silent"))
        b.add_column(sa.Column("policy_reason", sa.Text(), nullable=False, server_default=""))
        b.add_column(sa.Column("operating_point", sa.String(length=64), nullable=True))
        b.add_column(sa.Column("threshold", sa.Float(), nullable=True))
        b.add_column(sa.Column("threshold_source", sa.String(length=48), nullable=True))
        b.add_column(sa.Column("urgency", sa.Float(), nullable=False, server_default="0"))
        b.add_column(sa.Column("findings", sa.Text(), nullable=False, server_default="[]"))
    # Existing results keep what they were: the scored image was the only one recorded; a live result was
    # released (there was no subgroup rule before this revision).
    op.execute(
        "UPDATE predictions SET used_instances = '[\"' || \"SOPInstanceUID\" || '\"]', "
        "policy = CASE mode WHEN 'live' THEN 'released' ELSE mode END, "
        "policy_reason = 'stored before the policy stage existed'"
    )
    with op.batch_alter_table("predictions") as b:
        for column in ("used_instances", "policy", "policy_reason", "urgency", "findings"):
            b.alter_column(column, server_default=None)

    op.create_table(
        "local_validations",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("deployment", sa.String(length=64), nullable=False),
        sa.Column("site", sa.String(length=64), nullable=False),
        sa.Column("attribute", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("positives", sa.Integer(), nullable=False),
        sa.Column("negatives", sa.Integer(), nullable=False),
        sa.Column("auc", sa.Float(), nullable=True),
        sa.Column("validated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("recorded_by", sa.String(length=64), nullable=False),
        sa.Column("source", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("deployment", "attribute", "value", name="uq_local_validation"),
    )
    op.create_index("ix_local_validations_deployment", "local_validations", ["deployment"])
    op.create_table(
        "publish_intents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("prediction_id", sa.Integer(), nullable=False),
        sa.Column("deployment", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("max_attempts", sa.Integer(), nullable=False),
        sa.Column("available_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("lease_owner", sa.String(length=128), nullable=True),
        sa.Column("lease_expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("prediction_id", name="uq_publish_intent_prediction"),
    )
    op.create_index("ix_publish_intents_status", "publish_intents", ["status"])


def downgrade() -> None:
    _timestamps(aware=False)
    op.drop_index("ix_publish_intents_status", table_name="publish_intents")
    op.drop_table("publish_intents")
    op.drop_index("ix_local_validations_deployment", table_name="local_validations")
    op.drop_table("local_validations")
    with op.batch_alter_table("predictions") as b:
        for column in ("findings", "urgency", "threshold_source", "threshold", "operating_point",
                       "policy_reason", "policy", "used_instances"):
            b.drop_column(column)
        b.drop_constraint("uq_prediction", type_="unique")
        b.create_unique_constraint("uq_prediction", ["SeriesInstanceUID", "model_name", "model_version"])
    with op.batch_alter_table("routing_decisions") as b:
        b.drop_column("instances")
    with op.batch_alter_table("jobs") as b:
        b.drop_column("instances")
        b.drop_constraint("uq_job_series_deployment", type_="unique")
        b.create_unique_constraint("uq_job_series_model", ["SeriesInstanceUID", "model_name", "model_version"])
    with op.batch_alter_table("deployments") as b:
        for column in ("incidental", "findings", "operating_point"):
            b.drop_column(column)
