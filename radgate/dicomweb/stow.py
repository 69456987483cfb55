"""STOW-RS (PS3.18 10.5): store the instances of a multipart/related request, answer per instance.

Each part goes through the same :class:`~radgate.ingest.store.InstanceStore` as DIMSE and folder import,
so durability, duplicates and rejection reasons are identical. The response dataset follows PS3.18
Table 10.5.3-1: ReferencedSOPSequence for stored instances, FailedSOPSequence with FailureReason for the
others; radgate adds ErrorComment (0000,0902) to each failed item so the reason is readable.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pydicom.dataset import Dataset
from pydicom.sequence import Sequence

from radgate.dicomweb.multipart import Part
from radgate.ingest.parse import IngestRejection, Status
from radgate.ingest.store import InstanceStore, StoreOutcome

__all__ = ["StowResult", "store_parts"]

ACCEPTED_TYPES = {"application/dicom"}


@dataclass
class StowResult:
    outcomes: list[StoreOutcome] = field(default_factory=list)

    @property
    def http_status(self) -> int:
        """200 all stored, 202 some failed, 409 all failed (PS3.18 Table 10.5.3-2)."""
        ok = sum(1 for o in self.outcomes if o.ok)
        if ok == len(self.outcomes):
            return 200
        return 202 if ok else 409

    def response(self, base_url: str) -> Dataset:
        ds = Dataset()
        referenced, failed = Sequence(), Sequence()
        for o in self.outcomes:
            item = Dataset()
            item.ReferencedSOPClassUID = o.SOPClassUID or ""
            item.ReferencedSOPInstanceUID = o.SOPInstanceUID or ""
            if o.ok:
                item.RetrieveURL = (
                    f"{base_url}/studies/{o.StudyInstanceUID}/series/{o.SeriesInstanceUID}"
                    f"/instances/{o.SOPInstanceUID}"
                )
                referenced.append(item)
            else:
                item.FailureReason = o.status
                item.add_new(0x00000902, "LO", (o.reason or "")[:64])
                failed.append(item)
        if referenced:
            ds.ReferencedSOPSequence = referenced
        if failed:
            ds.FailedSOPSequence = failed
        return ds


def store_parts(
    store: InstanceStore,
    parts: list[Part],
    *,
    study_uid: str | None = None,
    origin: str | None = None,
) -> StowResult:
    """Store each ``application/dicom`` part; other media types and wrong-study instances fail."""
    result = StowResult()
    for part in parts:
        if part.content_type not in ACCEPTED_TYPES:
            rej = IngestRejection(
                Status.REFUSED_SOP_CLASS_NOT_SUPPORTED,
                f"Part media type {part.content_type or 'missing'!r} is not supported; "
                "send application/dicom.",
            )
            result.outcomes.append(store.reject(part.body, rej, source="stow", origin=origin))
            continue
        result.outcomes.append(
            store.store_bytes(part.body, source="stow", origin=origin, required_study_uid=study_uid)
        )
    return result
