"""Builders shared by the models, routing, inference and engine tests (this module holds no tests itself).

- :func:`tiny_onnx` builds a small ONNX graph with the ``onnx`` package: ``probability`` is a sigmoid of the
  image's mean brightness inside a fixed square (the "lesion" window), ``cam`` is that weighted image pooled
  8x8. It is small, deterministic, and its answers can be worked out by hand.
- :func:`make_dx` builds a digital X-ray dataset with pydicom (headers chosen per test, pixels synthetic).
- :func:`index_series` writes datasets into the instance store and the index the way ingest and assembly
  do (studies, series marked complete, instances with their header features), so engine tests do not
  depend on the network edge.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid

from radgate.config import Settings
from radgate.db import Database, Instance, Series, Study
from radgate.models import Manifest, write_package
from radgate.routing import features_from_dataset

DX_SOP_CLASS = UID("1.2.840.10008.5.1.4.1.1.1.1")  # Digital X-Ray Image Storage - For Presentation
SIZE = 32  # model input height = width
LESION = (slice(4, 12), slice(4, 12))  # the square the tiny model looks at, in model-input pixels


def tiny_onnx(size: int = SIZE, with_cam: bool = True, batch: int | str = "N", gain: float = 12.0) -> bytes:
    """``probability = sigmoid(gain * (mean(image[LESION]) - 0.5))``; ``cam = avgpool8(image * mask)``."""
    mask = np.zeros((1, 1, size, size), dtype=np.float32)
    mask[(0, 0, *LESION)] = 1.0
    weight = mask / mask.sum()
    nodes = [
        helper.make_node("Mul", ["image", "weight"], ["weighted"]),
        helper.make_node("ReduceSum", ["weighted", "axes"], ["mean"], keepdims=0),
        helper.make_node("Sub", ["mean", "half"], ["centred"]),
        helper.make_node("Mul", ["centred", "gain"], ["logit"]),
        helper.make_node("Sigmoid", ["logit"], ["probability"]),
    ]
    outputs = [helper.make_tensor_value_info("probability", TensorProto.FLOAT, [batch])]
    inits = [
        numpy_helper.from_array(weight, "weight"),
        numpy_helper.from_array(np.array([1, 2, 3], dtype=np.int64), "axes"),
        numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"),
        numpy_helper.from_array(np.array(gain, dtype=np.float32), "gain"),
    ]
    if with_cam:
        nodes += [
            helper.make_node("Mul", ["image", "mask"], ["masked"]),
            helper.make_node("AveragePool", ["masked"], ["pooled"], kernel_shape=[8, 8], strides=[8, 8]),
            helper.make_node("Squeeze", ["pooled", "channel"], ["cam"]),
        ]
        inits += [
            numpy_helper.from_array(mask, "mask"),
            numpy_helper.from_array(np.array([1], dtype=np.int64), "channel"),
        ]
        outputs.append(helper.make_tensor_value_info("cam", TensorProto.FLOAT, [batch, size // 8, size // 8]))
    graph = helper.make_graph(
        nodes, "tiny", [helper.make_tensor_value_info("image", TensorProto.FLOAT, [batch, 1, size, size])],
        outputs, inits,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    return model.SerializeToString()


def manifest_dict(name: str = "tiny-ptx", version: str = "1.0.0", with_cam: bool = True) -> dict[str, Any]:
    """A complete manifest as TOML data, for an adult PA/AP chest radiograph model."""
    outputs: dict[str, Any] = {"probability": {"kind": "probability", "meaning": "P(pneumothorax)",
                                               "calibrated": False}}
    if with_cam:
        outputs["cam"] = {"kind": "class_activation_map"}
    return {
        "schema_version": 1,
        "model": {"name": name, "version": version, "task": "triage",
                  "description": "Tiny test model", "licence": "Apache-2.0", "synthetic_training_data": True},
        "findings": [{"name": "pneumothorax", "output": "probability",
                      "code": {"scheme": "SCT", "value": "36118008", "meaning": "Pneumothorax"},
                      "site": {"scheme": "SCT", "value": "39607008", "meaning": "Lung structure"}}],
        "intended_use": {"modalities": ["CR", "DX"], "sop_classes": [DX_SOP_CLASS, "1.2.840.10008.5.1.4.1.1.1"],
                         "body_parts": ["CHEST"], "views": ["PA", "AP"], "age_min": 18, "age_max": 120,
                         "sexes": ["F", "M", "O"], "summary": "Adult PA/AP chest radiographs"},
        "preprocessing": {"height": SIZE, "width": SIZE, "channels": 1},
        "outputs": outputs,
        "operating_points": [
            {"name": "high-sensitivity", "threshold": 0.3, "sensitivity": 0.95, "specificity": 0.6},
            {"name": "balanced", "threshold": 0.5, "sensitivity": 0.85, "specificity": 0.85},
        ],
        "validated_subgroups": {"ViewPosition": ["PA", "AP"]},
        "training_data": {"summary": "synthetic phantoms", "n_images": 10, "profiles": ["vendor-a"]},
        "weights": {"file": "model.onnx", "sha256": "0" * 64},
    }


def build_package(dest: Path, name: str = "tiny-ptx", version: str = "1.0.0", with_cam: bool = True,
                  as_zip: bool = False, weights: bytes | None = None) -> Path:
    manifest = Manifest.from_dict(manifest_dict(name, version, with_cam))
    write_package(dest, manifest, weights if weights is not None else tiny_onnx(with_cam=with_cam),
                  f"# {name} {version}\n\nA tiny test model. Synthetic, not for clinical use.\n", as_zip=as_zip)
    return dest


def make_dx(
    view: str = "PA",
    age: str | None = "045Y",
    sex: str = "M",
    body_part: str = "CHEST",
    modality: str = "DX",
    bright_lesion: bool = False,
    photometric: str = "MONOCHROME2",
    rows: int = 64,
    StudyInstanceUID: str | None = None,
    SeriesInstanceUID: str | None = None,
) -> Dataset:
    """A 64x64, 12-bit DX image; ``bright_lesion`` makes the model's lesion square bright (high score)."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = DX_SOP_CLASS
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SOPClassUID = DX_SOP_CLASS
    ds.StudyInstanceUID = StudyInstanceUID or generate_uid()
    ds.SeriesInstanceUID = SeriesInstanceUID or generate_uid()
    ds.Modality = modality
    ds.BodyPartExamined = body_part
    ds.ViewPosition = view
    if age is not None:
        ds.PatientAge = age
    ds.PatientSex = sex
    ds.PatientName = "Synthetic^Test"
    ds.PatientID = "SYN0001"
    ds.StudyDate = "20260101"
    ds.SeriesDescription = f"CHEST {view}"
    ds.Manufacturer = "SynthVendor"
    ds.InstanceNumber = 1
    ds.SeriesNumber = 1
    ds.Rows = ds.Columns = rows
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.BitsAllocated = 16
    ds.BitsStored = 12
    ds.HighBit = 11
    ds.PixelRepresentation = 0
    ds.WindowCenter = 2048
    ds.WindowWidth = 4096
    rng = np.random.default_rng(abs(hash(ds.SOPInstanceUID)) % 2**32)
    pixels = rng.integers(900, 1100, size=(rows, rows)).astype(np.uint16)
    if bright_lesion:
        scale = rows // SIZE
        lesion = (slice(LESION[0].start * scale, LESION[0].stop * scale),
                  slice(LESION[1].start * scale, LESION[1].stop * scale))
        pixels[lesion] = 3900
    if photometric == "MONOCHROME1":
        pixels = (4095 - pixels).astype(np.uint16)
    ds.PixelData = pixels.tobytes()
    return ds


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


