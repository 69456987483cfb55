"""radgate.stats.confounders against statsmodels, scipy, scikit-learn and a direct pair count."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats.contingency import association
from sklearn.metrics import roc_auc_score
from statsmodels.stats.contingency_tables import Table

from radgate.stats.confounders import auc_within_strata, metadata_predicts_label


def confounded_site(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Scanner X sees most positives; the 'model' mostly recognises the scanner (a shortcut)."""
    rng = np.random.default_rng(seed)
    scanner = rng.choice(np.array(["X", "Y"]), size=3000)
    y = (rng.random(3000) < np.where(scanner == "X", 0.6, 0.1)).astype(int)
    score = 2.0 * (scanner == "X") + 0.3 * y + rng.normal(size=3000)
    return y, score, scanner


def test_metadata_predicting_label_is_detected() -> None:
    y, _, scanner = confounded_site()
    res = metadata_predicts_label(y, {"ManufacturerModelName": scanner.tolist()})
    table = np.array(
        [
            [np.sum((scanner == lv) & (y == 1)) for lv in ("X", "Y")],
            [np.sum((scanner == lv) & (y == 0)) for lv in ("X", "Y")],
        ]
    )
    # Pearson chi-square from statsmodels' Table.test_nominal_association; Cramer's V from scipy.
    assert res.chi2 == pytest.approx(Table(table).test_nominal_association().statistic, rel=1e-10)
    assert res.cramers_v == pytest.approx(association(table, method="cramer"), rel=1e-10)
    assert res.auc is not None
    assert res.auc.auc > 0.7
    assert res.auc.ci[0] > 0.5
    assert "predicts the label" in res.note
    prevalence = {lv.level: lv.prevalence.estimate for lv in res.levels}
    assert prevalence["X"] == pytest.approx(np.mean(y[scanner == "X"]))


def test_unrelated_metadata_is_not_flagged() -> None:
    rng = np.random.default_rng(1)
    y = (rng.random(2000) < 0.3).astype(int)
    sex = rng.choice(np.array(["F", "M"]), size=2000)
    res = metadata_predicts_label(y, {"PatientSex": sex.tolist()})
    assert res.auc is not None
    assert res.auc.ci[0] < 0.5 < res.auc.ci[1] or res.p >= 0.05
    assert res.note == "no evidence that the metadata alone predicts the label"


def test_single_level_metadata_is_explained() -> None:
    res = metadata_predicts_label([0, 1, 0, 1, 1, 0], {"Manufacturer": ["ACME"] * 6})
    assert res.auc is None
    assert "single level" in res.note


def test_within_strata_auc_exposes_the_shortcut() -> None:
    y, score, scanner = confounded_site(2)
    res = auc_within_strata(y, score, scanner.tolist(), column="ManufacturerModelName")
    assert res.overall.auc == pytest.approx(roc_auc_score(y, score), abs=1e-12)
    for stratum in res.strata:
        m = scanner == stratum.level
        assert stratum.auc is not None
        assert stratum.auc.auc == pytest.approx(roc_auc_score(y[m], score[m]), abs=1e-12)
    # The pooled within-strata AUC is the AUC over positive-negative pairs that share a scanner:
    # count those pairs directly (O(mn), no ranks) as the independent formulation.
    wins, pairs = 0.0, 0
    for lv in ("X", "Y"):
        x = score[(scanner == lv) & (y == 1)]
        w = score[(scanner == lv) & (y == 0)]
        wins += float(np.sum(x[:, None] > w[None, :]) + 0.5 * np.sum(x[:, None] == w[None, :]))
        pairs += x.size * w.size
    assert res.pooled_auc == pytest.approx(wins / pairs, rel=1e-12)
    assert res.pairs_within_fraction == pytest.approx(pairs / (y.sum() * (1 - y).sum()), rel=1e-12)
    # The shortcut inflates the overall AUC well above the within-scanner AUC.
    assert res.pooled_auc is not None and res.overall.auc - res.pooled_auc > 0.1
