"""Benchmark: the inference pipeline's overhead over raw ONNX Runtime, for a stream of completed series.

What is measured, per model, in one run:

- end-to-end: from the moment a series is marked complete (and queued, in the same transaction, by the
  engine's hook, as the assembler does) to the moment its result row is committed: job claim (or the
  hand-over to the idle worker), DICOM read and pixel decode,
  rendering and resizing, inference, CAM, writing the map, storing the result. p50 / p95 / mean.
- raw: ``onnxruntime.InferenceSession.run`` alone on the very tensors the engine built, batch 1, same
  thread settings, same process, run right after each series' result is stored (pairs see the same load).
- overhead = (end-to-end - raw) / end-to-end, at the medians; target <= 25 % for the realistic model.

Models:

- ``densenet``: MONAI's 2-D DenseNet121 (1 input channel, 224 x 224, random weights, seed 0), exported to
  ONNX by the ``train`` extra (torch, monai, onnx) with a ``probability`` output and a class activation map
  (``cam``, Zhou et al. 2016) computed from the last feature maps and the classifier weights. The export is
  cached in ``.tmp/bench/`` (git-ignored).
- ``demo``: the bundled demo package (``radgate/data/models/demo-pneumothorax/1.0.0``) when it exists.

Series arrive one at a time, each after the previous result is stored plus a short gap, so the figures are
service latency, not queueing under overload. The producer learns that a result is stored from a result
sink (after its commit), never by polling the database: polling put about 11 ms of the harness's own CPU
beside each inference it measured. Images are synthetic 12-bit DX radiographs of a realistic size
(default 2048 x 2048). Everything runs on SQLite in a temporary data directory on this machine; run
``python bench/pipeline.py --help`` for the knobs.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import statistics
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnxruntime as ort
import pydicom
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import UID, ExplicitVRLittleEndian, generate_uid
from sqlalchemy import event as sa_event
from sqlalchemy import select
from sqlalchemy.orm import Session

from radgate.assembly import SeriesCompleteHook
from radgate.config import Settings, load_settings
from radgate.db import Database, Instance, Series, Study, open_database
from radgate.engine import Engine, EngineOptions, Prediction
from radgate.inference import RuntimeOptions, available_providers, preprocess
from radgate.inference.cache import TensorPrewarmer
from radgate.models import Manifest, ModelPackage, add_model, write_package
from radgate.models.registry import BUNDLED_MODELS
from radgate.routing import DeploymentSpec, features_from_dataset, sync_deployments

ROOT = Path(__file__).resolve().parent.parent
CACHE = ROOT / ".tmp" / "bench"
DX = UID("1.2.840.10008.5.1.4.1.1.1.1")


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


# -- the realistic model --------------------------------------------------------------------------------------


def densenet_onnx(size: int = 224) -> Path:
    """MONAI DenseNet121 (2-D, 1 channel, random weights) as ONNX with ``probability`` and ``cam`` outputs."""
    path = CACHE / f"densenet121-1ch-{size}.onnx"
    if path.is_file():
        return path
    try:
        import torch
        from monai.networks.nets import DenseNet121
    except ImportError as exc:
        raise SystemExit(
            "The densenet model needs the train extra: .venv/bin/pip install torch==2.13.0 monai onnx onnxscript"
        ) from exc

    class WithCam(torch.nn.Module):
        """DenseNet121 whose head also returns the class activation map (CAM = w . relu(features))."""

        def __init__(self) -> None:
            super().__init__()
            torch.manual_seed(0)
            self.net = DenseNet121(spatial_dims=2, in_channels=1, out_channels=1).eval()

        def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
            features = torch.relu(self.net.features(image))
            linear: Any = self.net.class_layers.out
            logit = linear(features.mean(dim=(2, 3)))
            cam = torch.einsum("oc,nchw->nohw", linear.weight, features)[:, 0]
            return torch.sigmoid(logit)[:, 0], cam

    CACHE.mkdir(parents=True, exist_ok=True)
    model = WithCam().eval()
    example = torch.zeros(1, 1, size, size)
    tmp = path.with_suffix(".tmp.onnx")
    with torch.no_grad():
        torch.onnx.export(
            model, (example,), str(tmp), input_names=["image"], output_names=["probability", "cam"],
            dynamic_axes={"image": {0: "N"}, "probability": {0: "N"}, "cam": {0: "N"}}, opset_version=17,
            dynamo=False,
        )
    tmp.replace(path)
    return path


def densenet_manifest(size: int = 224) -> Manifest:
    return Manifest.from_dict({
        "schema_version": 1,
        "model": {"name": "bench-densenet121", "version": "0.0.1", "task": "triage",
                  "description": "MONAI DenseNet121, random weights (benchmark only)", "licence": "Apache-2.0",
                  "synthetic_training_data": True},
        "findings": [{"name": "finding", "output": "probability",
                      "code": {"scheme": "SCT", "value": "36118008", "meaning": "Pneumothorax"}}],
        "intended_use": {"modalities": ["DX", "CR"], "body_parts": ["CHEST"], "views": ["PA", "AP"],
                         "age_min": 18, "age_max": 120, "summary": "Benchmark only"},
        "preprocessing": {"height": size, "width": size, "channels": 1, "normalisation": "zscore",
                          "mean": 0.5, "std": 0.25},
        "outputs": {"probability": {"kind": "probability"}, "cam": {"kind": "class_activation_map"}},
        "operating_points": [{"name": "default", "threshold": 0.5}],
        "training_data": {"summary": "none: random weights"},
        "weights": {"file": "model.onnx", "sha256": "0" * 64},
    })


# -- the stream ----------------------------------------------------------------------------------------------


def synthetic_dx(rng: np.random.Generator, size: int) -> Dataset:
    """A 12-bit DX chest radiograph-sized image: smooth anatomy-like background plus noise."""
    ds = Dataset()
    ds.file_meta = FileMetaDataset()
    ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds.file_meta.MediaStorageSOPClassUID = DX
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.SOPClassUID = DX
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.Modality, ds.BodyPartExamined, ds.ViewPosition = "DX", "CHEST", "PA"
    ds.PatientAge, ds.PatientSex, ds.StudyDate = "050Y", "F", "20260101"
    ds.PatientName, ds.PatientID = "SYNTHETIC^BENCH", "SYN-BENCH"
    ds.Manufacturer = "SYNTHETIC"
    ds.InstanceNumber = ds.SeriesNumber = 1
    ds.Rows = ds.Columns = size
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = "MONOCHROME2"
    ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = 16, 12, 11, 0
    ds.WindowCenter, ds.WindowWidth = 2048, 3000
    y, x = np.mgrid[0:size, 0:size] / size
    body = 2600 - 1400 * np.exp(-(((x - 0.3) / 0.15) ** 2 + ((y - 0.5) / 0.3) ** 2))
    body -= 1400 * np.exp(-(((x - 0.7) / 0.15) ** 2 + ((y - 0.5) / 0.3) ** 2))
    pixels = np.clip(body + rng.normal(0, 60, (size, size)), 0, 4095).astype(np.uint16)
    ds.PixelData = pixels.tobytes()
    return ds


def index_complete(
    db: Database,
    settings: Settings,
    ds: Dataset,
    hook: SeriesCompleteHook,
    prewarm: TensorPrewarmer | None = None,
) -> str:
    """Store one instance and mark its series complete, queueing it in the same transaction through the
    engine's hook, as the assembler does (``Assembler(..., hooks=[engine.hook])``).

    With ``prewarm``, the model input is rendered between arrival and completion, as the gateway's pixel
    checker does during the assembly quiet period."""
    rel = Path(ds.StudyInstanceUID) / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"
    path = settings.store_dir / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(path, enforce_file_format=True)
    data = path.read_bytes()
    features = features_from_dataset(ds)
    with db.session() as s:
        now = utcnow()
        s.add(Study(StudyInstanceUID=ds.StudyInstanceUID, status="complete", num_instances=1, first_received=now,
                    last_received=now, completed_at=now))
        s.flush()
        s.add(Series(SeriesInstanceUID=ds.SeriesInstanceUID, StudyInstanceUID=ds.StudyInstanceUID, Modality="DX",
                     num_instances=1, status="receiving", first_received=now, last_received=now))
        s.add(Instance(
            SOPInstanceUID=ds.SOPInstanceUID, revision=1, SOPClassUID=ds.SOPClassUID,
            StudyInstanceUID=ds.StudyInstanceUID, SeriesInstanceUID=ds.SeriesInstanceUID, InstanceNumber=1,
            TransferSyntaxUID=ExplicitVRLittleEndian, path=rel.as_posix(), size=len(data),
            sha256=hashlib.sha256(data).hexdigest(), received_at=now, source="import",
            **{k: v for k, v in features.items() if k not in ("SOPClassUID", "SeriesDescription")},
        ))
    if prewarm is not None:
        with db.session() as s:
            instance = s.scalars(select(Instance).where(Instance.SOPInstanceUID == ds.SOPInstanceUID)).one()
        prewarm(instance, pydicom.dcmread(path))
    with db.session() as s:  # the assembler's transaction: complete + enqueue
        series = s.get(Series, ds.SeriesInstanceUID)
        assert series is not None
        series.status, series.completed_at = "complete", utcnow()
        hook(s, ds.SeriesInstanceUID, False)
    return str(ds.SeriesInstanceUID)


class StoredSignal:
    """A result sink that tells the producer when a series' result has committed (no polling).

    Polling the database from the producer thread while the engine runs would put the harness's own work
    on the two cores beside the inference it measures.
    """

    def __init__(self) -> None:
        self._events: dict[str, threading.Event] = {}
        self._lock = threading.Lock()

    def _event(self, SeriesInstanceUID: str) -> threading.Event:
        with self._lock:
            return self._events.setdefault(SeriesInstanceUID, threading.Event())

    def on_result(self, session: Session, prediction: Prediction, decision: Any) -> None:
        done = self._event(prediction.SeriesInstanceUID)
        sa_event.listen(session, "after_commit", lambda _s: done.set(), once=True)

    def wait(self, SeriesInstanceUID: str, timeout_s: float) -> bool:
        return self._event(SeriesInstanceUID).wait(timeout_s)


def percentile(values: list[float], q: float) -> float:
    return float(np.percentile(np.asarray(values), q))


def run_model(label: str, package_path: Path, args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    data_dir = workdir / label
    settings = load_settings(data_dir=data_dir, environ={}, inference__intra_op_threads=args.threads,
                             inference__batch_size=args.batch_size)
    db = open_database(settings.database_url)
    package = ModelPackage.open(package_path)
    with db.session() as s:
        add_model(s, package_path, data_dir, registered_by="bench")
        sync_deployments(s, [DeploymentSpec("bench", package.manifest.name, package.manifest.version,
                                            mode="live")])
    options = EngineOptions.from_settings(settings, poll_interval_s=args.poll, explanations=not args.no_cam)
    stored = StoredSignal()
    engine = Engine(settings, db, sinks=[stored], options=options)
    prewarm = TensorPrewarmer(db, data_dir) if args.prewarm else None
    rng = np.random.default_rng(0)
    datasets = [synthetic_dx(rng, args.size) for _ in range(args.series + args.warmup)]

    # Raw ONNX Runtime on the same tensors, same settings, same process: one run right after each series'
    # result is stored, so that both figures of a pair see the same machine load (it is shared and noisy).
    so = ort.SessionOptions()
    so.intra_op_num_threads = args.threads
    so.inter_op_num_threads = 1
    so.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    so.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    so.add_session_config_entry("session.intra_op.allow_spinning", "0")  # as the engine's sessions
    session = ort.InferenceSession(package.load_weights(), so,
                                   providers=available_providers(RuntimeOptions().providers))
    input_name = package.manifest.preprocessing.input

    def tensor_of(ds: Dataset) -> np.ndarray:
        path = settings.store_dir / ds.StudyInstanceUID / ds.SeriesInstanceUID / f"{ds.SOPInstanceUID}.dcm"
        return preprocess(pydicom.dcmread(path), package.manifest.preprocessing)[None]

    engine.start()
    uids: list[str] = []
    raw: list[float] = []
    try:
        for i, ds in enumerate(datasets):
            uid = index_complete(db, settings, ds, engine.hook, prewarm)
            stored.wait(uid, 120)  # only paces the producer; latencies come from the engine's timestamps
            tensor = tensor_of(ds)
            start = time.perf_counter()
            session.run(None, {input_name: tensor})
            if i >= args.warmup:
                raw.append((time.perf_counter() - start) * 1000.0)
                uids.append(uid)
            time.sleep(args.gap)
    finally:
        engine.stop()
    with db.session() as s:
        rows = {p.SeriesInstanceUID: p for p in s.scalars(select(Prediction).where(Prediction.SeriesInstanceUID.in_(uids)))}
    missing = [u for u in uids if u not in rows]
    if missing:
        raise SystemExit(f"{label}: {len(missing)} series got no result within 120 s")
    stages = ("queue_wait_ms", "decode_ms", "preprocess_ms", "inference_ms", "postprocess_ms")
    e2e = [float(rows[u].end_to_end_ms or 0.0) for u in uids]

    p50_e2e, p50_raw = statistics.median(e2e), statistics.median(raw)
    # Per series: (end-to-end - raw) / end-to-end of the pair measured back to back; the median of those.
    paired = statistics.median((a - b) / a for a, b in zip(e2e, raw, strict=True))
    result = {
        "model": label + (" (inputs prewarmed)" if args.prewarm else ""),
        "package": f"{package.manifest.name} {package.manifest.version}",
        "series": len(uids),
        "image": f"{args.size}x{args.size} 12-bit DX, uncompressed",
        "input": f"{package.manifest.preprocessing.height}x{package.manifest.preprocessing.width}",
        "providers": session.get_providers(),
        "end_to_end_ms": {"p50": p50_e2e, "p95": percentile(e2e, 95), "mean": statistics.fmean(e2e)},
        "raw_onnxruntime_ms": {"p50": p50_raw, "p95": percentile(raw, 95), "mean": statistics.fmean(raw)},
        "overhead_p50": (p50_e2e - p50_raw) / p50_e2e,
        "overhead_paired_median": paired,
        "overhead_mean": (statistics.fmean(e2e) - statistics.fmean(raw)) / statistics.fmean(e2e),
        "stages_p50_ms": {st: statistics.median(float(getattr(rows[u], st)) for u in uids) for st in stages},
    }
    db.dispose()
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0] if __doc__ else None)
    parser.add_argument("--model", choices=("densenet", "demo", "both"), default="both")
    parser.add_argument("--series", type=int, default=30, help="measured series per model")
    parser.add_argument("--warmup", type=int, default=3, help="series run first and not measured")
    parser.add_argument("--size", type=int, default=2048, help="image rows = columns")
    parser.add_argument("--threads", type=int, default=2, help="ONNX Runtime intra-op threads")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--poll", type=float, default=0.5, help="engine poll interval when idle, s (in-process "
                        "enqueues wake the workers at once)")
    parser.add_argument("--gap", type=float, default=0.05, help="pause between series, s")
    parser.add_argument("--no-cam", action="store_true", help="do not compute/store explanation maps")
    parser.add_argument("--prewarm", action="store_true",
                        help="render model inputs between arrival and completion (as the gateway does)")
    parser.add_argument("--json", type=Path, help="also write the figures to this file")
    args = parser.parse_args(argv)

    results = []
    with tempfile.TemporaryDirectory(prefix="radgate-bench-") as tmp:
        workdir = Path(tmp)
        if args.model in ("densenet", "both"):
            weights = densenet_onnx().read_bytes()
            pkg = workdir / "densenet-package"
            write_package(pkg, densenet_manifest(), weights,
                          "# DenseNet121 (random weights)\n\nBenchmark only. Not a model of anything.\n")
            results.append(run_model("densenet121", pkg, args, workdir))
        if args.model in ("demo", "both"):
            demo = BUNDLED_MODELS[0]
            if (demo / "manifest.toml").is_file():
                results.append(run_model("demo", demo, args, workdir))
            else:
                print(f"demo package not found at {demo}; skipped", file=sys.stderr)
    for r in results:
        e2e, raw = r["end_to_end_ms"], r["raw_onnxruntime_ms"]
        print(f"{r['model']} ({r['package']}, input {r['input']}, {r['image']}, {r['series']} series, "
              f"{', '.join(r['providers'])})")
        print(f"  end-to-end  p50 {e2e['p50']:8.1f} ms  p95 {e2e['p95']:8.1f} ms  mean {e2e['mean']:8.1f} ms")
        print(f"  raw ORT     p50 {raw['p50']:8.1f} ms  p95 {raw['p95']:8.1f} ms  mean {raw['mean']:8.1f} ms")
        print(f"  overhead    {100 * r['overhead_p50']:.1f} % of end-to-end at p50 "
              f"({100 * r['overhead_mean']:.1f} % on means; median of per-series pairs "
              f"{100 * r['overhead_paired_median']:.1f} %); target <= 25 %")
        print("  stages p50  " + ", ".join(f"{k.removesuffix('_ms')} {v:.1f}" for k, v in r["stages_p50_ms"].items()))
    if args.json:
        args.json.write_text(json.dumps(results, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
