"""Model inputs prepared while a series is still arriving, so that completion leaves only inference to do.

A series completes after a quiet period (30 s by default) or when its expected count is met; its images have
been on disk since they were acknowledged. The pixel checker decodes each of them once anyway, so it also
renders the model input for every active deployment's preprocessing (:class:`TensorPrewarmer`) and keeps it
here. When the engine prepares a job it takes a cached tensor if there is one and renders the image itself
otherwise; the tensor is identical either way (same :func:`radgate.inference.preprocess.to_tensor`).

Files: ``DATA_DIR/tensors/<signature>/<SOPInstanceUID>.<sha256[:16]>.npy``. The signature hashes the
preprocessing table and :data:`RENDERING_VERSION`, so a change of either never serves a stale tensor; the
instance's content hash in the name keeps a revision of an instance from using its predecessor's tensor.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
import uuid
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset
from sqlalchemy import select

from radgate.db import Database, Instance
from radgate.imaging import to_display
from radgate.imaging.decode import DEFAULT_MAX_DECODED_BYTES
from radgate.inference.preprocess import to_tensor
from radgate.models import get_model
from radgate.models.manifest import Preprocessing
from radgate.routing.tables import DeploymentRow

__all__ = ["RENDERING_VERSION", "TensorCache", "TensorPrewarmer", "preprocessing_signature"]

log = logging.getLogger(__name__)

#: Bump when radgate.imaging's rendering changes in a way that changes tensors.
RENDERING_VERSION = 1


def preprocessing_signature(prep: Preprocessing) -> str:
    text = json.dumps({"rendering": RENDERING_VERSION, **dataclasses.asdict(prep)}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


class TensorCache:
    def __init__(self, data_dir: Path) -> None:
        self.root = Path(data_dir) / "tensors"

    def path(self, prep: Preprocessing, SOPInstanceUID: str, sha256: str) -> Path:
        return self.root / preprocessing_signature(prep) / f"{SOPInstanceUID}.{sha256[:16]}.npy"

    def get(self, prep: Preprocessing, SOPInstanceUID: str, sha256: str) -> np.ndarray | None:
        path = self.path(prep, SOPInstanceUID, sha256)
        try:
            tensor = np.load(path, allow_pickle=False)
        except (OSError, ValueError):
            return None
        expected = (prep.channels, prep.height, prep.width)
        return tensor if tensor.shape == expected and tensor.dtype == np.float32 else None

    def put(self, prep: Preprocessing, SOPInstanceUID: str, sha256: str, tensor: np.ndarray) -> Path:
        """Write atomically (temporary file, then rename): a reader never sees half a tensor."""
        path = self.path(prep, SOPInstanceUID, sha256)
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{uuid.uuid4().hex}.tmp.npy")
        np.save(tmp, np.ascontiguousarray(tensor, dtype=np.float32), allow_pickle=False)
        os.replace(tmp, path)
        return path


class TensorPrewarmer:
    """Called with each decoded instance (by the pixel checker): renders the inputs of active deployments.

    The image is decoded (or its array already decoded by the checker reused) through
    :func:`radgate.imaging.decode.decode_pixels`, bounded by ``max_decoded_bytes``: a broken image raises
    :class:`~radgate.imaging.decode.DecodeError`, never a decoder's panic.
    """

    def __init__(
        self, db: Database, data_dir: Path, *, max_decoded_bytes: int = DEFAULT_MAX_DECODED_BYTES
    ) -> None:
        self.db = db
        self.cache = TensorCache(data_dir)
        self.max_decoded_bytes = max_decoded_bytes

    def active_preprocessing(self) -> list[Preprocessing]:
        with self.db.session() as s:
            rows = s.scalars(select(DeploymentRow).where(DeploymentRow.mode != "off")).all()
            preps: dict[str, Preprocessing] = {}
            for row in rows:
                prep = get_model(s, row.model_name, row.model_version).manifest.preprocessing
                preps[preprocessing_signature(prep)] = prep
        return list(preps.values())

    def __call__(self, instance: Instance, ds: Dataset) -> None:
        if "PixelData" not in ds or str(ds.get("PhotometricInterpretation", "")) not in (
            "MONOCHROME1",
            "MONOCHROME2",
        ):
            return
        preps = self.active_preprocessing()
        if not preps:
            return
        display = to_display(ds, max_bytes=self.max_decoded_bytes)
        for prep in preps:
            self.cache.put(prep, instance.SOPInstanceUID, instance.sha256, to_tensor(display, prep))
