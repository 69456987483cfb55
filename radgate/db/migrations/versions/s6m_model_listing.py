"""models: what `radgate models list` shows of a manifest, in the registry's row

``model_versions.finding_names`` (JSON list of the ``[[findings]]`` names; ``jsonb`` on PostgreSQL) and
``model_versions.intended_use_summary`` (``[intended_use] summary``), so that the listing reads the row alone
and never parses the manifest's schema. Rows registered before this revision get both from their stored
manifest TOML (``manifest``, as the registry wrote it); a stored manifest that is not TOML leaves the
defaults, ``[]`` and ``''`` (``radgate models show`` reports what is wrong with it).

Revision ID: s6m_model_listing
Revises: 0001
"""

import json
import tomllib
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "s6m_model_listing"
down_revision = "0001"
branch_labels = ("model_listing",)
depends_on = ("0021",)  # the model_versions table (0020) as the policy revision left it


def _listed(manifest_toml: str) -> tuple[list[str], str]:
    """The finding names and the intended-use summary a stored manifest states (empty when it cannot say)."""
    try:
        data = tomllib.loads(manifest_toml)
    except tomllib.TOMLDecodeError:
        return [], ""
    findings: Any = data.get("findings")
    if not isinstance(findings, list):
        findings = []
    names = [f["name"] for f in findings if isinstance(f, dict) and isinstance(f.get("name"), str)]
    intended: Any = data.get("intended_use")
    summary = intended.get("summary") if isinstance(intended, dict) else None
    return names, summary if isinstance(summary, str) else ""


def upgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "finding_names",
                sa.Text().with_variant(postgresql.JSONB(none_as_null=True), "postgresql"),
                server_default="[]",
                nullable=False,
            )
        )
        batch_op.add_column(sa.Column("intended_use_summary", sa.Text(), server_default="", nullable=False))
    conn = op.get_bind()
    names_value = "CAST(:names AS jsonb)" if conn.dialect.name == "postgresql" else ":names"
    update = sa.text(
        f"UPDATE model_versions SET finding_names = {names_value}, intended_use_summary = :summary "
        "WHERE id = :id"
    )
    for row_id, manifest_toml in conn.execute(sa.text("SELECT id, manifest FROM model_versions")).all():
        names, summary = _listed(manifest_toml or "")
        conn.execute(update, {"id": row_id, "names": json.dumps(names), "summary": summary})


def downgrade() -> None:
    with op.batch_alter_table("model_versions", schema=None) as batch_op:
        batch_op.drop_column("intended_use_summary")
        batch_op.drop_column("finding_names")
