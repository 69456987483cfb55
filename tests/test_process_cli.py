"""`radgate import` then `radgate process`: assembled, routed, scored, published and sent without a server.

Issue 16 found that `import` followed by `engine run` processed nothing (series are assembled only inside
`serve`) without a word. These tests run the commands a user types, on a data directory of their own.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path

from sqlalchemy import select
from typer.testing import CliRunner

import radgate.cli as cli
from radgate.config import load_settings
from radgate.db import Series, database_for
from radgate.engine import Prediction
from radgate.results.tables import OutboxItem
from radgate.services.processing import pending_work, process
from tests.helpers.datadir import make_data_dir
from tests.test_engine_support import build_package, make_dx


def _folder(tmp_path: Path) -> tuple[Path, str, str]:
    folder = tmp_path / "in"
    folder.mkdir()
    pa = make_dx(view="PA", bright_lesion=True, rows=128)
    lateral = make_dx(view="LL", rows=128, StudyInstanceUID=pa.StudyInstanceUID)
    other = make_dx(view="AP", rows=128)
    pa.save_as(folder / "pa.dcm", enforce_file_format=True)
    lateral.save_as(folder / "lat.dcm", enforce_file_format=True)
    other.save_as(folder / "ap.dcm", enforce_file_format=True)
    return folder, pa.SeriesInstanceUID, other.SeriesInstanceUID


def _run(runner: CliRunner, *args: str) -> tuple[int, str]:
    result = runner.invoke(cli.app, list(args))
    return result.exit_code, " ".join(result.output.split())


def test_import_then_process_gives_predictions_and_results(tmp_path: Path) -> None:
    cli.register_commands()
    runner = CliRunner()
    data = make_data_dir(tmp_path / "data")
    folder, pa_series, ap_series = _folder(tmp_path)
    code, out = _run(runner, "models", "add", str(build_package(tmp_path / "pkg")), "--data-dir", str(data))
    assert code == 0, out
    code, out = _run(runner, "import", str(folder), "--data-dir", str(data))
    assert code == 0, out

    # `engine run` right after the import: nothing to run, and it says why and what to do.
    code, out = _run(runner, "engine", "run", "--data-dir", str(data))
    assert code == 0, out
    assert "3 series not assembled yet" in out and "radgate process" in out, out

    # No deployment yet: the series are assembled, no model runs, and the note says how to add one.
    code, out = _run(runner, "process", "--data-dir", str(data))
    assert code == 0, out
    assert "assembled: 3 series complete" in out, out
    assert "No deployment exists" in out and "radgate process" in out, out
    settings = load_settings(data_dir=data, environ={})
    db = database_for(settings)
    with db.session() as s:
        assert {x.status for x in s.scalars(select(Series))} == {"complete"}
        assert s.scalars(select(Prediction)).all() == []

    # A deployment added afterwards: `process` routes the series completed before it existed.
    outbox_folder = tmp_path / "pacs-folder"
    (data / "radgate.toml").write_text(f'[results]\nfolder_destination = "{outbox_folder}"\n', encoding="utf-8")
    # live straight away only through the go-live gate, here with a recorded override
    code, out = _run(runner, "deployments", "add", "tiny-live", "--model", "tiny-ptx", "--version", "1.0.0",
                     "--mode", "live", "--override", "test: publishing path", "--data-dir", str(data))
    assert code == 0, out
    code, out = _run(runner, "process", "--data-dir", str(data))
    assert code == 0, out
    assert "routed: 3 series; jobs run: 2; results published: 2" in out, out
    assert "outbox: sent 4, to retry 0, failed 0" in out, out  # SR + GSPS for each scored series
    with db.session() as s:
        predictions = {p.SeriesInstanceUID: p for p in s.scalars(select(Prediction))}
        assert set(predictions) == {pa_series, ap_series}  # the lateral-only series is not applicable
        assert predictions[pa_series].flag and predictions[pa_series].policy == "released"
        assert {r.status for r in s.scalars(select(OutboxItem))} == {"sent"}
    assert len(list(outbox_folder.rglob("*.dcm"))) == 4
    assert pending_work(db).total == 0

    code, out = _run(runner, "predictions", "export", "--data-dir", str(data))
    assert code == 0, out
    rows = list(csv.DictReader(io.StringIO(runner.invoke(
        cli.app, ["predictions", "export", "--data-dir", str(data)]).stdout)))
    assert {r["SeriesInstanceUID"] for r in rows if r["score"]} == {pa_series, ap_series}

    # Running it again finds nothing left to do and duplicates nothing.
    code, out = _run(runner, "process", "--data-dir", str(data))
    assert code == 0 and "jobs run: 0" in out and "sent 0" in out, out
    with db.session() as s:
        assert len(s.scalars(select(OutboxItem)).all()) == 4
    db.dispose()


def test_process_keeps_series_still_within_the_quiet_period_when_asked(tmp_path: Path) -> None:
    settings = load_settings(data_dir=tmp_path / "d", environ={}, assembly__quiet_period_s=3600.0)
    db = database_for(settings, migrate=True)
    from radgate.ingest import InstanceStore, import_paths

    folder, _, _ = _folder(tmp_path)
    import_paths(InstanceStore(settings, db), [folder])
    kept = process(settings, db, finish_receiving=False)
    assert kept.completed == 0 and pending_work(db).receiving == 3
    stages: list[tuple[str, int, int]] = []
    done = process(settings, db, progress=lambda *a: stages.append(a))
    assert done.completed == 3 and pending_work(db).receiving == 0
    assert [s for s, *_ in stages if _[0] == 0][:1] == ["assemble"]
    assert ("assemble", 3, 3) in stages
    db.dispose()


def test_an_empty_export_says_why_and_what_to_do(tmp_path: Path) -> None:
    """Issue 16: `predictions export` wrote 0 rows without a word. Each cause gets its own sentence."""
    cli.register_commands()
    runner = CliRunner()
    data = make_data_dir(tmp_path / "data")
    out_csv = tmp_path / "p.csv"
    # 1. no deployment
    code, out = _run(runner, "predictions", "export", "--out", str(out_csv), "--data-dir", str(data))
    assert code == 0 and "Wrote 0 rows" in out, out
    assert "0 rows: No deployment exists" in out and "deployments add" in out, out
    # 2. a deployment, nothing received
    code, out = _run(runner, "models", "add", str(build_package(tmp_path / "pkg")), "--data-dir", str(data))
    assert code == 0, out
    (data / "radgate.toml").write_text(
        '[[deployments]]\nname = "tiny-silent"\nmodel = "tiny-ptx"\nversion = "1.0.0"\nmode = "silent"\n',
        encoding="utf-8",
    )
    code, out = _run(runner, "predictions", "export", "--data-dir", str(data))
    assert code == 0 and "No series has been routed to a deployment (tiny-silent) yet" in out, out
    assert "nothing has been received" in out, out
    # 3. received but not processed: the hint names `radgate process`
    folder, _, _ = _folder(tmp_path)
    assert _run(runner, "import", str(folder), "--data-dir", str(data))[0] == 0
    code, out = _run(runner, "predictions", "export", "--data-dir", str(data))
    assert "3 series not assembled yet" in out and "Run `radgate process`" in out, out
    # 4. processed, but --mode matches nothing: the modes present are named
    assert _run(runner, "process", "--data-dir", str(data))[0] == 0
    code, out = _run(runner, "predictions", "export", "--mode", "live", "--out", str(out_csv),
                     "--data-dir", str(data))
    assert code == 0 and "Wrote 0 rows" in out, out
    assert "No result has mode 'live'; the modes present are: silent (3)" in out, out
    code, out = _run(runner, "predictions", "export", "--mode", "silent", "--out", str(out_csv),
                     "--data-dir", str(data))
    assert "Wrote 3 rows" in out and "0 rows:" not in out, out
