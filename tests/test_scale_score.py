"""`radgate score` on Ray Data: the same scores as the gateway for the same series, Parquet out, and
retrospective predictions that are never sent and never shown."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path

import pyarrow.parquet as pq
import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from radgate.assembly import Assembler
from radgate.config import Settings
from radgate.db import Database
from radgate.engine import Engine, EngineOptions, Prediction
from radgate.ingest import InstanceStore, import_paths
from radgate.models import add_model
from radgate.policy.tables import PublishIntent
from radgate.routing import DeploymentSpec, sync_deployments
from radgate.scoring import PARQUET_COLUMNS, ScoreRequest, score
from radgate.scoring.retro import deployment_name
from tests.helpers.synth import image_for, profile_names
from tests.test_engine_support import build_package, make_dx

ray = pytest.importorskip("ray")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def _site(folder: Path) -> None:
    """Every vendor profile (VOI LUT, MONOCHROME1 ...), bright and plain lesions, a mixed PA + lateral series
    and a lateral-only series (not applicable), each image a file."""
    folder.mkdir(parents=True)
    images = [image_for(p) for p in profile_names()]
    images += [make_dx(bright_lesion=True), make_dx(), make_dx(photometric="MONOCHROME1", bright_lesion=True)]
    mixed = make_dx(bright_lesion=True)
    images += [mixed, make_dx(view="LL", StudyInstanceUID=mixed.StudyInstanceUID,
                              SeriesInstanceUID=mixed.SeriesInstanceUID)]
    images.append(make_dx(view="LL"))
    for i, ds in enumerate(images):
        ds.InstanceNumber = i + 1
        ds.save_as(folder / f"{i:02d}.dcm", enforce_file_format=True)


def _gateway_predictions(settings: Settings, db: Database, folder: Path) -> dict[str, Prediction]:
    """The gateway's path: import, assembly, routing per instance, the engine."""
    engine = Engine(settings, db, options=EngineOptions(poll_interval_s=0.05, explanations=False))
    import_paths(InstanceStore(settings, db), [folder])
    time.sleep(settings.assembly.quiet_period_s + 0.2)
    Assembler(settings, db, [engine.hook]).run_once()
    engine.run_until_idle(120)
    with db.session() as s:
        return {p.SeriesInstanceUID: p for p in s.scalars(select(Prediction).where(Prediction.deployment == "ptx"))}


def test_score_equals_the_gateway_and_stores_retrospective_predictions(
    tmp_path: Path, settings: Settings, db: Database, local_ray: None
) -> None:
    with db.session() as s:
        add_model(s, build_package(tmp_path / "pkg"), settings.data_dir)
        sync_deployments(s, [DeploymentSpec("ptx", "tiny-ptx", "1.0.0", mode="live")])
    folder = tmp_path / "site"
    _site(folder)
    gateway = _gateway_predictions(settings, db, folder)
    assert len(gateway) >= 6  # some series do not fit the tiny model's intended use (the lateral-only one)

    out = tmp_path / "out" / "predictions.parquet"
    seen: list[tuple[int, int]] = []
    report = score(settings, db, ScoreRequest("tiny-ptx", "1.0.0", out, folder=folder, into_db=True,
                                              batch_size=4), progress=lambda d, t: seen.append((d, t)))
    assert seen[-1] == (report.instances, report.instances) == (len(list(folder.iterdir())),) * 2
    assert report.not_applicable >= 2 and report.series_without_fitting_image >= 1 and not report.unreadable
    with db.session() as s:
        from radgate.engine.tables import RoutingDecisionRow

        unrouted = s.scalars(select(RoutingDecisionRow).where(RoutingDecisionRow.decision != "matched")).all()
    assert report.series_without_fitting_image == len(unrouted)  # the gateway's routing, series by series

    table = pq.read_table(out)
    assert tuple(table.column_names) == PARQUET_COLUMNS
    rows = {r["SeriesInstanceUID"]: r for r in table.to_pylist()}
    assert set(rows) == set(gateway)
    for uid, p in gateway.items():
        row = rows[uid]
        assert row["score"] == pytest.approx(p.score, abs=1e-6), uid  # float32 model, same preprocessing
        assert row["flag"] == p.flag and row["used_instances"] == json.loads(p.used_instances), uid
        assert (row["StudyInstanceUID"], row["model"], row["model_version"]) == (
            p.StudyInstanceUID, "tiny-ptx", "1.0.0")
    assert any(r["flag"] for r in rows.values()) and not all(r["flag"] for r in rows.values())
    mixed = [r for r in rows.values() if len(r["used_instances"]) == 1 and r["SeriesInstanceUID"] in gateway]
    assert mixed  # the lateral of the mixed series never reached the model

    name = deployment_name("tiny-ptx", "1.0.0")
    with db.session() as s:
        retro = s.scalars(select(Prediction).where(Prediction.deployment == name)).all()
        intents = s.scalars(select(PublishIntent)).all()
    assert len(retro) == len(gateway) == report.stored
    assert {(p.mode, p.policy, p.urgency) for p in retro} == {("retrospective", "retrospective", 0.0)}
    assert {i.prediction_id for i in intents}.isdisjoint({p.id for p in retro})  # never sent
    again = score(settings, db, ScoreRequest("tiny-ptx", "1.0.0", out, folder=folder, into_db=True))
    assert again.stored == 0 and again.already_stored == len(gateway)


