"""Identity of the objects radgate writes for one AI result: UIDs that never change, and SR versions.

Every UID is derived from a stable key (radgate's identifier of the AI result, e.g. the inference job's
UUID) with a name-based UUID (RFC 9562 version 5) under the ``2.25`` root (PS3.5 B.2). Building the objects
twice for the same result therefore gives the same SOP Instance UIDs: a crash between writing and sending,
a resend after a restart, or a rebuild all reach the PACS as the *same* instances, never as duplicates.

Versions (PS3.3 C.17.2.3, Predecessor Documents Sequence): the AI's own SR is revision 1. After a
radiologist's decision a revised SR is revision 2, 3, ...; it lives in the same SR series, has its own SOP
Instance UID and lists the previous revision in its Predecessor Documents Sequence. Because the UIDs are
derived, revision *n* can name revision *n - 1* without any lookup. Tracking UIDs (TID 4108) do not depend on
the revision: a finding keeps its tracking UID across versions.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from pydicom.dataset import Dataset
from pydicom.uid import Comprehensive3DSRStorage

__all__ = ["DocumentReference", "ResultIdentity", "derived_uid"]

#: Namespace of radgate's name-based UUIDs (uuid5 of the project URL in the URL namespace).
RADGATE_NAMESPACE = uuid.uuid5(uuid.NAMESPACE_URL, "https://github.com/radgate/radgate/uids")


def derived_uid(*parts: object) -> str:
    """A DICOM UID ``2.25.<decimal UUID>`` from the UUIDv5 of ``parts`` (PS3.5 B.2); at most 44 characters."""
    if not parts:
        raise ValueError("derived_uid needs at least one part to derive a UID from.")
    name = "\x1f".join(str(p) for p in parts)
    return f"2.25.{uuid.uuid5(RADGATE_NAMESPACE, name).int}"


@dataclass(frozen=True)
class DocumentReference:
    """The four UIDs that identify a stored SR document (an item of the Predecessor Documents Sequence)."""

    StudyInstanceUID: str
    SeriesInstanceUID: str
    SOPInstanceUID: str
    SOPClassUID: str = str(Comprehensive3DSRStorage)

    def to_dataset(self) -> Dataset:
        """A minimal dataset, enough for highdicom's ``previous_versions``."""
        ds = Dataset()
        ds.StudyInstanceUID = self.StudyInstanceUID
        ds.SeriesInstanceUID = self.SeriesInstanceUID
        ds.SOPInstanceUID = self.SOPInstanceUID
        ds.SOPClassUID = self.SOPClassUID
        return ds


@dataclass(frozen=True)
class ResultIdentity:
    """Stable identity of the objects written for one AI result.

    ``key`` is radgate's globally unique identifier of the result (the inference job's UUID, say);
    ``revision`` is 1 for the AI's own report and grows with each revised report.
    """

    key: str
    revision: int = 1

    def __post_init__(self) -> None:
        if not isinstance(self.key, str) or not self.key.strip():
            raise ValueError(f"ResultIdentity key {self.key!r} must be a non-empty string.")
        if isinstance(self.revision, bool) or not isinstance(self.revision, int) or self.revision < 1:
            raise ValueError(f"ResultIdentity revision {self.revision!r} must be an integer >= 1.")

    def uid(self, *parts: object) -> str:
        return derived_uid(self.key, *parts)

    # --- SR: one series per result, one instance per revision -------------------------------------------
    @property
    def sr_series_uid(self) -> str:
        return self.uid("sr-series")

    @property
    def sr_sop_uid(self) -> str:
        return self.uid("sr", self.revision)

    def tracking_uid(self, finding_index: int) -> str:
        """TID 4108 Tracking Unique Identifier of finding ``finding_index`` (the same in every revision)."""
        return self.uid("tracking", finding_index)

    def predecessor(self, StudyInstanceUID: str) -> DocumentReference | None:
        """The SR this revision replaces (revision - 1), or None for the first report."""
        if self.revision == 1:
            return None
        previous = ResultIdentity(self.key, self.revision - 1)
        return DocumentReference(StudyInstanceUID, previous.sr_series_uid, previous.sr_sop_uid)

    def next_revision(self) -> ResultIdentity:
        return ResultIdentity(self.key, self.revision + 1)

    # --- presentation states and heatmaps: one series each, one instance per source image and revision --
    @property
    def pr_series_uid(self) -> str:
        return self.uid("pr-series")

    def pr_sop_uid(self, source_uid: str) -> str:
        return self.uid("pr", self.revision, source_uid)

    @property
    def sc_series_uid(self) -> str:
        return self.uid("sc-series")

    def sc_sop_uid(self, source_uid: str) -> str:
        return self.uid("sc", self.revision, source_uid)
