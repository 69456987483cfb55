"""Site adaptation without retraining: ``radgate models recalibrate MODEL VERSION --method platt|isotonic
--site S``.

The site's labelled cases scored by MODEL VERSION (stored predictions with a reference label) fit a
recalibration (:func:`radgate.stats.calibration.cross_validated_recalibration`: stratified 5-fold, so the
"after" calibration is measured on held-out folds). radgate writes a new model version that has the same
weights (the same SHA-256). Its manifest carries the map as ``[calibration]``, which the runtime applies to
that finding's score (:meth:`radgate.inference.model.LoadedModel.scores`). The operating points' thresholds
pass through the same monotone map, so the flags stay those the site validated and only the probabilities
change. The model card gains a section with the cross-validated calibration before and after. The new
version is installed in the registry; deploy it beside the champion in shadow, then ``radgate compare``.
"""

from __future__ import annotations

import dataclasses
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
from sqlalchemy import select

from radgate import audit
from radgate.config import Settings
from radgate.db import Database
from radgate.engine.tables import Prediction
from radgate.errors import Invalid
from radgate.models.manifest import Calibration, ModelInfo, OperatingPoint
from radgate.models.package import write_package
from radgate.models.registry import add_model, get_model, open_model
from radgate.stats.calibration import (
    IsotonicCalibration,
    PlattScaling,
    brier_score,
    cross_validated_recalibration,
    expected_calibration_error,
)
from radgate.validation.truth import reference_labels

__all__ = ["Recalibrated", "recalibrate_model"]


@dataclass(frozen=True)
class Recalibrated:
    name: str
    version: str
    sha256: str
    n: int
    positives: int
    before: dict[str, float]
    after: dict[str, float]
    calibration: dict[str, Any]


def _metrics(labels: np.ndarray, p: np.ndarray) -> dict[str, float]:
    return {"ece": expected_calibration_error(labels, p), "brier": brier_score(labels, p)}


def recalibrate_model(
    db: Database,
    settings: Settings,
    model: str,
    version: str,
    method: str,
    site: str,
    *,
    by: str,
    new_version: str | None = None,
    folds: int = 5,
) -> Recalibrated:
    """Fit, check and install the recalibrated version (see the module docstring)."""
    if method not in ("platt", "isotonic"):
        raise Invalid(f"--method must be platt or isotonic, got {method!r}")
    target = new_version or f"{version}-{method}.{re.sub(r'[^0-9A-Za-z]+', '-', site)}"
    with db.session() as s:
        installed = get_model(s, model, version)
        preds = s.scalars(
            select(Prediction).where(
                Prediction.model_name == model, Prediction.model_version == version, Prediction.site == site
            )
        ).all()
        s.expunge_all()
    by_series = reference_labels(db, [p.SeriesInstanceUID for p in preds])
    by_study = reference_labels(db, [p.StudyInstanceUID for p in preds])
    pairs = [(p.score, by_series.get(p.SeriesInstanceUID, by_study.get(p.StudyInstanceUID))) for p in preds]
    pairs = [(score, label) for score, label in pairs if label is not None]
    y = np.asarray([label for _, label in pairs], dtype=bool)
    scores = np.asarray([score for score, _ in pairs], dtype=np.float64)
    if y.sum() < folds or (~y).sum() < folds:
        raise Invalid(
            f"{model} {version} at site {site!r} has {int(y.sum())} labelled positive and {int((~y).sum())} "
            f"negative case(s); {folds}-fold recalibration needs at least {folds} of each. Import labels "
            "with `radgate truth import`."
        )
    kind: Literal["platt", "isotonic"] = "platt" if method == "platt" else "isotonic"
    fit = cross_validated_recalibration(y, scores, kind, folds=folds, on_logit=kind == "platt")
    before, after = _metrics(y, scores), _metrics(y, fit.out_of_fold)
    package = open_model(installed)
    manifest = package.manifest
    finding = manifest.primary.name
    m = fit.model
    if isinstance(m, PlattScaling):
        if m.slope <= 0:
            raise Invalid(
                f"the Platt fit at site {site!r} has slope {m.slope:.3g} <= 0 (scores rank the wrong "
                "way); a recalibration cannot repair that: retrain or use isotonic"
            )
        calibration = Calibration("platt", finding, site, slope=m.slope, intercept=m.intercept, on_logit=True)
    else:
        assert isinstance(m, IsotonicCalibration)
        calibration = Calibration(
            "isotonic", finding, site, x=tuple(map(float, m.x)), y=tuple(map(float, m.y))
        )
    ops = tuple(
        dataclasses.replace(op, threshold=calibration.apply(op.threshold))
        if manifest.finding_for(op).name == finding
        else op
        for op in manifest.operating_points
    )
    outputs = dict(manifest.outputs)
    out_name = manifest.primary.output
    outputs[out_name] = dataclasses.replace(outputs[out_name], calibrated=True)
    new_manifest = dataclasses.replace(
        manifest,
        model=ModelInfo(**{**dataclasses.asdict(manifest.model), "version": target}),
        operating_points=ops,
        outputs=outputs,
        calibration=calibration,
    )
    card = (
        package.model_card.rstrip()
        + "\n\n"
        + _card_section(
            version,
            method,
            site,
            folds,
            int(y.size),
            int(y.sum()),
            before,
            after,
            manifest.operating_points,
            ops,
        )
    )
    weights = package.load_weights()
    with tempfile.TemporaryDirectory() as tmp:
        dest = Path(tmp) / f"{model}-{target}"
        written = write_package(dest, new_manifest, weights, card)
        with db.session() as s:
            added = add_model(s, written.root, settings.data_dir, registered_by=by)
            audit.record(
                s,
                by,
                "models.recalibrate",
                f"{model} {target}",
                {
                    "from_version": version,
                    "method": method,
                    "site": site,
                    "n": int(y.size),
                    "ece_before": before["ece"],
                    "ece_after_cv": after["ece"],
                    "sha256": added.sha256,
                },
            )
    return Recalibrated(
        model, target, added.sha256, int(y.size), int(y.sum()), before, after, calibration.to_dict()
    )


def _card_section(
    version: str,
    method: str,
    site: str,
    folds: int,
    n: int,
    pos: int,
    before: dict[str, float],
    after: dict[str, float],
    old_ops: tuple[OperatingPoint, ...],
    new_ops: tuple[OperatingPoint, ...],
) -> str:
    lines = [
        f"## Site recalibration ({site})",
        "",
        f"Recalibrated from version {version} with {method} scaling on {n} labelled cases of site {site} "
        f"({pos} positive). The weights are unchanged (same SHA-256); the manifest's `[calibration]` "
        "maps the score. Calibration below is cross-validated "
        f"({folds}-fold, stratified): every case's recalibrated probability comes from a map fitted "
        "without it.",
        "",
        "| | ECE (10 bins) | Brier |",
        "|---|---|---|",
        f"| before | {before['ece']:.4f} | {before['brier']:.4f} |",
        f"| after ({folds}-fold CV) | {after['ece']:.4f} | {after['brier']:.4f} |",
        "",
        "Operating points (thresholds mapped through the calibration; the same flags):",
        "",
    ]
    for old, new in zip(old_ops, new_ops, strict=True):
        lines.append(f"- {old.name}: {old.threshold:g} → {new.threshold:.4g}")
    lines.append("")
    lines.append("Synthetic model: not a medical device.")
    return "\n".join(lines) + "\n"
