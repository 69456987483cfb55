"""The read written back: a VERIFIED SR revision with the radiologist as Verifying Observer, predecessor
referenced, Tracking Identifier/UID kept, the region the radiologist drew; dismiss revises to Absent.
Checked on the files radgate queued in the outbox (and the GSPS beside them)."""

from __future__ import annotations

import numpy as np
import pydicom
import pytest
from sqlalchemy import select

from radgate.config import Settings
from radgate.db import Database
from radgate.ingest.store import InstanceStore
from radgate.results.identity import ResultIdentity
from radgate.results.outbox import OutboxItem, results_store
from radgate.worklist.review import record_read
from tests.helpers.worklist import add_result, store_study

PRESENT = "52101004"  # SCT codes highdicom / radgate.results.sr use (PS3.16)


def _walk(items):  # type: ignore[no-untyped-def]
    for item in items:
        yield item
        if "ContentSequence" in item:
            yield from _walk(item.ContentSequence)


def _sr(settings: Settings, db: Database, uid: str) -> pydicom.Dataset:
    with db.session() as s:
        rows = s.scalars(select(OutboxItem).where(OutboxItem.SOPInstanceUID == uid)).all()
    assert rows, uid
    return pydicom.dcmread(results_store(settings.data_dir) / rows[0].path)


@pytest.fixture
def flagged(settings: Settings, db: Database):  # type: ignore[no-untyped-def]
    store = InstanceStore(settings, db)
    st = store_study(store, db, "agfa-dx")
    hot = np.zeros((32, 32), dtype=np.float32)
    hot[8:16, 20:28] = 1.0
    pid = add_result(db, st, score=0.93, settings=settings, explanation=hot)
    from radgate.engine.tables import Prediction
    from radgate.results.send import destinations_from_settings
    from radgate.results.sink import Publisher

    with db.session() as s:  # the AI's own report (revision 1, UNVERIFIED), as the results worker builds it
        Publisher(settings, destinations_from_settings(settings)).publish_prediction(
            s, s.get(Prediction, pid)
        )
    return st


def test_accept_then_modify_then_dismiss(settings: Settings, db: Database, flagged) -> None:  # type: ignore[no-untyped-def]
    key = f"{flagged.series}/demo-live/demo-pneumothorax/1.0.0"
    with db.session() as s:
        accepted = record_read(s, settings, "rita", flagged.study, "accept", observer="Reader^Rita")
    ai = _sr(settings, db, ResultIdentity(key, 1).sr_sop_uid)
    assert ai.VerificationFlag == "UNVERIFIED"
    sr_uid = ResultIdentity(key, 2).sr_sop_uid
    assert sr_uid in accepted.written
    sr = _sr(settings, db, sr_uid)
    assert sr.VerificationFlag == "VERIFIED" and sr.CompletionFlag == "COMPLETE"
    first = sr.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert first.ReferencedSOPInstanceUID == ai.SOPInstanceUID
    assert str(sr.VerifyingObserverSequence[0].VerifyingObserverName) == "Reader^Rita"
    assert sr.VerifyingObserverSequence[0].VerifyingOrganization == settings.site
    items = list(_walk(sr.ContentSequence))
    names = [i.ConceptNameCodeSequence[0].CodeMeaning for i in items if "ConceptNameCodeSequence" in i]
    assert "Tracking Identifier" in names and "Tracking Unique Identifier" in names
    tracking = next(i.UID for i in items if "UID" in i)
    codes = [i.ConceptCodeSequence[0].CodeValue for i in items if "ConceptCodeSequence" in i]
    assert PRESENT in codes

    with db.session() as s:
        modified = record_read(
            s, settings, "rita", flagged.study, "modify", present="present", region="10,20,110,220"
        )
    rev2 = ResultIdentity(key, 3)
    assert rev2.sr_sop_uid in modified.written
    sr2 = _sr(settings, db, rev2.sr_sop_uid)
    assert sr2.VerificationFlag == "VERIFIED"
    pred = sr2.PredecessorDocumentsSequence[0].ReferencedSeriesSequence[0].ReferencedSOPSequence[0]
    assert pred.ReferencedSOPInstanceUID == sr_uid  # the revision it replaces
    items2 = list(_walk(sr2.ContentSequence))
    assert next(i.UID for i in items2 if "UID" in i) == tracking  # a finding keeps its tracking UID
    graphic = next(i.GraphicData for i in items2 if "GraphicData" in i)
    pts = np.asarray(graphic, dtype=float).reshape(-1, 2)
    assert pts.min(axis=0).tolist() == [10.0, 20.0] and pts.max(axis=0).tolist() == [110.0, 220.0]
    with db.session() as s:
        kinds = {r.kind for r in s.scalars(select(OutboxItem).where(OutboxItem.revision == 3))}
    assert kinds == {"SR", "PR"}

    with db.session() as s:
        dismissed = record_read(s, settings, "rita", flagged.study, "dismiss", reason="false positive")
    sr3 = _sr(settings, db, ResultIdentity(key, 4).sr_sop_uid)
    assert dismissed.written and sr3.VerificationFlag == "VERIFIED"
    items3 = list(_walk(sr3.ContentSequence))
    codes3 = [i.ConceptCodeSequence[0].CodeValue for i in items3 if "ConceptCodeSequence" in i]
    assert PRESENT in codes3  # the AI's own evaluation at its operating point stays (see writeback.py)
    assert not any("GraphicData" in i for i in items3)  # the dismissed region is gone
    assert str(sr3.VerifyingObserverSequence[0].VerifyingObserverName) == "rita"


