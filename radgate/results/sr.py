"""The AI result as a Comprehensive 3D SR with a TID 1500 Measurement Report (PS3.16), per IHE AI Results.

Content tree, built only from highdicom's SR template classes::

    TID 1500 Imaging Measurement Report (DCM 126000)
    ├─ Language of Content Item and Descendants (TID 1204, English)
    ├─ Observation Context (TID 1001): device observer (TID 1004) = radgate running the model:
    │     UID derived from the model's SHA-256, name "radgate", model name+version, serial = model SHA-256
    ├─ Procedure reported: the source's Procedure Code, else (SCT 363679005 "Imaging procedure")
    ├─ Image Library (TID 1600): each source image with its TID 1602/1603 descriptors
    └─ Imaging Measurements: per finding one measurement group
          TID 1410 (Planar ROI, when the finding has a region) or TID 1501 (image-level), with
          ├─ Tracking Identifier + Tracking UID (TID 4108)
          ├─ Finding (DCM 121071) = the finding type; Finding Site (SCT 363698007) = the site
          ├─ Algorithm Identification (TID 4019): name, version, parameters (operating point,
          │     threshold, task, model SHA-256, and the synthetic-model warning for a demo model)
          ├─ Measurement (TID 300): Probability (DCM 122157), unit UCUM "1" (no units)
          ├─ Qualitative evaluation: <finding type> = Present (SCT 52101004) / Absent (SCT 272519000)
          ├─ (a revision written on a read) the radiologist's read, dismissal reason and free text
          │     (:mod:`radgate.results.review`)
          └─ Image Region (SCOORD POLYLINE, closed) selected from the source image (TID 1410), or the
             source image itself as "Source of Measurement" (TID 1501)

Document attributes: CompletionFlag COMPLETE; VerificationFlag UNVERIFIED and PreliminaryFlag PRELIMINARY
(no radiologist has signed it off), VERIFIED and FINAL for a signed revision. The study is the source's
study, the series is new (:class:`radgate.results.identity.ResultIdentity`); a revised report lists its
predecessor in the Predecessor Documents Sequence (PS3.3 C.17.2.3).

Validation: dciodvfy and PixelMed's ``DicomSRValidator`` report no errors (``tests/test_results_sr.py``).
One known false positive of PixelMed (2022-06 release): when exactly one measurement group of a report has
an image region and another has none, PixelMed applies TID 1410 to every group and reports the region-less
one as missing its Image Region; the encoding follows PS3.16 (TID 1500 row 6 allows TID 1410 and TID 1501
groups side by side).
"""

from __future__ import annotations

from collections.abc import Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

import radgate
from radgate.clock import utcnow
from radgate.results.content import AIFinding, AIResult
from radgate.results.identity import ResultIdentity, derived_uid
from radgate.results.labels import SYNTHETIC_WARNING, series_description
from radgate.results.review import ReviewOutcome, review_items
from radgate.results.source import header_view, index_sources, library_view

__all__ = [
    "ABSENT",
    "NO_UNITS",
    "PRESENT",
    "PROBABILITY",
    "SR_SERIES_NUMBER",
    "algorithm_identification",
    "build_sr",
    "closed_polygon",
]

#: DCM 122157 "Probability" (PS3.16 Annex D), the value of a NUM item with unit UCUM "1".
PROBABILITY = Code("122157", "DCM", "Probability")
#: UCUM "1": a dimensionless number (CID 7181 "no units").
NO_UNITS = Code("1", "UCUM", "no units")
PRESENT = codes.SCT.Present  # 52101004
ABSENT = Code("272519000", "SCT", "Absent")
IMAGING_PROCEDURE = codes.SCT.ImagingProcedure  # 363679005, CID 100

SR_SERIES_NUMBER = 990


def algorithm_identification(result: AIResult, finding: AIFinding) -> hd.sr.AlgorithmIdentification:
    """TID 4019 Algorithm Identification: the model, its operating point, and the warning for a demo model."""
    parameters = [
        f"operating point: {finding.operating_point}",
        f"threshold: {finding.threshold:.6g}",
        f"task: {result.task}",
        f"model sha256: {result.model_sha256}",
    ]
    if result.synthetic:
        parameters.append(SYNTHETIC_WARNING)
    return hd.sr.AlgorithmIdentification(
        name=result.model_name,
        version=result.model_version,
        parameters=parameters,
    )


def _observation_context(result: AIResult) -> hd.sr.ObservationContext:
    device = hd.sr.DeviceObserverIdentifyingAttributes(
        uid=derived_uid("device", result.model_sha256),
        name="radgate",
        manufacturer_name="radgate (open source)",
        model_name=f"{result.model_name} {result.model_version}",
        serial_number=result.model_sha256,
    )
    return hd.sr.ObservationContext(
        observer_device_context=hd.sr.ObserverContext(
            observer_type=codes.cid270.Device,
            observer_identifying_attributes=device,
        )
    )


def _procedures(sources: Sequence[Dataset]) -> list[Code | hd.sr.CodedConcept]:
    procedures: list[Code | hd.sr.CodedConcept] = []
    for ds in sources:
        for item in ds.get("ProcedureCodeSequence", []):
            try:
                concept = hd.sr.CodedConcept.from_dataset(item)
            except (AttributeError, ValueError, TypeError):
                continue  # a malformed procedure code at the source is not ours to repeat
            if concept not in procedures:
                procedures.append(concept)
    return procedures or [IMAGING_PROCEDURE]


