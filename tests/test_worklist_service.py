"""The worklist service: priority formula, policy (released / withheld / silent / shadow), filters, identity."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from radgate.clock import utcnow
from radgate.config import Settings
from radgate.db import Database
from radgate.errors import Invalid
from radgate.ingest.store import InstanceStore
from radgate.worklist import NOT_VALIDATED, AIState, ReadStatus, WorklistFilter, priority, worklist_rows
from radgate.worklist.priority import AGEING_POINTS_PER_MINUTE, URGENCY_POINTS
from radgate.worklist.review import record_read
from radgate.worklist.service import score_band, worklist_version
from tests.helpers.worklist import add_result, store_study


@pytest.fixture
def store(settings: Settings, db: Database) -> Iterator[InstanceStore]:
    yield InstanceStore(settings, db)


def test_priority_formula_by_hand() -> None:
    now = utcnow()
    # 100 * 0.95 + 1 * 0 = 95 for a flagged study just arrived; 1 * 30 = 30 for one waiting half an hour
    assert priority(0.95, now, now) == pytest.approx(95.0)
    assert priority(0.0, now - timedelta(minutes=30), now) == pytest.approx(30.0)
    assert URGENCY_POINTS == 100 and AGEING_POINTS_PER_MINUTE == 1
    # ageing: an unflagged study waiting 101 minutes outranks the most urgent new study
    assert priority(0.0, now - timedelta(minutes=101), now) > priority(1.0, now, now)
    # urgency is clamped to [0, 1] and a clock running backwards gives no negative waiting
    assert priority(3.0, now + timedelta(minutes=5), now) == pytest.approx(100.0)


def test_order_policy_and_ageing(settings: Settings, db: Database, store: InstanceStore) -> None:
    old = store_study(store, db, received_minutes_ago=40)  # no AI result: waiting decides
    flagged = store_study(store, db, "ge-dx", received_minutes_ago=1)
    unflagged = store_study(store, db, "fuji-cr", received_minutes_ago=5)
    withheld = store_study(store, db, "siemens-dx", received_minutes_ago=2)
    silent = store_study(store, db, "philips-dx", received_minutes_ago=3)
    starved = store_study(store, db, "carestream-portable", received_minutes_ago=150)
    add_result(db, flagged, score=0.9)
    add_result(db, unflagged, score=0.2)
    add_result(db, withheld, policy="withheld", score=0.99)
    add_result(db, silent, policy="silent", score=0.99)
    add_result(db, silent, policy="shadow", score=0.98, deployment="demo-shadow")
    with db.session() as s:
        rows = worklist_rows(s)
    order = [r.StudyInstanceUID for r in rows]
    # 150 (starved) > 95+1 (flagged) > 40 (old) > 5 > 3 > 2
    assert order == [starved.study, flagged.study, old.study, unflagged.study, silent.study, withheld.study]
    by = {r.StudyInstanceUID: r for r in rows}
    f = by[flagged.study]
    assert f.ai is AIState.RELEASED and f.flagged and f.score == pytest.approx(0.9)
    assert f.score_band == "high" and f.finding == "pneumothorax" and f.model == "demo-pneumothorax 1.0.0"
    assert f.priority == pytest.approx(95 + 1, abs=0.1)
    w = by[withheld.study]
    assert w.ai is AIState.WITHHELD and w.note == NOT_VALIDATED
    assert w.score is None and w.score_band is None and not w.flagged and w.priority < 3
    sil = by[silent.study]  # silent and shadow: as if no AI had run
    assert sil.ai is AIState.NONE and sil.score is None and sil.model is None and sil.SOPInstanceUID is None
    assert "0.99" not in repr(sil.to_json()) and "0.98" not in repr(sil.to_json())
    assert by[unflagged.study].score_band == "low" and not by[unflagged.study].flagged


def test_identity_only_when_allowed(settings: Settings, db: Database, store: InstanceStore) -> None:
    store_study(store, db, name="SMITH^ANNA", patient_id="ID-77")
    with db.session() as s:
        hidden = worklist_rows(s)[0]
        shown = worklist_rows(s, identity=True)[0]
    assert hidden.patient_name is None and hidden.patient_id is None
    assert "SMITH" not in repr(hidden.to_json())
    assert shown.patient_name == "SMITH^ANNA" and shown.patient_id == "ID-77"


def test_filters(settings: Settings, db: Database, store: InstanceStore) -> None:
    a = store_study(store, db, received_minutes_ago=3)
    b = store_study(store, db, "ge-dx", received_minutes_ago=2)
    c = store_study(store, db, "fuji-cr", received_minutes_ago=1)
    add_result(db, a, score=0.8, site="north")
    add_result(db, b, score=0.1, site="south")
    with db.session() as s:
        assert [r.StudyInstanceUID for r in worklist_rows(s, WorklistFilter(flagged_only=True))] == [a.study]
        assert [r.StudyInstanceUID for r in worklist_rows(s, WorklistFilter(site="south"))] == [b.study]
        mods = {r.modality for r in worklist_rows(s)}
        some = sorted(m for m in mods if m)
        assert some, mods
        assert worklist_rows(s, WorklistFilter(modality="MR")) == []
        assert len(worklist_rows(s, WorklistFilter(modality=some[0].lower()))) >= 1
        record_read(s, settings, "rita", c.study, "modify", present="absent")
    with db.session() as s:
        awaiting = [r.StudyInstanceUID for r in worklist_rows(s)]
        read = worklist_rows(s, WorklistFilter(status=ReadStatus.READ))
        every = worklist_rows(s, WorklistFilter(status=None))
    assert c.study not in awaiting and [r.StudyInstanceUID for r in read] == [c.study] and len(every) == 3
    with pytest.raises(Invalid, match="status 'nope'"):
        WorklistFilter.parse(None, None, "nope", None)
    with pytest.raises(Invalid, match="flagged 'x'"):
        WorklistFilter.parse(None, None, None, "x")


def test_version_ignores_silent_and_shadow(settings: Settings, db: Database, store: InstanceStore) -> None:
    st = store_study(store, db)
    with db.session() as s:
        before = worklist_version(s)
    add_result(db, st, policy="silent")
    add_result(db, st, policy="shadow", deployment="demo-shadow")
    with db.session() as s:
        assert worklist_version(s) == before
    add_result(db, st, policy="released", deployment="demo-live-2")
    with db.session() as s:
        assert worklist_version(s) != before


def test_score_band() -> None:
    assert score_band(0.3, 0.5) == "low"
    assert score_band(0.6, 0.5) == "elevated"
    assert score_band(0.95, 0.5) == "high"
    assert score_band(0.85, 0.8) == "elevated" and score_band(0.9, 0.8) == "high"