def _read(sr: pydicom.Dataset) -> dict[str, str]:
    """The read radgate writes into the finding's group (radgate.results.review): concept → value."""
    out = {}
    for i in _walk(sr.ContentSequence):
        if "ConceptNameCodeSequence" not in i:
            continue
        name = i.ConceptNameCodeSequence[0]
        if name.CodingSchemeDesignator == "99RADGATE" or name.CodeValue == "121106":
            value = i.ConceptCodeSequence[0].CodeMeaning if i.ValueType == "CODE" else i.TextValue
            out[name.CodeMeaning] = value
    return out


def test_the_read_is_inside_each_revision(settings: Settings, db: Database, flagged) -> None:  # type: ignore[no-untyped-def]
    from radgate.testing import dciodvfy, pixelmed_sr_validate
    from radgate.worklist.tables import ReviewRead

    key = f"{flagged.series}/demo-live/demo-pneumothorax/1.0.0"
    with db.session() as s:
        record_read(s, settings, "rita", flagged.study, "accept")
    assert _read(_sr(settings, db, ResultIdentity(key, 2).sr_sop_uid)) == {
        "Radiologist's read": "Accepted",
        "Finding at radiologist's read": "Present",
    }
    with db.session() as s:
        record_read(s, settings, "rita", flagged.study, "modify", present="absent", text="Skin fold, no PTX.")
    sr = _sr(settings, db, ResultIdentity(key, 3).sr_sop_uid)
    assert _read(sr) == {
        "Radiologist's read": "Modified",
        "Finding at radiologist's read": "Absent",
        "Comment": "Skin fold, no PTX.",
    }
    assert not any("GraphicData" in i for i in _walk(sr.ContentSequence))  # absent: no region
    with db.session() as s:
        record_read(
            s, settings, "rita", flagged.study, "dismiss", reason="artefact or device", text="Line artefact."
        )
    dismissed = _sr(settings, db, ResultIdentity(key, 4).sr_sop_uid)
    assert _read(dismissed) == {
        "Radiologist's read": "Dismissed",
        "Finding at radiologist's read": "Absent",
        "Reason for dismissal": "artefact or device",
        "Comment": "Line artefact.",
    }
    with db.session() as s:
        reads = [(r.action, r.label, r.reason, r.text, r.sr_sop_uid) for r in s.scalars(select(ReviewRead))]
    assert reads == [
        ("accept", 1, None, None, ResultIdentity(key, 2).sr_sop_uid),
        ("modify", 0, None, "Skin fold, no PTX.", ResultIdentity(key, 3).sr_sop_uid),
        ("dismiss", 0, "artefact or device", "Line artefact.", ResultIdentity(key, 4).sr_sop_uid),
    ]
    with db.session() as s:
        path = (
            results_store(settings.data_dir)
            / s.scalars(
                select(OutboxItem.path).where(OutboxItem.SOPInstanceUID == dismissed.SOPInstanceUID)
            ).first()
        )
    errors, _ = dciodvfy(path)  # the peers the SR tests use (scripts/install-peers.sh)
    assert errors == [], errors
    errors, _ = pixelmed_sr_validate(path)
    assert errors == [], errors


def test_free_text_is_checked(settings: Settings, db: Database, flagged) -> None:  # type: ignore[no-untyped-def]
    from radgate.errors import Invalid

    with db.session() as s, pytest.raises(Invalid, match="at most 10,000"):
        record_read(s, settings, "rita", flagged.study, "dismiss", text="x" * 10_001)
    with db.session() as s, pytest.raises(Invalid, match="control characters"):
        record_read(s, settings, "rita", flagged.study, "dismiss", text="a\x00b")


def test_withheld_is_never_written_back(settings: Settings, db: Database) -> None:
    store = InstanceStore(settings, db)
    st = store_study(store, db)
    add_result(db, st, policy="withheld", score=0.9, settings=settings)
    with db.session() as s:
        result = record_read(s, settings, "rita", st.study, "modify", present="present")
    assert result.written == ()
    with db.session() as s:
        assert s.scalars(select(OutboxItem)).all() == []


def test_after_review_sends_nothing_before_the_read(settings: Settings, db: Database) -> None:
    from radgate.config import ConfigError, load_settings
    from radgate.engine.tables import Prediction
    from radgate.results.send import destinations_from_settings
    from radgate.results.sink import Publisher

    settings.results.release = "after_review"
    store = InstanceStore(settings, db)
    st = store_study(store, db, "siemens-dx")
    pid = add_result(db, st, score=0.8, settings=settings)
    with db.session() as s:
        Publisher(settings, destinations_from_settings(settings)).publish_prediction(
            s, s.get(Prediction, pid)
        )
    with db.session() as s:
        assert s.scalars(select(OutboxItem)).all() == []  # held: nothing for the PACS yet
        result = record_read(s, settings, "rita", st.study, "accept")
    key = f"{st.series}/demo-live/demo-pneumothorax/1.0.0"
    sr = _sr(settings, db, ResultIdentity(key, 1).sr_sop_uid)  # the first report the PACS sees is verified
    assert ResultIdentity(key, 1).sr_sop_uid in result.written
    assert sr.VerificationFlag == "VERIFIED" and "PredecessorDocumentsSequence" not in sr
    with pytest.raises(ConfigError, match="results.release is 'later'"):
        load_settings(data_dir=settings.data_dir, environ={}, results__release="later")
