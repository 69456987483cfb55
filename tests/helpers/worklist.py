"""Studies and stored results for worklist and review tests: real files in the store, prediction rows."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pydicom
from pydicom.uid import generate_uid
from sqlalchemy import update

from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db import Database
from radgate.db.schema import Study
from radgate.engine.tables import Prediction
from radgate.ingest.store import InstanceStore
from tests.helpers.synth import image_for


@dataclass(frozen=True)
class Stored:
    study: str
    series: str
    sop: str
    path: Path


def store_study(
    store: InstanceStore,
    db: Database,
    profile: str = "agfa-dx",
    *,
    name: str = "DOE^JANE",
    patient_id: str = "P1",
    received_minutes_ago: float = 0.0,
    description: str = "CHEST PA",
) -> Stored:
    """One frontal radiograph of ``profile`` as a new study, stored and marked complete."""
    ds = image_for(profile)
    ds.StudyInstanceUID = generate_uid()
    ds.SeriesInstanceUID = generate_uid()
    ds.SOPInstanceUID = generate_uid()
    ds.file_meta.MediaStorageSOPInstanceUID = ds.SOPInstanceUID
    ds.PatientName = name
    ds.PatientID = patient_id
    ds.StudyDescription = description
    buf = io.BytesIO()
    pydicom.dcmwrite(buf, ds, enforce_file_format=True)
    outcome = store.store_bytes(buf.getvalue(), source="import")
    assert outcome.ok, outcome
    received = utcnow() - timedelta(minutes=received_minutes_ago)
    with db.session() as s:
        s.execute(
            update(Study)
            .where(Study.StudyInstanceUID == ds.StudyInstanceUID)
            .values(status="complete", first_received=received, completed_at=received)
        )
    path = next(store.root.rglob(f"{ds.SOPInstanceUID}*.dcm"))
    return Stored(ds.StudyInstanceUID, ds.SeriesInstanceUID, ds.SOPInstanceUID, path)


def add_result(
    db: Database,
    st: Stored,
    *,
    policy: str = "released",
    score: float = 0.9,
    threshold: float = 0.5,
    deployment: str = "demo-live",
    site: str = "default",
    settings: Settings | None = None,
    explanation: np.ndarray | None = None,
    created_at: datetime | None = None,
) -> int:
    """A stored prediction with the decision columns as radgate.policy would write them."""
    flag = score >= threshold
    urgency = 0.5 + 0.5 * score if policy == "released" and flag else 0.0
    explanation_path = None
    if explanation is not None:
        assert settings is not None
        from radgate.inference.explain import ExplanationMap

        rel = Path("explanations") / f"{st.series}-{deployment}.npz"
        ExplanationMap(explanation, "cam", st.sop, "test").save(settings.data_dir / rel)
        explanation_path = str(rel)
    findings = [
        {
            "name": "pneumothorax",
            "score": score,
            "threshold": threshold,
            "operating_point": "default",
            "present": flag,
            "declared": True,
            "disposition": "report",
        }
    ]
    if settings is not None:
        from radgate.models.registry import ensure_default_models

        with db.session() as s:  # the bundled demo model: the result's model card and SR revisions
            ensure_default_models(s, settings.data_dir)
    with db.session() as s:
        p = Prediction(
            job_id=None,
            StudyInstanceUID=st.study,
            SeriesInstanceUID=st.series,
            SOPInstanceUID=st.sop,
            deployment=deployment,
            site=site,
            model_name="demo-pneumothorax",
            model_version="1.0.0",
            model_sha256="0" * 64,
            mode="live" if policy in ("released", "withheld") else policy,
            score=score,
            flag=flag,
            scores=json.dumps({"pneumothorax": score}),
            flags=json.dumps({"default": flag}),
            explanation_method="cam" if explanation is not None else None,
            explanation_path=explanation_path,
            features="{}",
            num_images=1,
            queue_wait_ms=0.0,
            decode_ms=0.0,
            preprocess_ms=0.0,
            inference_ms=0.0,
            postprocess_ms=0.0,
            end_to_end_ms=None,
            created_at=created_at or utcnow(),
            used_instances=json.dumps([st.sop]),
            policy=policy,
            policy_reason=policy,
            operating_point="default",
            threshold=threshold,
            threshold_source="model operating point",
            urgency=urgency,
            findings=json.dumps(findings),
        )
        s.add(p)
        s.flush()
        return int(p.id)


def audit_entries(db: Database, action: str) -> list[dict[str, object]]:
    """The audit log's entries whose action starts with ``action``."""
    from radgate.audit.export import iter_entries

    with db.session() as s:
        return list(iter_entries(s, action=action))


def add_label_request(db: Database, st: Stored, *, deployment: str = "demo-shadow", rank: int = 1) -> int:
    """An open label request as ``radgate learn queue`` stores it (radgate.learning.queue)."""
    from radgate.learning.tables import LabelRequest

    with db.session() as s:
        req = LabelRequest(
            batch="b1",
            deployment=deployment,
            StudyInstanceUID=st.study,
            SeriesInstanceUID=st.series,
            strategy="uncertainty",
            rank=rank,
            score=0.51,
            priority=0.98,
            stratum="{}",
            reason="score 0.510 is 0.010 from the operating point",
            status="open",
            requested_by="cli:dana",
            requested_at=utcnow(),
        )
        s.add(req)
        s.flush()
        return int(req.id)