def index_series(db: Database, settings: Settings, datasets: list[Dataset], status: str = "complete") -> str:
    """Store ``datasets`` (one series) in the instance store and the index, as assembly would leave them."""
    first = datasets[0]
    now = utcnow()
    store = Path(settings.store_dir)
    with db.session() as s:
        if s.get(Study, first.StudyInstanceUID) is None:
            s.add(Study(StudyInstanceUID=first.StudyInstanceUID, StudyDate=first.get("StudyDate"), status=status,
                        num_instances=len(datasets), first_received=now, last_received=now, completed_at=now))
            s.flush()  # no ORM relationship orders the inserts: the study must exist before its series
        s.add(Series(SeriesInstanceUID=first.SeriesInstanceUID, StudyInstanceUID=first.StudyInstanceUID,
                     Modality=first.Modality, SeriesDescription=first.get("SeriesDescription"),
                     num_instances=len(datasets), status=status, first_received=now, last_received=now,
                     completed_at=now))
        for ds in datasets:
            rel = Path(ds.StudyInstanceUID) / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"
            (store / rel).parent.mkdir(parents=True, exist_ok=True)
            ds.save_as(store / rel, enforce_file_format=True)
            data = (store / rel).read_bytes()
            features = features_from_dataset(ds)
            s.add(Instance(
                SOPInstanceUID=ds.SOPInstanceUID, revision=1, SOPClassUID=ds.SOPClassUID,
                StudyInstanceUID=ds.StudyInstanceUID, SeriesInstanceUID=ds.SeriesInstanceUID,
                InstanceNumber=int(ds.InstanceNumber), TransferSyntaxUID=str(ds.file_meta.TransferSyntaxUID),
                path=rel.as_posix(), size=len(data), sha256=hashlib.sha256(data).hexdigest(), received_at=now,
                source="import",
                **{k: v for k, v in features.items() if k not in ("SOPClassUID", "SeriesDescription")},
            ))
    return str(first.SeriesInstanceUID)