def closed_polygon(region: tuple[tuple[float, float], ...]) -> np.ndarray:
    """The region as an (N + 1, 2) array of (column, row) whose last vertex repeats the first (a closed
    POLYLINE, PS3.3 C.18.6.1.2 and C.10.5.1.2)."""
    return np.asarray(region + (region[0],), dtype=np.float32)


def _measurement_group(
    result: AIResult,
    finding: AIFinding,
    index: int,
    source: Dataset,
    identity: ResultIdentity,
    review: ReviewOutcome | None = None,
) -> hd.sr.MeasurementsAndQualitativeEvaluations | hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations:
    tracking = hd.sr.TrackingIdentifier(
        uid=identity.tracking_uid(index),
        identifier=f"{result.model_name} {finding.name} #{index + 1}",
    )
    probability = hd.sr.Measurement(
        name=PROBABILITY,
        value=finding.probability,
        unit=NO_UNITS,
        referenced_images=[hd.sr.SourceImageForMeasurement.from_source_image(source)],
    )
    evaluations = [
        hd.sr.QualitativeEvaluation(
            name=finding.finding_type.to_code(),
            value=PRESENT if finding.present else ABSENT,
        )
    ]
    texts: list[hd.sr.TextContentItem] = []
    if review is not None and review.finding == finding.name:  # the read (radgate.results.review)
        read, texts = review_items(review)
        evaluations += read
    sites = (
        [hd.sr.FindingSite(anatomic_location=finding.finding_site.to_code())]
        if finding.finding_site is not None
        else None
    )
    finding_type = finding.finding_type.to_code()
    algorithm = algorithm_identification(result, finding)
    if finding.region is not None:
        region = hd.sr.ImageRegion(
            graphic_type=hd.sr.GraphicTypeValues.POLYLINE,
            graphic_data=closed_polygon(finding.region),
            source_image=hd.sr.SourceImageForRegion.from_source_image(source),
        )
        group: (
            hd.sr.MeasurementsAndQualitativeEvaluations | hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations
        ) = hd.sr.PlanarROIMeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking,
            referenced_region=region,
            finding_type=finding_type,
            algorithm_id=algorithm,
            finding_sites=sites,
            measurements=[probability],
            qualitative_evaluations=evaluations,
        )
    else:
        group = hd.sr.MeasurementsAndQualitativeEvaluations(
            tracking_identifier=tracking,
            finding_type=finding_type,
            algorithm_id=algorithm,
            finding_sites=sites,
            measurements=[probability],
            qualitative_evaluations=evaluations,
            source_images=[hd.sr.SourceImageForMeasurementGroup.from_source_image(source)],
        )
    for text in texts:  # TEXT qualitative evaluations: highdicom's class takes CODE ones only
        group[0].ContentSequence.append(text)
    return group


def build_sr(
    result: AIResult,
    sources: Sequence[Dataset],
    identity: ResultIdentity,
    *,
    series_number: int = SR_SERIES_NUMBER,
    institution_name: str | None = None,
    verifying_observer_name: str | None = None,
    verifying_organization: str | None = None,
    review: ReviewOutcome | None = None,
) -> hd.sr.Comprehensive3DSR:
    """Build the TID 1500 Comprehensive 3D SR of ``result`` on ``sources`` (the images of one study).

    ``identity`` fixes every UID (same result, same UIDs) and the revision; revision > 1 lists the previous
    revision as predecessor. Raises :class:`radgate.results.source.SourceMismatchError` when ``sources`` do
    not fit the findings, and highdicom's ``ValueError`` / ``TypeError`` if a value cannot be encoded.

    The AI's own report is UNVERIFIED. A revised report that a radiologist signed off passes
    ``verifying_observer_name`` (PN, e.g. ``"Doe^Jane"``) and ``verifying_organization``: it is then VERIFIED
    and FINAL (PS3.3 C.17.2.1: the Verifying Observer Sequence names who is accountable for its content);
    ``review`` (:class:`radgate.results.review.ReviewOutcome`) adds the read itself to its finding's group.
    """
    verified = verifying_observer_name is not None or verifying_organization is not None
    if verified and not (verifying_observer_name and verifying_organization):
        raise ValueError(
            f"A verified report needs both verifying_observer_name ({verifying_observer_name!r}) and "
            f"verifying_organization ({verifying_organization!r})."
        )
    used = index_sources(result, sources)
    images = list(used.values())
    groups = [
        _measurement_group(result, finding, index, used[finding.SOPInstanceUID], identity, review)
        for index, finding in enumerate(result.findings)
    ]
    report = hd.sr.MeasurementReport(
        observation_context=_observation_context(result),
        procedure_reported=_procedures(images),
        imaging_measurements=groups,
        referenced_images=[library_view(ds) for ds in images],
    )
    evidence = [header_view(ds) for ds in images]
    study_uid = str(evidence[0].StudyInstanceUID)
    predecessor = identity.predecessor(study_uid)
    now = utcnow()
    sr = hd.sr.Comprehensive3DSR(
        evidence=evidence,
        content=report,
        series_instance_uid=identity.sr_series_uid,
        series_number=series_number,
        sop_instance_uid=identity.sr_sop_uid,
        instance_number=identity.revision,
        manufacturer="radgate",
        manufacturer_model_name="radgate",
        software_versions=radgate.__version__,
        institution_name=institution_name,
        is_complete=True,
        is_final=verified,
        is_verified=verified,
        verifying_observer_name=verifying_observer_name,
        verifying_organization=verifying_organization,
        previous_versions=[predecessor.to_dataset()] if predecessor is not None else None,
        series_description=series_description(result, "SR"),
        series_date=now.date(),
        series_time=now.time(),
        content_date=now.date(),
        content_time=now.time(),
    )
    return sr
