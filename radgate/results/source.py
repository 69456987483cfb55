"""The source images of a result: checks that they fit the result, and header-only views for the writers.

The writers never need pixel data of the source; they get a header-only copy (:func:`header_view`), cleaned
of values that are known to break them on projection radiographs:

- ``PixelSpacing`` or ``ImagerPixelSpacing`` of ``0\\0`` (written by some CR systems, e.g. pydicom-data's
  ``RG1_UNCR``) is dropped: PS3.3 C.7.6.2.1.1 makes spacing a positive number when present.
- The TID 1603 image library descriptors (PS3.16) need ``PatientOrientation`` and ``ImagerPixelSpacing``
  (TID 1604 for CT/MR needs spacing, orientation, position and slice thickness). :func:`library_view` keeps
  them when the source has valid values and otherwise leaves these modality descriptors out rather than
  invent a geometry the source does not state.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

from pydicom.dataset import Dataset

from radgate.errors import Invalid
from radgate.results.content import AIResult

__all__ = [
    "SourceMismatchError",
    "check_source",
    "copy_anatomy",
    "header_view",
    "index_sources",
    "library_view",
]

_PIXEL_GROUPS = {0x7FE0}
_PROJECTION = {"CR", "DX", "IO", "MG", "PX", "RF", "RG", "XA"}
_CROSS_SECTIONAL = {"CT", "MR", "PT"}


class SourceMismatchError(Invalid, ValueError):
    """The source images do not fit the AI result (missing, other study, not grayscale, region outside)."""


def _valid_spacing(value: object) -> bool:
    try:
        numbers = [float(v) for v in value]  # type: ignore[attr-defined]
    except (TypeError, ValueError):
        return False
    return len(numbers) == 2 and all(n > 0 for n in numbers)


#: Type 2 attributes of the Patient (PS3.3 C.7.1.1) and General Study (C.7.2.1) modules that the writers
#: copy into every object: a source that omits one gets it empty, which is what type 2 allows.
TYPE2_PATIENT_STUDY = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)


def header_view(ds: Dataset) -> Dataset:
    """A deep copy of ``ds`` without pixel data or overlay data, with zero spacings dropped and the
    type 2 patient and study attributes present (empty when the source omits them)."""
    view = Dataset()
    for elem in ds:
        if elem.tag.group in _PIXEL_GROUPS:
            continue
        if 0x6000 <= elem.tag.group <= 0x60FF and elem.tag.element == 0x3000:  # Overlay Data
            continue
        view.add(copy.deepcopy(elem))
    for keyword in ("PixelSpacing", "ImagerPixelSpacing"):
        if keyword in view and not _valid_spacing(view[keyword].value):
            del view[keyword]
    for keyword in TYPE2_PATIENT_STUDY:
        if keyword not in view:
            setattr(view, keyword, "")
    return view


def library_view(ds: Dataset) -> Dataset:
    """A header view for highdicom's TID 1600 image library, modality descriptors only when well-defined."""
    view = header_view(ds)
    modality = str(view.get("Modality", ""))
    orientation = view.get("PatientOrientation")
    if modality in _PROJECTION:
        complete = "ImagerPixelSpacing" in view and orientation is not None and len(orientation) == 2
    elif modality in _CROSS_SECTIONAL:
        complete = all(
            k in view
            for k in ("PixelSpacing", "ImageOrientationPatient", "ImagePositionPatient", "SliceThickness")
        )
    else:
        complete = True
    if not complete:
        # highdicom chooses the TID 1603/1604 descriptors by Modality; the Modality *item* of the library
        # entry comes from the SOP Class, so this view only switches off descriptors the source cannot fill.
        view.Modality = "OT"
    return view


def index_sources(result: AIResult, sources: Sequence[Dataset]) -> dict[str, Dataset]:
    """Map SOP Instance UID -> source dataset, checking that the sources fit ``result``.

    Raises :class:`SourceMismatchError` naming the UID and the problem when a finding's image is missing,
    the images span several studies, an image is not single-sample grayscale, or a region lies outside
    its image.
    """
    by_uid = {str(ds.SOPInstanceUID): ds for ds in sources}
    missing = [uid for uid in result.source_uids if uid not in by_uid]
    if missing:
        raise SourceMismatchError(
            f"Findings refer to SOPInstanceUID(s) {', '.join(missing)} that are not among the "
            f"{len(by_uid)} source image(s) given."
        )
    used = {uid: by_uid[uid] for uid in result.source_uids}
    studies = {str(ds.StudyInstanceUID) for ds in used.values()}
    if len(studies) != 1:
        raise SourceMismatchError(
            f"Source images belong to {len(studies)} studies ({', '.join(sorted(studies))}); "
            "one AI result covers one study."
        )
    for ds in used.values():
        check_source(result, ds)
    return used


def check_source(result: AIResult, ds: Dataset) -> None:
    """Check one source image against the findings that refer to it (grayscale; regions inside the image)."""
    uid = str(ds.SOPInstanceUID)
    photometric = str(ds.get("PhotometricInterpretation", ""))
    if int(ds.get("SamplesPerPixel", 1)) != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise SourceMismatchError(
            f"Source {uid} has PhotometricInterpretation {photometric!r}; "
            "expected single-sample MONOCHROME1 or MONOCHROME2."
        )
    rows, columns = int(ds.Rows), int(ds.Columns)
    for finding in result.findings_for(uid):
        if finding.region is None:
            continue
        for col, row in finding.region:
            if col > columns or row > rows:
                raise SourceMismatchError(
                    f"Region of {finding.name!r} has point ({col}, {row}) outside source {uid} "
                    f"({columns} columns x {rows} rows; PS3.3 C.10.5.1.2 pixel coordinates)."
                )


def copy_anatomy(target: Dataset, source: Dataset) -> None:
    """Copy Body Part Examined and Laterality of the source into a derived object's General Series.

    PS3.3 C.7.3.1: Laterality is Type 2C, required for paired body parts; dciodvfy evaluates the condition on
    Body Part Examined, so a derived object (GSPS, SC) states both as its source does.
    """
    for keyword in ("BodyPartExamined", "Laterality"):
        if keyword in source and source[keyword].value:
            target[keyword] = copy.deepcopy(source[keyword])
    if "BodyPartExamined" not in target and "Laterality" not in target:
        target.Laterality = ""  # body part unknown, so whether it is paired is unknown: laterality unknown
