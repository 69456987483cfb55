"""The annotation queue: strategies checked against brute force; batches from stored predictions."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from radgate.audit.tables import AuditEntry
from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db import Database
from radgate.errors import Invalid
from radgate.learning.queue import label_requests, queue_cases
from radgate.learning.strategies import STRATEGIES, allocate, k_centre_greedy
from radgate.learning.strategies import select as pick
from radgate.validation.tables import GroundTruth
from tests.helpers.learning import paired_site


def test_allocation_is_proportional_with_one_per_stratum() -> None:
    assert allocate([90, 9, 1], 10) == [8, 1, 1]
    assert sum(allocate([50, 30, 20], 7)) == 7
    assert allocate([5, 1], 100) == [5, 1]  # never more than a stratum holds
    assert allocate([3, 10, 1], 2) == [1, 1, 0]  # fewer picks than strata: the largest strata


def _brute_k_centre(x: np.ndarray, k: int, ref: np.ndarray) -> list[int]:
    chosen: list[int] = []
    for _ in range(k):
        best, best_d = -1, -1.0
        for i in range(len(x)):
            if i in chosen:
                continue
            d = min(float(np.linalg.norm(x[i] - r)) for r in [*ref, *(x[j] for j in chosen)])
            if d > best_d:
                best, best_d = i, d
        chosen.append(best)
    return chosen


def test_k_centre_greedy_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    x, ref = rng.normal(size=(60, 3)), rng.normal(size=(5, 3))
    assert [i for i, _ in k_centre_greedy(x, 8, ref)] == _brute_k_centre(x, 8, ref)


def test_uncertainty_picks_the_cases_nearest_the_operating_point() -> None:
    rng = np.random.default_rng(1)
    scores = rng.random(200)
    picks = pick("uncertainty", 10, scores, np.full(200, 0.3), ["one"] * 200)
    logit = np.log(scores / (1 - scores))
    nearest = np.argsort(np.abs(logit - np.log(0.3 / 0.7)))[:10]
    assert sorted(p.index for p in picks) == sorted(nearest.tolist())
    ent = pick("entropy", 5, scores, np.full(200, 0.3), ["one"] * 200)
    assert sorted(p.index for p in ent) == sorted(np.argsort(np.abs(scores - 0.5))[:5].tolist())
    with pytest.raises(Invalid, match="not one of uncertainty"):
        pick("loudest", 5, scores, np.full(200, 0.3), ["one"] * 200)


def test_queue_from_stored_predictions(tmp_path: Path, settings: Settings, db: Database) -> None:
    paired_site(tmp_path, settings, db, n=400, label_share=0.3)
    with db.session() as s:
        labelled = {g.StudyInstanceUID for g in s.scalars(select(GroundTruth))}
    for strategy in STRATEGIES:
        _, cases = queue_cases(db, "champion", 20, strategy, by="ds", store=False)
        assert len(cases) == 20 and len({c.SeriesInstanceUID for c in cases}) == 20
        assert not {c.StudyInstanceUID for c in cases} & labelled
        scanners = {c.stratum.split(" / ")[0] for c in cases}
        assert any(s.startswith("Agfa") for s in scanners), strategy  # every scanner room is represented
    batch, cases = queue_cases(db, "champion", 15, "hybrid", by="ds")
    again = queue_cases(db, "champion", 15, "hybrid", by="ds")[1]
    assert not {c.SeriesInstanceUID for c in cases} & {
        c.SeriesInstanceUID for c in again
    }  # open ones skipped
    requests = label_requests(db, "champion", status="open")
    assert len(requests) == 30 and requests[0]["batch"] == batch
    with db.session() as s:
        s.add(
            GroundTruth(
                StudyInstanceUID=cases[0].StudyInstanceUID,
                SeriesInstanceUID=None,
                label=1,
                source="radiologist",
                reference_date=dt.date(2025, 6, 1),
                imported_at=utcnow(),
                origin="test",
            )
        )
    assert len(label_requests(db, "champion", status="labelled")) == 1
    with db.session() as s:
        assert "learning.queue" in [e.action for e in s.scalars(select(AuditEntry))]
    with pytest.raises(Invalid, match="budget must be at least 1"):
        queue_cases(db, "champion", 0, "random", by="ds")
