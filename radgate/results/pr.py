"""The AI result over its image: a Grayscale Softcopy Presentation State per source image (PS3.3 A.33.1).

What a viewer applies when it opens the GSPS with its image:

- Modality LUT (PS3.3 C.11.1): the source's Rescale Slope/Intercept or Modality LUT Sequence, copied;
- Softcopy VOI LUT (C.11.8): the window the model saw (``AIResult.window_center/width``), or the source's own
  VOI LUT Sequence when that is what the model saw (``voi_source == "voi_lut_sequence"``);
- Softcopy Presentation LUT (C.11.6): ``INVERSE`` for a MONOCHROME1 source, ``IDENTITY`` otherwise. highdicom
  defaults to IDENTITY whatever the source, which shows a MONOCHROME1 radiograph inverted (PS3.3 C.11.6.1:
  the Presentation LUT of a GSPS replaces the photometric interpretation's implicit inversion);
- Graphic Annotation (C.10.5) on one graphic layer ``RADGATE_AI`` (C.10.7): each finding's region as a closed
  POLYLINE and a short text label, both carrying the finding's TID 4108 tracking identifier and UID so that a
  viewer can tie the outline to the SR measurement group; for a demo model a second text object says
  "synthetic demo model - not for clinical use".

The result is the same picture :func:`radgate.imaging.to_display` computes, which ``tests/test_results_pr.py``
checks against DCMTK's ``dcmp2pgm`` rendering.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset

import radgate
from radgate.clock import utcnow
from radgate.results.content import AIFinding, AIResult
from radgate.results.identity import ResultIdentity
from radgate.results.labels import SYNTHETIC_WARNING, series_description
from radgate.results.source import SourceMismatchError, check_source, copy_anatomy, header_view, index_sources
from radgate.results.sr import closed_polygon

__all__ = ["GRAPHIC_LAYER", "PR_SERIES_NUMBER", "build_gsps", "build_gsps_all"]

PR_SERIES_NUMBER = 991
GRAPHIC_LAYER = "RADGATE_AI"
#: Yellow outlines: visible on both dark and light parts of a radiograph.
LAYER_COLOR = hd.color.CIELabColor(97.14, -21.56, 94.48)


def _lut_values(item: Dataset) -> np.ndarray:
    """LUT Data of a LUT item as uint16 (US values, or OW bytes in little-endian words)."""
    data = item.LUTData
    if isinstance(data, bytes):
        return np.frombuffer(data, dtype="<u2").astype(np.uint16)
    if isinstance(data, (int, float)):  # a one-entry LUT
        return np.asarray([data], dtype=np.uint16)
    return np.asarray(list(data), dtype=np.uint16)  # list, tuple or pydicom MultiValue


def _softcopy_lut_data(values: np.ndarray, bits: int) -> np.ndarray:
    """The source's VOI LUT entries as a Softcopy VOI LUT's: 8 or 16 bits per entry (PS3.3 C.11.8).

    An image's VOI LUT may use any depth from 8 to 16 bits (often 12: entries up to 0xFFF), but in a
    presentation state the descriptor's third value is 8 or 16, and 16-bit entries that stop at 0xFFF are
    what dciodvfy reports as "LookupTableData bad". The entries are rescaled to the 16-bit range; the
    Presentation LUT maps the VOI output's whole range to the display, so the picture is unchanged.
    """
    if bits == 8:
        return values.astype(np.uint8)
    if bits == 16:
        return values.astype(np.uint16)
    top = float(2**bits - 1)
    return np.round(np.clip(values, 0, top) * (65535.0 / top)).astype(np.uint16)


def _voi(result: AIResult, source: Dataset) -> hd.pr.SoftcopyVOILUTTransformation:
    if result.voi_source == "voi_lut_sequence":
        if not source.get("VOILUTSequence"):
            raise SourceMismatchError(
                f"voi_source is 'voi_lut_sequence' but source {source.SOPInstanceUID} "
                "has no VOI LUT Sequence."
            )
        item = source.VOILUTSequence[0]
        if int(item.LUTDescriptor[1]) < 0:
            raise SourceMismatchError(
                f"The VOI LUT of source {source.SOPInstanceUID} starts at stored value "
                f"{int(item.LUTDescriptor[1])}; highdicom encodes only non-negative first mapped values."
            )
        lut = hd.VOILUT(
            first_mapped_value=int(item.LUTDescriptor[1]),
            lut_data=_softcopy_lut_data(_lut_values(item), int(item.LUTDescriptor[2])),
            lut_explanation=str(item.get("LUTExplanation", "")) or None,
        )
        return hd.pr.SoftcopyVOILUTTransformation(voi_luts=[lut])
    return hd.pr.SoftcopyVOILUTTransformation(
        window_center=result.window_center,
        window_width=result.window_width,
        window_explanation=f"window used by {result.model_name}"[:64],
    )


def _copy_modality_lut_sequence(gsps: Dataset, source: Dataset) -> None:
    """Copy the source's Modality LUT Sequence (PS3.3 C.11.1) into the GSPS.

    highdicom copies Rescale Slope/Intercept from the referenced image but not a Modality LUT Sequence, and
    its ``ModalityLUT`` refuses a negative first mapped value, which a signed image's LUT has (pydicom's
    ``mlut_18``: LUT Descriptor 4096\\-2048\\16). The source's own item is valid as it stands.
    """
    if source.get("ModalityLUTSequence"):
        gsps.ModalityLUTSequence = copy.deepcopy(source.ModalityLUTSequence)


def _label_box(
    finding: AIFinding | None, rows: int, columns: int, line: int
) -> tuple[float, float, float, float]:
    """A text bounding box (TLHC col, row, BRHC col, row) above the region, or in the top-left corner."""
    height = max(12.0, rows / 40.0)
    width = min(float(columns), max(200.0, columns / 2.5))
    if finding is not None and finding.region is not None:
        left = min(c for c, _ in finding.region)
        top = min(r for _, r in finding.region) - height * (line + 1)
    else:
        left, top = 0.0, height * line
    left = float(np.clip(left, 0.0, columns - width))
    top = float(np.clip(top, 0.0, rows - height))
    return (left, top, left + width, top + height)


def build_gsps(
    result: AIResult,
    source: Dataset,
    identity: ResultIdentity,
    *,
    series_number: int = PR_SERIES_NUMBER,
    institution_name: str | None = None,
) -> hd.pr.GrayscaleSoftcopyPresentationState:
    """Build the GSPS that shows ``result``'s findings on ``source`` at the window the model used."""
    uid = str(source.SOPInstanceUID)
    findings = result.findings_for(uid)
    if not findings:
        raise SourceMismatchError(f"No finding of {result.model_name!r} refers to source {uid}.")
    check_source(result, source)
    view = header_view(source)
    rows, columns = int(view.Rows), int(view.Columns)
    layer = hd.pr.GraphicLayer(
        layer_name=GRAPHIC_LAYER,
        order=1,
        description=f"radgate AI findings of {result.model_name}"[:64],
        display_color=LAYER_COLOR,
    )
    graphics: list[hd.pr.GraphicObject] = []
    texts: list[hd.pr.TextObject] = []
    line = 0
    for index, finding in enumerate(result.findings):
        if finding.SOPInstanceUID != uid:
            continue
        tracking_id = f"{result.model_name} {finding.name} #{index + 1}"
        tracking_uid = identity.tracking_uid(index)
        if finding.region is not None:
            graphics.append(
                hd.pr.GraphicObject(
                    graphic_type=hd.pr.GraphicTypeValues.POLYLINE,
                    graphic_data=closed_polygon(finding.region),
                    units=hd.pr.AnnotationUnitsValues.PIXEL,
                    tracking_id=tracking_id,
                    tracking_uid=tracking_uid,
                )
            )
            box = _label_box(finding, rows, columns, 0)
        else:
            box = _label_box(None, rows, columns, line)
            line += 1
        texts.append(
            hd.pr.TextObject(
                text_value=finding.label,
                units=hd.pr.AnnotationUnitsValues.PIXEL,
                bounding_box=box,
                tracking_id=tracking_id,
                tracking_uid=tracking_uid,
            )
        )
    if result.synthetic:
        texts.append(
            hd.pr.TextObject(
                text_value=SYNTHETIC_WARNING,
                units=hd.pr.AnnotationUnitsValues.PIXEL,
                bounding_box=_label_box(None, rows, columns, line),
            )
        )
    annotation = hd.pr.GraphicAnnotation(
        referenced_images=[view],
        graphic_layer=layer,
        graphic_objects=graphics or None,
        text_objects=texts,
    )
    photometric = str(view.PhotometricInterpretation)
    shape = "INVERSE" if photometric == "MONOCHROME1" else "IDENTITY"
    now = utcnow()
    gsps = hd.pr.GrayscaleSoftcopyPresentationState(
        referenced_images=[view],
        series_instance_uid=identity.pr_series_uid,
        series_number=series_number,
        sop_instance_uid=identity.pr_sop_uid(uid),
        instance_number=identity.revision,
        manufacturer="radgate",
        manufacturer_model_name="radgate",
        software_versions=radgate.__version__,
        device_serial_number=result.model_sha256[:64],
        content_label=GRAPHIC_LAYER,
        content_description=series_description(result, "PR"),
        graphic_annotations=[annotation],
        graphic_layers=[layer],
        institution_name=institution_name,
        voi_lut_transformations=[_voi(result, view)],
        presentation_lut_transformation=hd.PresentationLUTTransformation(presentation_lut_shape=shape),
        series_description=series_description(result, "PR"),
        series_date=now.date(),
        series_time=now.time(),
    )
    copy_anatomy(gsps, view)
    _copy_modality_lut_sequence(gsps, view)
    return gsps


def build_gsps_all(
    result: AIResult,
    sources: Sequence[Dataset],
    identity: ResultIdentity,
    *,
    series_number: int = PR_SERIES_NUMBER,
    institution_name: str | None = None,
) -> list[hd.pr.GrayscaleSoftcopyPresentationState]:
    """One GSPS per source image that has a finding, in the order of ``result.source_uids``."""
    used = index_sources(result, sources)
    return [
        build_gsps(
            result, used[uid], identity, series_number=series_number, institution_name=institution_name
        )
        for uid in result.source_uids
    ]
