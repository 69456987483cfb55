"""Validation from radgate's own database: predictions + reference labels -> cases -> report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score
from typer.testing import CliRunner

import radgate.cli as cli
from radgate.config import Settings
from radgate.db import Database
from radgate.engine import Engine, enqueue_for_series
from radgate.models import add_model
from radgate.routing import DeploymentSpec, sync_deployments
from radgate.validation.from_db import age_band, cases_from_database
from tests.test_engine_support import build_package, index_series, make_dx


def _site(tmp_path: Path, settings: Settings, db: Database) -> dict[str, int]:
    with db.session() as s:
        add_model(s, build_package(tmp_path / "pkg"), settings.data_dir)
        sync_deployments(s, [DeploymentSpec(name="tiny", model="tiny-ptx", version="1.0.0", site="default",
                                            mode="silent")])
    truth: dict[str, int] = {}
    rng = np.random.default_rng(5)
    for i in range(24):
        label = int(i % 3 == 0)
        # the tiny model scores the lesion square: positives mostly bright there, a few misses and mimics
        bright = bool(label) != bool(rng.random() < 0.2)
        uid = index_series(db, settings, [make_dx(bright_lesion=bright, sex="F" if i % 2 else "M")])
        truth[uid] = label
    lateral = index_series(db, settings, [make_dx(view="LL")])
    truth[lateral] = 0
    with db.session() as s:
        for uid in truth:
            enqueue_for_series(s, uid)
    engine = Engine(settings, db)
    engine.run_until_idle(120)
    return truth


def test_cases_and_report_from_database(tmp_path: Path, settings: Settings, db: Database) -> None:
    truth = _site(tmp_path, settings, db)
    csv = tmp_path / "truth.csv"
    csv.write_text("SeriesInstanceUID,label,source,date\n" + "".join(
        f"{uid},{label},radiologist,2026-01-15\n" for uid, label in truth.items()))
    runner = CliRunner()
    cli.register_commands()
    data = ["--data-dir", str(settings.data_dir)]
    result = runner.invoke(cli.app, ["truth", "import", str(csv), *data])
    assert result.exit_code == 0, result.output

    cases = cases_from_database(db, "tiny-ptx", columns=["PatientSex"])
    assert cases.flow.received == 25 and cases.flow.analysed == 24
    assert list(cases.flow.excluded) == ["not applicable: ViewPosition LL is not in PA, AP"]
    expected = [truth[uid] for uid in cases.uids]
    assert cases.labels.tolist() == expected
    assert set(cases.attributes["PatientSex"]) == {"F", "M"}

    out = tmp_path / "report"
    result = runner.invoke(cli.app, ["report", "validation", "--out", str(out), "--model-name", "tiny-ptx",
                                     "--subgroup", "PatientSex", *data])
    assert result.exit_code == 0, result.output
    html = next(out.glob("*.html")).read_text()
    assert "not applicable: ViewPosition LL is not in PA, AP" in html
    numbers = json.loads(next(out.glob("*.json")).read_text())
    # independent implementation: scikit-learn on the same cases
    assert abs(numbers["validation"]["auc"] - roc_auc_score(cases.labels, cases.scores)) < 1e-12
    assert numbers["validation"]["threshold"] == 0.3  # the model's first operating point, not 0.5


def test_age_band() -> None:
    assert [age_band(a) for a in (None, 9, 18, 29.9, 30, 45, 79, 80, "x")] == [
        "unknown", "<18", "18-29", "18-29", "30-39", "40-49", "70-79", "80+", "unknown"]


def test_validate_an_exported_predictions_csv_keeps_not_applicable_reasons(
    tmp_path: Path, settings: Settings, db: Database
) -> None:
    """`predictions export` -> `validate`: series the model never scored count as not applicable, with why."""
    truth = _site(tmp_path, settings, db)
    runner = CliRunner()
    cli.register_commands()
    data = ["--data-dir", str(settings.data_dir)]
    labels = tmp_path / "labels.csv"  # no 'source' column, as a synthetic site's labels.csv
    labels.write_text("SeriesInstanceUID,label\n" + "".join(f"{u},{v}\n" for u, v in truth.items()))
    assert runner.invoke(cli.app, ["truth", "import", str(labels), *data]).exit_code != 0  # source needed
    result = runner.invoke(cli.app, ["truth", "import", str(labels), "--source", "synthetic", *data])
    assert result.exit_code == 0, result.output
    exported = tmp_path / "pred.csv"
    assert runner.invoke(cli.app, ["predictions", "export", "--format", "csv", "--out", str(exported), *data]
                         ).exit_code == 0
    result = runner.invoke(cli.app, ["validate", str(exported), "--score-col", "score", "--uid-col",
                                     "SeriesInstanceUID", "--json", *data])
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["n"] == 24 and out["case_flow"]["excluded"] == {
        "not applicable: ViewPosition LL is not in PA, AP": 1
    }
