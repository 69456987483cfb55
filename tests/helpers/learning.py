"""Learning test helpers: a champion (live) and a challenger (shadow) scoring the same simulated series.

The site is written straight into the tables (:func:`radgate.monitoring.simulate.write_cases`): studies,
the scored instance's header, the champion's predictions and labels; then the challenger's prediction for
every same series, with scores from a better binormal model on the domain-shifted vendor.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path

import numpy as np
from sqlalchemy import select

from radgate.config import Settings
from radgate.db import Database
from radgate.engine.tables import Prediction
from radgate.monitoring.simulate import write_cases
from radgate.routing import DeploymentSpec
from tests.helpers.models import deploy, install, manifest_with

PROFILES = ("ge-dx", "fuji-cr", "carestream-portable", "agfa-dx")


def binormal(rng: np.random.Generator, labels: np.ndarray, d: np.ndarray, shift: np.ndarray) -> np.ndarray:
    logit = rng.normal(-1.5, 1.0, labels.size) + shift + d * labels
    return 1.0 / (1.0 + np.exp(-logit))


def paired_site(
    tmp_path: Path,
    settings: Settings,
    db: Database,
    n: int = 600,
    seed: int = 3,
    challenger_gain: float = 1.0,
    label_share: float = 1.0,
    threshold: float = 0.3,
) -> dict[str, np.ndarray]:
    """Install tiny-ptx 1.0.0 (deployment ``champion``, live) and 2.0.0 (``challenger``, shadow) and write
    ``n`` paired cases; the challenger's separation on agfa-dx is ``challenger_gain`` better.
    ``label_share`` of the cases keep their label (the rest have none). Returns the arrays used."""
    install(tmp_path, settings, db, manifest_with())
    base = manifest_with()
    install(tmp_path, settings, db, manifest_with(model={**base["model"], "version": "2.0.0"}))
    deploy(
        db,
        DeploymentSpec("champion", "tiny-ptx", "1.0.0", mode="live"),
        DeploymentSpec("challenger", "tiny-ptx", "2.0.0", mode="shadow"),
    )
    rng = np.random.default_rng(seed)
    labels = (rng.random(n) < 0.25).astype(int)
    profiles = [PROFILES[i % len(PROFILES)] for i in range(n)]
    agfa = np.array([p == "agfa-dx" for p in profiles])
    d_champ = np.where(agfa, 0.6, 1.8)
    d_chall = d_champ + np.where(agfa, challenger_gain, 0.1)
    champ = binormal(rng, labels, d_champ, np.where(agfa, 0.8, 0.0))
    chall = binormal(rng, labels, d_chall, np.zeros(n))
    start = dt.date(2025, 1, 1)
    write_cases(
        db,
        deployment="champion",
        site="default",
        dates=[start + dt.timedelta(days=i % 300) for i in range(n)],
        profiles=profiles,
        labels=labels,
        scores=champ,
        threshold=threshold,
        ages=rng.integers(20, 90, n),
        sexes=["F" if i % 2 else "M" for i in range(n)],
        views=["PA" if i % 3 else "AP" for i in range(n)],
        model=("tiny-ptx", "1.0.0"),
        key=f"paired{seed}",
    )
    with db.session() as s:
        rows = s.scalars(
            select(Prediction).where(Prediction.deployment == "champion").order_by(Prediction.id)
        )
        champion_rows = list(rows)
        order = {p.SeriesInstanceUID: i for i, p in enumerate(champion_rows)}
        for p in champion_rows:
            i = order[p.SeriesInstanceUID]
            score = float(chall[i])
            s.add(
                Prediction(
                    job_id=None,
                    StudyInstanceUID=p.StudyInstanceUID,
                    SeriesInstanceUID=p.SeriesInstanceUID,
                    SOPInstanceUID=p.SOPInstanceUID,
                    deployment="challenger",
                    site=p.site,
                    model_name="tiny-ptx",
                    model_version="2.0.0",
                    model_sha256="1" * 64,
                    mode="shadow",
                    score=score,
                    flag=score >= threshold,
                    scores=json.dumps({"pneumothorax": score}),
                    flags=json.dumps({"default": score >= threshold}),
                    features=p.features,
                    num_images=1,
                    queue_wait_ms=0.0,
                    decode_ms=0.0,
                    preprocess_ms=0.0,
                    inference_ms=0.0,
                    postprocess_ms=0.0,
                    created_at=p.created_at,
                    used_instances=p.used_instances,
                    policy="shadow",
                    policy_reason="simulated",
                    operating_point="default",
                    threshold=threshold,
                    threshold_source="model operating point",
                    urgency=0.0,
                    findings="[]",
                )
            )
        if label_share < 1.0:
            from radgate.validation.tables import GroundTruth

            keep = rng.random(n) < label_share
            drop = [p.StudyInstanceUID for p in champion_rows if not keep[order[p.SeriesInstanceUID]]]
            for start_ in range(0, len(drop), 500):
                for g in s.scalars(
                    select(GroundTruth).where(GroundTruth.StudyInstanceUID.in_(drop[start_ : start_ + 500]))
                ):
                    s.delete(g)
    return {"labels": labels, "champion": champ, "challenger": chall, "agfa": agfa}
