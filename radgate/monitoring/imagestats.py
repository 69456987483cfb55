"""Image statistics for ``input_drift``: computed once per image, where the engine already holds its pixels.

What is measured is the model's input: the engine's tensor for the image, i.e. the DICOM image after the
display transform the model sees (:func:`radgate.imaging.to_display`: Modality LUT, the first VOI LUT item
or window, MONOCHROME1 inverted; the same rendering training used) and the area resize to the model's input
size, with any z-score normalisation of the manifest undone so that the values are display intensities in
[0, 1]. So a vendor whose stored values are inverted (MONOCHROME1) or carried through a VOI LUT is compared
on the same scale as every other, and a change the model can see is a change these numbers can see.

Per image (:class:`ImageStatistics`):

- ``p05``, ``p50``, ``p95``: intensity percentiles (``numpy.percentile``, linear interpolation);
- ``contrast``: RMS contrast, the standard deviation of the intensities;
- ``noise``: the noise standard deviation by Immerkær's estimator (J. Immerkær, "Fast Noise Variance
  Estimation", Computer Vision and Image Understanding 64(2):300-302, 1996): the image convolved with the
  difference of two Laplacians ``[[1,-2,1],[-2,4,-2],[1,-2,1]]``, whose response to locally linear
  structure is zero, gives ``sigma = sqrt(pi/2) / (6 (W-2)(H-2)) * sum |I * N|``.

The engine stores them with :func:`record_image_statistics` after it has stored the prediction (one row per
image, preprocessing and file hash: an image scored by several deployments of the same preprocessing is
measured once). Monitoring reads them as the numeric features ``image_p05`` ... ``image_noise`` of the
scored image (:data:`IMAGE_FEATURES`) and compares each period with the reference by KS or Wasserstein
(``monitoring.drift_numeric_method``) like the numeric header features.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from radgate.clock import utcnow
from radgate.db import Database
from radgate.models.manifest import Preprocessing
from radgate.monitoring.tables import ImageStatisticRow

__all__ = [
    "IMAGE_FEATURES",
    "ImageStatistics",
    "image_statistics",
    "model_input_pixels",
    "noise_sigma",
    "record_image_statistics",
]

log = logging.getLogger(__name__)

#: The monitoring feature name of each statistic (``CaseTable.numeric`` keys).
IMAGE_FEATURES: dict[str, str] = {
    "image_p05": "p05",
    "image_p50": "p50",
    "image_p95": "p95",
    "image_contrast": "contrast",
    "image_noise": "noise",
}

_KERNEL = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])


@dataclass(frozen=True)
class ImageStatistics:
    p05: float
    p50: float
    p95: float
    contrast: float
    noise: float


def noise_sigma(image: NDArray[np.floating]) -> float:
    """Immerkær's noise standard deviation of a 2-D image (see the module docstring)."""
    x = np.asarray(image, dtype=np.float64)
    h, w = x.shape
    if h < 3 or w < 3:
        return float("nan")
    response = np.zeros((h - 2, w - 2))
    for dy in range(3):
        for dx in range(3):
            response += _KERNEL[dy, dx] * x[dy : dy + h - 2, dx : dx + w - 2]
    return float(math.sqrt(math.pi / 2.0) * np.abs(response).sum() / (6.0 * (w - 2) * (h - 2)))


def image_statistics(pixels: NDArray[np.floating]) -> ImageStatistics:
    """The statistics of one 2-D image of display intensities."""
    x = np.asarray(pixels, dtype=np.float64)
    p05, p50, p95 = np.percentile(x, [5.0, 50.0, 95.0])
    return ImageStatistics(float(p05), float(p50), float(p95), float(x.std()), noise_sigma(x))


def model_input_pixels(tensor: NDArray[np.floating], prep: Preprocessing) -> NDArray[np.float64]:
    """The display intensities of a model input ``[channels, H, W]`` (channel 0, normalisation undone)."""
    pixels = np.asarray(tensor[0], dtype=np.float64)
    if prep.normalisation == "zscore":
        pixels = pixels * prep.std + prep.mean
    return pixels


def record_image_statistics(
    db: Database,
    transform: str,
    images: Sequence[tuple[str, str, NDArray[np.floating]]],
    prep: Preprocessing,
) -> int:
    """Store the statistics of ``images`` ((SOPInstanceUID, file SHA-256, model input tensor)) rendered
    with ``transform`` (the preprocessing signature) unless already stored; returns how many were added.

    Called by the engine after the prediction's commit: a failure here is logged and never loses a result.
    """
    if not images:
        return 0
    uids = [uid for uid, _, _ in images]
    try:
        with db.session() as s:
            have: set[tuple[str, str]] = set(
                (uid, sha)
                for uid, sha in s.execute(
                    select(ImageStatisticRow.SOPInstanceUID, ImageStatisticRow.sha256).where(
                        ImageStatisticRow.SOPInstanceUID.in_(uids), ImageStatisticRow.transform == transform
                    )
                )
            )
            now = utcnow()
            added = 0
            for uid, sha256, tensor in images:
                if (uid, sha256) in have:
                    continue
                have.add((uid, sha256))
                st = image_statistics(model_input_pixels(tensor, prep))
                s.add(
                    ImageStatisticRow(
                        SOPInstanceUID=uid,
                        sha256=sha256,
                        transform=transform,
                        p05=st.p05,
                        p50=st.p50,
                        p95=st.p95,
                        contrast=st.contrast,
                        noise=st.noise,
                        created_at=now,
                    )
                )
                added += 1
        return added
    except IntegrityError:  # another worker measured the same image at the same moment: its row stands
        return 0
    except Exception:
        log.exception("image statistics not stored (the prediction is; monitoring goes without them)")
        return 0
