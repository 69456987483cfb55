"""Sample inputs for the result writers: a synthetic chest radiograph and an AI result on it.

For tests and benchmarks only. The image is a smooth synthetic phantom (no patient data; the names say
SYNTHETIC); the result is what the demo model's engine would hand over (:class:`radgate.results.AIResult`).
"""

from __future__ import annotations

import hashlib

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.sr.codedict import codes
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from radgate.results.content import AIFinding, AIResult, Concept

__all__ = ["DX_STORAGE", "LUNG", "PNEUMOTHORAX", "chest_dx", "example_result"]

DX_STORAGE = UID("1.2.840.10008.5.1.4.1.1.1.1")  # Digital X-Ray Image Storage - For Presentation
PNEUMOTHORAX = Concept.from_code(codes.SCT.Pneumothorax)  # SCT 36118008
LUNG = Concept("39607008", "SCT", "Lung structure")


def chest_dx(
    *,
    study_uid: str | None = None,
    rows: int = 256,
    columns: int = 224,
    photometric: str = "MONOCHROME2",
    seed: int = 0,
) -> Dataset:
    """A synthetic 12-bit DX chest phantom with the header a real detector writes (ImagerPixelSpacing,
    PatientOrientation, a window), MONOCHROME1 or MONOCHROME2."""
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"photometric {photometric!r} must be MONOCHROME1 or MONOCHROME2.")
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:rows, 0:columns].astype(np.float64)
    body = np.exp(-(((x - columns / 2) / (columns * 0.42)) ** 4 + ((y - rows / 2) / (rows * 0.48)) ** 4))
    lungs = sum(
        np.exp(-(((x - cx) / (columns * 0.16)) ** 2 + ((y - rows * 0.45) / (rows * 0.28)) ** 2))
        for cx in (columns * 0.3, columns * 0.7)
    )
    attenuation = 3000 * body - 1500 * lungs + rng.normal(0, 40, (rows, columns))
    stored = np.clip(attenuation + 600, 0, 4095)
    if photometric == "MONOCHROME1":
        stored = 4095 - stored  # more attenuation = whiter on display, so lower stored values
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.MediaStorageSOPClassUID = DX_STORAGE
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.SOPClassUID = DX_STORAGE
    ds.StudyInstanceUID = study_uid or generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.PatientName = "SYNTHETIC^PHANTOM"
    ds.PatientID = "SYN-RESULTS"
    ds.PatientBirthDate = "19700101"
    ds.PatientSex = "O"
    ds.StudyDate = "20260101"
    ds.StudyTime = "120000"
    ds.StudyID = "1"
    ds.AccessionNumber = "SYNACC1"
    ds.ReferringPhysicianName = ""
    ds.Modality = "DX"
    ds.BodyPartExamined = "CHEST"
    ds.ViewPosition = "PA"
    ds.PatientOrientation = ["L", "F"]
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PresentationIntentType = "FOR PRESENTATION"
    ds.Manufacturer = "SYNTHVENDOR"
    ds.SeriesNumber = 1
    ds.InstanceNumber = 1
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = rows, columns
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.RescaleIntercept = 0
    ds.RescaleSlope = 1
    ds.RescaleType = "US"
    ds.WindowCenter = 2048
    ds.WindowWidth = 4096
    ds.ImagerPixelSpacing = [0.2, 0.2]
    ds.PixelData = stored.astype(np.uint16).tobytes()
    return ds


def example_result(
    sources: list[Dataset],
    *,
    region: bool = True,
    present: bool = True,
    synthetic: bool = True,
    window: tuple[float, float] = (1800.0, 2400.0),
    explanation: bool = False,
) -> AIResult:
    """A pneumothorax result of the demo model on each source: probability 0.83 (present) or 0.12, with a
    rectangle over the upper right lung (image left) as region."""
    findings = []
    for ds in sources:
        rows, columns = int(ds.Rows), int(ds.Columns)
        box = (
            (columns * 0.18, rows * 0.2),
            (columns * 0.42, rows * 0.2),
            (columns * 0.42, rows * 0.55),
            (columns * 0.18, rows * 0.55),
        )
        findings.append(
            AIFinding(
                name="Pneumothorax",
                finding_type=PNEUMOTHORAX,
                finding_site=LUNG,
                probability=0.83 if present else 0.12,
                threshold=0.42,
                operating_point="high-sensitivity",
                present=present,
                SOPInstanceUID=str(ds.SOPInstanceUID),
                region=box if region else None,
            )
        )
    explanations = {}
    if explanation:
        yy, xx = np.mgrid[0:64, 0:64]
        heat = np.exp(-((xx - 19) ** 2 + (yy - 24) ** 2) / 120.0)
        explanations = {f.SOPInstanceUID: heat for f in findings}
    return AIResult(
        model_name="radgate-demo-ptx",
        model_version="1.0.0",
        model_sha256=hashlib.sha256(b"radgate-demo-ptx 1.0.0").hexdigest(),
        synthetic=synthetic,
        task="triage",
        findings=tuple(findings),
        window_center=window[0],
        window_width=window[1],
        voi_source="window",
        explanations=explanations,
    )
