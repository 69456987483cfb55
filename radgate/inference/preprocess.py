"""DICOM image to model input: display rendering (Modality LUT, VOI, MONOCHROME1), resize, normalise.

The rendering is :func:`radgate.imaging.to_display` (PS3.3 C.11: Modality LUT, then the first VOI LUT item or
the first window, else the image range; MONOCHROME1 inverted), which agrees with DCMTK's ``dcmj2pnm``
(``tests/test_inference_preprocess.py`` compares them); training uses the same function, so the model sees
at run time what it saw in training.
"""

from __future__ import annotations

import numpy as np
from pydicom.dataset import Dataset

from radgate.imaging import DisplayImage, resize_area, to_display
from radgate.models.manifest import Preprocessing

__all__ = ["preprocess", "to_tensor"]


def to_tensor(display: DisplayImage, prep: Preprocessing) -> np.ndarray:
    """``[channels, height, width]`` float32 from a rendered image, per the manifest's preprocessing."""
    pixels = resize_area(display.pixels, prep.height, prep.width)
    if prep.normalisation == "zscore":
        pixels = (pixels - np.float32(prep.mean)) / np.float32(prep.std)
    tensor = np.repeat(pixels[None, :, :], prep.channels, axis=0)
    return np.ascontiguousarray(tensor, dtype=np.float32)


def preprocess(ds: Dataset, prep: Preprocessing, frame: int = 0) -> np.ndarray:
    """Render frame ``frame`` of ``ds`` and turn it into the model input ``[channels, height, width]``."""
    return to_tensor(to_display(ds, frame), prep)
