"""The explanation map as a Secondary Capture image (PS3.3 A.8.1), clearly labelled a rough guide, not proof.

An explanation map (a class-activation map or an occlusion map) shows where the model's output was sensitive,
not where the disease is: it is a rough guide for a reader, never evidence (Rudin 2019, "Stop explaining
black box machine learning models for high stakes decisions"; Saporta et al. 2022, "Benchmarking saliency
methods for chest X-ray interpretation", Nat Mach Intell 4:867). So the heatmap is optional per deployment,
goes in its own series, and says what it is three times: burnt into the pixels ("AI heatmap: rough guide,
not proof", with the synthetic-model warning for a demo model), in Image Comments and in the Series
Description. ``BurnedInAnnotation`` is ``YES``.

The picture is the source at the model's window (:func:`radgate.imaging.to_display`), at most 1024 pixels
on its long side, with the map blended over it in matplotlib's ``inferno`` colours, opacity rising with the
map value so that low values leave the image visible.
"""

from __future__ import annotations

import highdicom as hd
import numpy as np
from pydicom.dataset import Dataset

from radgate.clock import utcnow
from radgate.imaging import resize_area, to_display
from radgate.results.content import AIResult
from radgate.results.identity import ResultIdentity
from radgate.results.labels import ROUGH_GUIDE, SYNTHETIC_WARNING, series_description
from radgate.results.source import SourceMismatchError, check_source, copy_anatomy, header_view

__all__ = ["MAX_SIDE", "SC_SERIES_NUMBER", "build_heatmap_sc", "render_heatmap"]

SC_SERIES_NUMBER = 992
MAX_SIDE = 1024
MAX_OPACITY = 0.55


def _windowed(result: AIResult, source: Dataset) -> np.ndarray:
    """The source as the model saw it: to_display with the result's window (unless a VOI LUT was used)."""
    if result.voi_source == "window":
        shown = Dataset()
        shown.update(source)
        shown.file_meta = source.file_meta
        shown.WindowCenter = result.window_center
        shown.WindowWidth = result.window_width
        if "VOILUTSequence" in shown:
            del shown.VOILUTSequence
        return to_display(shown).pixels
    return to_display(source).pixels


def render_heatmap(display: np.ndarray, heat: np.ndarray, lines: list[str]) -> np.ndarray:
    """Blend ``heat`` (2-D, [0, 1], any size) over ``display`` (2-D, [0, 1]) and burn in ``lines`` of text.

    Returns an RGB uint8 array of ``display``'s shape.
    """
    # matplotlib is imported here, not at module level: only deployments with heatmaps pay its import time.
    from matplotlib import colormaps
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    rows, columns = display.shape
    if heat.shape != display.shape:
        heat = np.clip(resize_area(heat.astype(np.float32), rows, columns), 0.0, 1.0)
    colours = colormaps["inferno"](heat)[..., :3]
    alpha = (MAX_OPACITY * heat)[..., None]
    gray = np.repeat(display[..., None], 3, axis=2)
    blended = (1.0 - alpha) * gray + alpha * colours

    figure = Figure(figsize=(columns / 100.0, rows / 100.0), dpi=100)
    canvas = FigureCanvasAgg(figure)
    axes = figure.add_axes((0.0, 0.0, 1.0, 1.0))
    axes.imshow(blended, interpolation="nearest", aspect="auto")
    axes.set_axis_off()
    size = max(8.0, rows / 45.0)
    for index, text in enumerate(lines):
        figure.text(
            0.01,
            0.99 - index * (size * 1.5) / (rows * 0.72),
            text,
            color="white",
            fontsize=size,
            va="top",
            ha="left",
            bbox={"facecolor": "black", "alpha": 0.7, "edgecolor": "none", "pad": 2},
        )
    canvas.draw()
    rgba = np.asarray(canvas.buffer_rgba())
    return np.ascontiguousarray(rgba[:rows, :columns, :3], dtype=np.uint8)


def _patient_orientation(source: Dataset) -> tuple[str, str]:
    orientation = source.get("PatientOrientation")
    if orientation is not None and len(orientation) == 2 and all(str(v) for v in orientation):
        return (str(orientation[0]), str(orientation[1]))
    if "ImageOrientationPatient" in source:
        row, column = hd.spatial.get_closest_patient_orientation(
            np.asarray(source.ImageOrientationPatient, dtype=float).reshape(2, 3).T
        )[:2]
        return (str(row.value), str(column.value))
    raise SourceMismatchError(
        f"Source {source.SOPInstanceUID} has neither PatientOrientation nor ImageOrientationPatient; "
        "a heatmap in the patient coordinate system needs one of them (PS3.3 C.7.6.1.1.1)."
    )


def build_heatmap_sc(
    result: AIResult,
    source: Dataset,
    identity: ResultIdentity,
    *,
    series_number: int = SC_SERIES_NUMBER,
) -> hd.sc.SCImage:
    """Build the labelled heatmap SC of ``result``'s explanation map over ``source``."""
    uid = str(source.SOPInstanceUID)
    if uid not in result.explanations:
        raise SourceMismatchError(f"{result.model_name!r} has no explanation map for source {uid}.")
    check_source(result, source)
    display = _windowed(result, source)
    rows, columns = display.shape
    scale = min(1.0, MAX_SIDE / max(rows, columns))
    if scale < 1.0:
        display = resize_area(display, max(2, round(rows * scale)), max(2, round(columns * scale)))
    lines = [ROUGH_GUIDE, f"{result.model_name} {result.model_version}"]
    lines += [f.label for f in result.findings_for(uid)]
    if result.synthetic:
        lines.append(SYNTHETIC_WARNING)
    pixels = render_heatmap(display, np.asarray(result.explanations[uid]), lines)

    view = header_view(source)
    now = utcnow()
    sc = hd.sc.SCImage.from_ref_dataset(
        ref_dataset=view,
        pixel_array=pixels,
        photometric_interpretation="RGB",
        bits_allocated=8,
        coordinate_system="PATIENT",
        series_instance_uid=identity.sc_series_uid,
        series_number=series_number,
        sop_instance_uid=identity.sc_sop_uid(uid),
        instance_number=identity.revision,
        manufacturer="radgate",
        patient_orientation=_patient_orientation(view),
        series_description=series_description(result, "SC"),
        series_date=now.date(),
        series_time=now.time(),
    )
    copy_anatomy(sc, view)
    sc.BurnedInAnnotation = "YES"
    sc.ImageComments = f"{ROUGH_GUIDE}. {result.model_name} {result.model_version}." + (
        f" {SYNTHETIC_WARNING}." if result.synthetic else ""
    )
    source_ref = Dataset()
    source_ref.ReferencedSOPClassUID = view.SOPClassUID
    source_ref.ReferencedSOPInstanceUID = view.SOPInstanceUID
    sc.SourceImageSequence = [source_ref]
    sc.DerivationDescription = (
        f"explanation map of {result.model_name} {result.model_version} over the source"
    )
    return sc
