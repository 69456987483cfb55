"""The relational schema: instances, series, studies and rejections (ingest), more as the flow grows.

The database holds the index and the workflow state; pixel data lives in the instance store on disk
(``DATA_DIR/instances``). Migrations under ``radgate/db/migrations`` create exactly this schema;
``tests/test_db.py`` compares the two.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Float,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from radgate.clock import UTCDateTime

__all__ = ["Base", "Instance", "Rejection", "Series", "Study"]

UID = String(64)


class Base(DeclarativeBase):
    pass


class Study(Base):
    """One study as radgate has assembled it so far (PS3.3 C.7.2.1 General Study)."""

    __tablename__ = "studies"

    StudyInstanceUID: Mapped[str] = mapped_column(UID, primary_key=True)
    AccessionNumber: Mapped[str | None] = mapped_column(String(16))
    StudyDate: Mapped[str | None] = mapped_column(String(8))
    StudyDescription: Mapped[str | None] = mapped_column(String(64))
    StudyTime: Mapped[str | None] = mapped_column(String(16))
    StudyID: Mapped[str | None] = mapped_column(String(16))
    # Patient-level values are kept for QIDO-RS answers only; they never appear in logs or exports.
    PatientName: Mapped[str | None] = mapped_column(String(324))
    PatientID: Mapped[str | None] = mapped_column(String(64))
    PatientBirthDate: Mapped[str | None] = mapped_column(String(8))
    PatientSex: Mapped[str | None] = mapped_column(String(16))
    ReferringPhysicianName: Mapped[str | None] = mapped_column(String(324))
    status: Mapped[str] = mapped_column(String(16), default="receiving")  # receiving | complete | reopened
    num_instances: Mapped[int] = mapped_column(Integer, default=0)
    first_received: Mapped[datetime] = mapped_column(UTCDateTime)
    last_received: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopened_count: Mapped[int] = mapped_column(Integer, default=0)


class Series(Base):
    """One series (PS3.3 C.7.3.1 General Series) and its assembly state."""

    __tablename__ = "series"

    SeriesInstanceUID: Mapped[str] = mapped_column(UID, primary_key=True)
    StudyInstanceUID: Mapped[str] = mapped_column(UID, ForeignKey("studies.StudyInstanceUID"), index=True)
    Modality: Mapped[str | None] = mapped_column(String(16))
    SeriesNumber: Mapped[int | None] = mapped_column(Integer)
    SeriesDescription: Mapped[str | None] = mapped_column(String(64))
    num_instances: Mapped[int] = mapped_column(Integer, default=0)
    expected_instances: Mapped[int | None] = mapped_column(Integer)
    # receiving | complete | incomplete (processed partially or skipped, see ``note``)
    status: Mapped[str] = mapped_column(String(16), default="receiving", index=True)
    first_received: Mapped[datetime] = mapped_column(UTCDateTime)
    last_received: Mapped[datetime] = mapped_column(UTCDateTime)
    completed_at: Mapped[datetime | None] = mapped_column(UTCDateTime)
    reopened_count: Mapped[int] = mapped_column(Integer, default=0)
    note: Mapped[str | None] = mapped_column(Text)  # why incomplete / waiting / skipped


class Instance(Base):
    """One stored revision of one SOP instance, with the header features kept for drift monitoring."""

    __tablename__ = "instances"
    __table_args__ = (
        UniqueConstraint("SOPInstanceUID", "revision", name="uq_instance_revision"),
        Index("ix_instances_series", "SeriesInstanceUID"),
        Index("ix_instances_study", "StudyInstanceUID"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    SOPInstanceUID: Mapped[str] = mapped_column(UID, index=True)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    SOPClassUID: Mapped[str] = mapped_column(UID)
    StudyInstanceUID: Mapped[str] = mapped_column(UID)
    SeriesInstanceUID: Mapped[str] = mapped_column(UID)
    InstanceNumber: Mapped[int | None] = mapped_column(Integer)
    TransferSyntaxUID: Mapped[str] = mapped_column(UID)
    path: Mapped[str] = mapped_column(Text)  # relative to the instance store
    size: Mapped[int] = mapped_column(BigInteger)
    sha256: Mapped[str] = mapped_column(String(64))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime)
    source: Mapped[str] = mapped_column(String(16))  # dimse | stow | import
    calling_ae: Mapped[str | None] = mapped_column(String(64))
    pixel_status: Mapped[str] = mapped_column(String(16), default="unchecked")  # unchecked | ok | undecodable
    NumberOfFrames: Mapped[int | None] = mapped_column(Integer)
    # Acquisition header features (for subgroups and drift monitoring).
    Manufacturer: Mapped[str | None] = mapped_column(String(64))
    ManufacturerModelName: Mapped[str | None] = mapped_column(String(64))
    SoftwareVersions: Mapped[str | None] = mapped_column(String(128))
    StationName: Mapped[str | None] = mapped_column(String(16))
    InstitutionName: Mapped[str | None] = mapped_column(String(64))
    Modality: Mapped[str | None] = mapped_column(String(16))
    BodyPartExamined: Mapped[str | None] = mapped_column(String(16))
    ViewPosition: Mapped[str | None] = mapped_column(String(16))
    PhotometricInterpretation: Mapped[str | None] = mapped_column(String(16))
    BitsStored: Mapped[int | None] = mapped_column(Integer)
    Rows: Mapped[int | None] = mapped_column(Integer)
    Columns: Mapped[int | None] = mapped_column(Integer)
    PixelSpacing: Mapped[float | None] = mapped_column(
        Float
    )  # row spacing in mm (PixelSpacing or ImagerPixelSpacing)
    KVP: Mapped[float | None] = mapped_column(Float)
    Exposure: Mapped[float | None] = mapped_column(Float)
    ConvolutionKernel: Mapped[str | None] = mapped_column(String(64))
    SliceThickness: Mapped[float | None] = mapped_column(Float)
    PatientAge: Mapped[float | None] = mapped_column(Float)  # years, from PatientAge or birth/study date
    PatientSex: Mapped[str | None] = mapped_column(String(4))


class Rejection(Base):
    """An input that was refused or quarantined, with a reason a human understands (no patient data)."""

    __tablename__ = "rejections"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    at: Mapped[datetime] = mapped_column(UTCDateTime, index=True)
    source: Mapped[str] = mapped_column(String(16))  # dimse | stow | import | decode
    calling_ae: Mapped[str | None] = mapped_column(String(64))
    origin: Mapped[str | None] = mapped_column(Text)  # file path for imports, peer address for network
    SOPInstanceUID: Mapped[str | None] = mapped_column(UID)
    status: Mapped[int | None] = mapped_column(Integer)  # the PS3.4 status returned, if any
    reason: Mapped[str] = mapped_column(Text)
    quarantine_path: Mapped[str | None] = mapped_column(Text)
