"""``radgate export dataset``: a deployment's cases as a de-identified DICOM dataset (+ labels CSV).

For every series the deployment scored: the newest revision of each stored instance, and radgate's own SR
and GSPS for that (series, deployment) from the results store, each through
:class:`radgate.learning.deid.Deidentifier` (one secret key per export, so UIDs map consistently across
files and the labels CSV, and no one holding only the export can map them back). Files go to
``OUT/dicom/<new study>/<new series>/<new SOP>.dcm``; ``--labels`` writes ``OUT/labels.csv`` keyed by the
new UIDs (score, label, scanner, view: ready for ``radgate pool``); ``OUT/export.json`` lists what was
written and what was left out with the reason (never an original UID). The export is audited
(``learning.export``: counts and options, no UIDs).
"""

from __future__ import annotations

import csv
import json
import secrets
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom import dcmread
from pydicom.errors import InvalidDicomError
from sqlalchemy import select

from radgate import audit
from radgate.config import Settings
from radgate.db import Database
from radgate.db.queries import newest_instances
from radgate.engine.tables import Prediction
from radgate.errors import Invalid, RadgateError
from radgate.learning.compare import _deployment
from radgate.learning.deid import Deidentifier, DeidOptions
from radgate.results.outbox import results_store
from radgate.results.tables import OutboxItem
from radgate.storage import blobs_for
from radgate.validation.truth import reference_labels

__all__ = ["ExportSummary", "export_dataset"]


@dataclass
class ExportSummary:
    out: Path
    series: int = 0
    images: int = 0
    results: int = 0
    labels: int = 0
    skipped: list[dict[str, str]] = field(default_factory=list)
    options: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "out": str(self.out),
            "series": self.series,
            "images": self.images,
            "results": self.results,
            "labels": self.labels,
            "skipped": self.skipped,
            "options": self.options,
        }


def export_dataset(
    db: Database,
    settings: Settings,
    deployment: str,
    out: Path,
    *,
    by: str,
    labels: bool = False,
    profile: str = "basic",
    retain_device_identity: bool = False,
    retain_dates: str | None = None,
    key: bytes | None = None,
) -> ExportSummary:
    """Write the de-identified dataset of ``deployment`` to ``out`` (see the module docstring)."""
    if profile != "basic":
        raise Invalid(f"--profile {profile!r} is not offered; the one profile is 'basic' (PS3.15 Annex E)")
    if retain_dates not in (None, "modified"):
        raise Invalid(
            f"--retain-dates {retain_dates!r}: the one choice is 'modified' (dates shifted per patient)"
        )
    if out.exists() and any(out.iterdir()):
        raise Invalid(f"{out} is not empty; give a new or empty directory with --out")
    options = DeidOptions(retain_device_identity, retain_dates == "modified")
    deid = Deidentifier(key or secrets.token_bytes(32), options)
    with db.session() as s:
        _deployment(s, deployment)
        preds = s.scalars(
            select(Prediction).where(Prediction.deployment == deployment).order_by(Prediction.id)
        ).all()
        instances = {
            p.SeriesInstanceUID: list(s.scalars(newest_instances(p.SeriesInstanceUID))) for p in preds
        }
        outputs: dict[str, list[OutboxItem]] = {}
        for item in s.scalars(select(OutboxItem).where(OutboxItem.kind.in_(("SR", "PR")))):
            series, _, rest = item.result_key.partition("/")
            if rest.split("/")[0] == deployment:
                outputs.setdefault(series, []).append(item)
        s.expunge_all()
    if not preds:
        raise Invalid(f"deployment {deployment!r} has no stored predictions to export")
    summary = ExportSummary(out, options=options.codes(False))
    dicom_dir = out / "dicom"
    dicom_dir.mkdir(parents=True, exist_ok=True)
    by_series = reference_labels(db, [p.SeriesInstanceUID for p in preds]) if labels else {}
    by_study = reference_labels(db, [p.StudyInstanceUID for p in preds]) if labels else {}
    rows = []
    results_dir = results_store(settings.data_dir)
    blobs = blobs_for(settings)
    for p in preds:
        written = 0
        for inst in instances.get(p.SeriesInstanceUID, []):
            written += _export_file(
                deid,
                blobs.local_path(inst.path),
                dicom_dir,
                summary,
                clean=False,
                what=f"image {len(summary.skipped) + 1}",
            )
        summary.images += written
        seen: set[str] = set()
        for item in outputs.get(p.SeriesInstanceUID, []):
            if item.path in seen:
                continue
            seen.add(item.path)
            summary.results += _export_file(
                deid, results_dir / item.path, dicom_dir, summary, clean=True, what=f"radgate {item.kind}"
            )
        if written:
            summary.series += 1
        label = by_series.get(p.SeriesInstanceUID, by_study.get(p.StudyInstanceUID))
        if labels and written:
            features = json.loads(p.features or "{}")
            rows.append(
                {
                    "StudyInstanceUID": deid.uid(p.StudyInstanceUID),
                    "SeriesInstanceUID": deid.uid(p.SeriesInstanceUID),
                    "score": f"{p.score:.6g}",
                    "label": "" if label is None else str(label),
                    "model": p.model_name,
                    "version": p.model_version,
                    "Manufacturer": features.get("Manufacturer", ""),
                    "ManufacturerModelName": features.get("ManufacturerModelName", ""),
                    "ViewPosition": features.get("ViewPosition", ""),
                }
            )
    if labels:
        with (out / "labels.csv").open("w", newline="", encoding="utf-8") as handle:
            writer = csv.DictWriter(handle, fieldnames=list(rows[0]) if rows else ["SeriesInstanceUID"])
            writer.writeheader()
            writer.writerows(rows)
        summary.labels = sum(1 for r in rows if r["label"] != "")
    (out / "export.json").write_text(json.dumps(summary.as_dict() | {"deployment": deployment}, indent=2))
    with db.session() as s:
        audit.record(
            s,
            by,
            "learning.export",
            deployment,
            {
                "series": summary.series,
                "images": summary.images,
                "results": summary.results,
                "labels": summary.labels,
                "skipped": len(summary.skipped),
                "options": summary.options,
            },
        )
    return summary


def _export_file(
    deid: Deidentifier, path: Path, dicom_dir: Path, summary: ExportSummary, *, clean: bool, what: str
) -> int:
    try:
        ds = dcmread(path)
    except (OSError, InvalidDicomError) as exc:
        summary.skipped.append({"what": what, "reason": f"cannot read the stored file: {type(exc).__name__}"})
        return 0
    try:
        deid.apply(ds, clean_content=clean)
    except RadgateError as exc:
        summary.skipped.append({"what": what, "reason": str(exc)})
        return 0
    target = dicom_dir / str(ds.StudyInstanceUID) / str(ds.SeriesInstanceUID) / f"{ds.SOPInstanceUID}.dcm"
    target.parent.mkdir(parents=True, exist_ok=True)
    ds.save_as(target, enforce_file_format=True)
    return 1