def test_score_cli_from_the_index_and_its_errors(
    tmp_path: Path, settings: Settings, db: Database, local_ray: None
) -> None:
    import radgate.cli as cli

    with db.session() as s:
        add_model(s, build_package(tmp_path / "pkg"), settings.data_dir)
    folder = tmp_path / "site"
    folder.mkdir()
    a, b = make_dx(bright_lesion=True), make_dx()
    a.save_as(folder / "a.dcm", enforce_file_format=True)
    b.save_as(folder / "b.dcm", enforce_file_format=True)
    import_paths(InstanceStore(settings, db), [folder])
    time.sleep(settings.assembly.quiet_period_s + 0.2)
    Assembler(settings, db, []).run_once()  # assembled, on the worklist, no deployment: no AI result
    studies = tmp_path / "studies.txt"
    studies.write_text(f"StudyInstanceUID\n{a.StudyInstanceUID}\n")
    cli.register_commands()
    runner = CliRunner()
    data = ["--data-dir", str(settings.data_dir)]
    out = tmp_path / "p.parquet"
    ok = runner.invoke(cli.app, ["score", "--model", "tiny-ptx", "--version", "1.0.0", "--study-list", str(studies),
                                 "--out", str(out), "--into-db", *data], env={"RADGATE_CONFIG": ""})
    assert ok.exit_code == 0, ok.output
    assert "Stored 1 retrospective prediction(s)" in " ".join(ok.stdout.split())
    from radgate.worklist.service import AIState, worklist_rows

    with db.session() as s:
        (retro,) = s.scalars(select(Prediction)).all()
        rows = {r.StudyInstanceUID: r for r in worklist_rows(s)}
    assert retro.flag and retro.policy == "retrospective"  # flagged at the operating point ...
    assert rows[a.StudyInstanceUID].ai is AIState.NONE and not rows[a.StudyInstanceUID].flagged  # ... never shown
    assert "Scored 1 series (1 instances)" in " ".join(ok.stdout.split())
    assert pq.read_table(out).column("SeriesInstanceUID").to_pylist() == [a.SeriesInstanceUID]
    since = runner.invoke(cli.app, ["score", "--model", "tiny-ptx", "--version", "1.0.0", "--since", "1900-01-01",
                                    "--out", str(out), *data], env={"RADGATE_CONFIG": ""})
    assert since.exit_code == 0, since.output
    assert pq.read_table(out).num_rows == 2

    for args, message in [
        ([], "give exactly one of --folder DIR, --study-list FILE or --since DATE"),
        (["--since", "01/02/2020"], "--since '01/02/2020' is not a date; expected YYYY-MM-DD."),
        (["--folder", str(tmp_path / "nope")], f"--folder {tmp_path / 'nope'} is not a folder"),
    ]:
        bad = runner.invoke(cli.app, ["score", "--model", "tiny-ptx", "--version", "1.0.0", "--out", str(out),
                                      *args, *data], env={"RADGATE_CONFIG": ""})
        assert bad.exit_code == 2, bad.output
        assert message in " ".join(bad.stderr.split())
    unknown = runner.invoke(cli.app, ["score", "--model", "nope", "--version", "1", "--folder", str(folder),
                                      "--out", str(out), *data], env={"RADGATE_CONFIG": ""})
    assert unknown.exit_code != 0 and "Traceback" not in unknown.output and "nope" in unknown.stderr
