"""Challenger against champion: the comparison equals the statistics core on the same paired cases;
promotion is gated by criteria locked before it, writes a change record and an audit entry; rollback."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from sqlalchemy import select

from radgate.audit.tables import AuditEntry
from radgate.config import Settings
from radgate.db import Database
from radgate.errors import Conflict, Invalid
from radgate.learning.compare import compare_deployments
from radgate.learning.promotion import lock_criteria, parse_criteria, promote, rollback
from radgate.learning.tables import ChangeRecord
from radgate.routing import get_deployment
from radgate.stats.proportions import mcnemar_paired
from radgate.stats.roc import delong_paired
from tests.helpers.learning import paired_site

CRITERIA = """
[promotion]
min_pairs = 300
delta_auc_ci_lower_min = 0.0
sensitivity_drop_max = 0.05
scanner_delta_auc_min = -0.05
"""


def test_comparison_equals_the_statistics_core(tmp_path: Path, settings: Settings, db: Database) -> None:
    data = paired_site(tmp_path, settings, db, n=600)
    c = compare_deployments(db, "champion", "challenger").as_dict()
    y = data["labels"].astype(bool)
    ref = delong_paired(y, data["challenger"], data["champion"])
    assert c["n_pairs"] == 600 and c["positives"] == int(y.sum())
    assert c["auc_champion"] == pytest.approx(ref.auc_b, abs=1e-12)
    assert c["auc_challenger"] == pytest.approx(ref.auc_a, abs=1e-12)
    assert c["delta_auc"] == pytest.approx(ref.difference, abs=1e-12)
    assert c["delong_p"] == pytest.approx(ref.p, abs=1e-12)
    # independent check of the AUCs themselves: scikit-learn
    from sklearn.metrics import roc_auc_score

    assert c["auc_champion"] == pytest.approx(roc_auc_score(y, data["champion"]), abs=1e-12)
    fa, fb = data["champion"] >= 0.3, data["challenger"] >= 0.3
    assert c["mcnemar_p"] == pytest.approx(mcnemar_paired(fb == y, fa == y).p, abs=1e-12)
    # statsmodels' McNemar on the same 2x2 of correct calls (exact binomial, as ours when b + c < 25)
    from statsmodels.stats.contingency_tables import mcnemar as sm_mcnemar

    b = int(np.sum((fb == y) & (fa != y)))
    cc = int(np.sum((fb != y) & (fa == y)))
    table = [[int(np.sum((fb == y) & (fa == y))), b], [cc, int(np.sum((fb != y) & (fa != y)))]]
    exact = b + cc < 25
    assert c["mcnemar_p"] == pytest.approx(sm_mcnemar(table, exact=exact, correction=True).pvalue, rel=1e-9)
    agfa = next(r for r in c["per_scanner"] if r["level"].startswith("Agfa"))
    m = data["agfa"]
    sub = delong_paired(y[m], data["challenger"][m], data["champion"][m])
    assert agfa["n"] == int(m.sum()) and agfa["delta_auc"] == pytest.approx(sub.difference, abs=1e-12)
    assert {"PatientSex", "AgeBand", "ViewPosition"} <= set(c["subgroups"])
    assert c["calibration"]["challenger"]["ece"] >= 0


def test_only_labelled_pairs_count(tmp_path: Path, settings: Settings, db: Database) -> None:
    paired_site(tmp_path, settings, db, n=400, label_share=0.5)
    c = compare_deployments(db, "champion", "challenger").as_dict()
    assert c["n_pairs"] == 400 - c["left_out"]["paired but no reference label"] and 120 < c["n_pairs"] < 280
    with pytest.raises(Invalid, match="both 'champion'"):
        compare_deployments(db, "champion", "champion")


def test_promotion_gated_by_locked_criteria_then_rollback(
    tmp_path: Path, settings: Settings, db: Database
) -> None:
    paired_site(tmp_path, settings, db, n=600, challenger_gain=2.5)
    with pytest.raises(Conflict, match="no promotion criteria are locked"):
        promote(db, settings, "challenger", by="ds", override="test")
    strict = tmp_path / "strict.toml"
    strict.write_text("[promotion]\nmin_pairs = 5000\n")
    lock_criteria(db, "challenger", "champion", strict, by="ds")
    with pytest.raises(Conflict, match="min_pairs: observed 600"):
        promote(db, settings, "challenger", by="ds", override="test")
    with db.session() as s:
        assert get_deployment(s, "challenger").mode == "shadow"

    path = tmp_path / "criteria.toml"
    path.write_text(CRITERIA)
    locked = lock_criteria(db, "challenger", "champion", path, by="ds")
    assert locked.challenger_results_at_lock == 600
    path.write_text(CRITERIA.replace("300", "10"))  # edited after locking: the locked text still rules
    with pytest.raises(Conflict, match="not ready to go live"):
        promote(db, settings, "challenger", by="dr-lead")  # the go-live gate applies
    result = promote(db, settings, "challenger", by="dr-lead", override="site validation in the change plan")
    assert all(c.passed for c in result.criteria)
    assert any("changed after locking" in f for f in result.flags)
    with db.session() as s:
        assert get_deployment(s, "challenger").mode == "live"
        assert get_deployment(s, "champion").mode == "shadow"
        row = s.scalars(select(ChangeRecord)).one()
        assert row.approved_by == "dr-lead" and row.criteria_sha256 == locked.sha256
        assert row.override == "site validation in the change plan" and row.status == "promoted"
        actions = [e.action for e in s.scalars(select(AuditEntry).order_by(AuditEntry.id))]
    assert "learning.promote" in actions and "learning.lock_criteria" in actions
    assert result.record["what"]["challenger"]["version"] == "2.0.0"
    assert result.record["data"]["n_pairs"] == 600 and len(result.record["data"]["paired_cases_sha256"]) == 64

    with pytest.raises(Conflict, match="not ready to go live"):  # the gate refuses: nothing changes
        rollback(db, settings, "challenger", by="dr-lead")
    with db.session() as s:
        assert get_deployment(s, "challenger").mode == "live"
        assert get_deployment(s, "champion").mode == "shadow"
    back = rollback(db, settings, "challenger", by="dr-lead", note="complaints", override="restore champion")
    assert back.modes == {"champion": "live", "challenger": "shadow"}
    with db.session() as s:
        assert get_deployment(s, "challenger").mode == "shadow"
        assert get_deployment(s, "champion").mode == "live"
        assert s.scalars(select(ChangeRecord)).one().status == "rolled_back"
        assert "learning.rollback" in [e.action for e in s.scalars(select(AuditEntry))]


def test_criteria_file_is_checked() -> None:
    with pytest.raises(Invalid, match="unknown criterion 'auc'"):
        parse_criteria("[promotion]\nauc = 1\n")
    with pytest.raises(Invalid, match="exactly one \\[promotion\\]"):
        parse_criteria("[criteria]\nmin_pairs = 1\n")
    with pytest.raises(Invalid, match="whole number"):
        parse_criteria("[promotion]\nmin_pairs = 1.5\n")
