"""ingest: studies, series, instances, rejections

Revision ID: 0001
Revises:
Create Date: 2026-11-27 17:47:58.824054
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "instances",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("SOPInstanceUID", sa.String(length=64), nullable=False),
        sa.Column("revision", sa.Integer(), nullable=False),
        sa.Column("SOPClassUID", sa.String(length=64), nullable=False),
        sa.Column("StudyInstanceUID", sa.String(length=64), nullable=False),
        sa.Column("SeriesInstanceUID", sa.String(length=64), nullable=False),
        sa.Column("InstanceNumber", sa.Integer(), nullable=True),
        sa.Column("TransferSyntaxUID", sa.String(length=64), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("received_at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("calling_ae", sa.String(length=64), nullable=True),
        sa.Column("pixel_status", sa.String(length=16), nullable=False),
        sa.Column("NumberOfFrames", sa.Integer(), nullable=True),
        sa.Column("Manufacturer", sa.String(length=64), nullable=True),
        sa.Column("ManufacturerModelName", sa.String(length=64), nullable=True),
        sa.Column("SoftwareVersions", sa.String(length=128), nullable=True),
        sa.Column("StationName", sa.String(length=16), nullable=True),
        sa.Column("InstitutionName", sa.String(length=64), nullable=True),
        sa.Column("Modality", sa.String(length=16), nullable=True),
        sa.Column("BodyPartExamined", sa.String(length=16), nullable=True),
        sa.Column("ViewPosition", sa.String(length=16), nullable=True),
        sa.Column("PhotometricInterpretation", sa.String(length=16), nullable=True),
        sa.Column("BitsStored", sa.Integer(), nullable=True),
        sa.Column("Rows", sa.Integer(), nullable=True),
        sa.Column("Columns", sa.Integer(), nullable=True),
        sa.Column("PixelSpacing", sa.Float(), nullable=True),
        sa.Column("KVP", sa.Float(), nullable=True),
        sa.Column("Exposure", sa.Float(), nullable=True),
        sa.Column("ConvolutionKernel", sa.String(length=64), nullable=True),
        sa.Column("SliceThickness", sa.Float(), nullable=True),
        sa.Column("PatientAge", sa.Float(), nullable=True),
        sa.Column("PatientSex", sa.String(length=4), nullable=True),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("SOPInstanceUID", "revision", name="uq_instance_revision"),
    )
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_instances_SOPInstanceUID"), ["SOPInstanceUID"], unique=False)
        batch_op.create_index("ix_instances_series", ["SeriesInstanceUID"], unique=False)
        batch_op.create_index("ix_instances_study", ["StudyInstanceUID"], unique=False)

    op.create_table(
        "rejections",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("at", sa.DateTime(), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("calling_ae", sa.String(length=64), nullable=True),
        sa.Column("origin", sa.Text(), nullable=True),
        sa.Column("SOPInstanceUID", sa.String(length=64), nullable=True),
        sa.Column("status", sa.Integer(), nullable=True),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("quarantine_path", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("rejections", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_rejections_at"), ["at"], unique=False)

    op.create_table(
        "studies",
        sa.Column("StudyInstanceUID", sa.String(length=64), nullable=False),
        sa.Column("AccessionNumber", sa.String(length=16), nullable=True),
        sa.Column("StudyDate", sa.String(length=8), nullable=True),
        sa.Column("StudyDescription", sa.String(length=64), nullable=True),
        sa.Column("StudyTime", sa.String(length=16), nullable=True),
        sa.Column("StudyID", sa.String(length=16), nullable=True),
        sa.Column("PatientName", sa.String(length=324), nullable=True),
        sa.Column("PatientID", sa.String(length=64), nullable=True),
        sa.Column("PatientBirthDate", sa.String(length=8), nullable=True),
        sa.Column("PatientSex", sa.String(length=16), nullable=True),
        sa.Column("ReferringPhysicianName", sa.String(length=324), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("num_instances", sa.Integer(), nullable=False),
        sa.Column("first_received", sa.DateTime(), nullable=False),
        sa.Column("last_received", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("reopened_count", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("StudyInstanceUID"),
    )
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_studies_last_received"), ["last_received"], unique=False)

    op.create_table(
        "series",
        sa.Column("SeriesInstanceUID", sa.String(length=64), nullable=False),
        sa.Column("StudyInstanceUID", sa.String(length=64), nullable=False),
        sa.Column("Modality", sa.String(length=16), nullable=True),
        sa.Column("SeriesNumber", sa.Integer(), nullable=True),
        sa.Column("SeriesDescription", sa.String(length=64), nullable=True),
        sa.Column("num_instances", sa.Integer(), nullable=False),
        sa.Column("expected_instances", sa.Integer(), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("first_received", sa.DateTime(), nullable=False),
        sa.Column("last_received", sa.DateTime(), nullable=False),
        sa.Column("completed_at", sa.DateTime(), nullable=True),
        sa.Column("reopened_count", sa.Integer(), nullable=False),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["StudyInstanceUID"],
            ["studies.StudyInstanceUID"],
        ),
        sa.PrimaryKeyConstraint("SeriesInstanceUID"),
    )
    with op.batch_alter_table("series", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_series_StudyInstanceUID"), ["StudyInstanceUID"], unique=False)
        batch_op.create_index(batch_op.f("ix_series_status"), ["status"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("series", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_series_status"))
        batch_op.drop_index(batch_op.f("ix_series_StudyInstanceUID"))

    op.drop_table("series")
    with op.batch_alter_table("studies", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_studies_last_received"))

    op.drop_table("studies")
    with op.batch_alter_table("rejections", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_rejections_at"))

    op.drop_table("rejections")
    with op.batch_alter_table("instances", schema=None) as batch_op:
        batch_op.drop_index("ix_instances_study")
        batch_op.drop_index("ix_instances_series")
        batch_op.drop_index(batch_op.f("ix_instances_SOPInstanceUID"))

    op.drop_table("instances")
