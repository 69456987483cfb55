"""`radgate import`: folders, recursion, a summary of stored / duplicate / rejected with reasons."""

from __future__ import annotations

import json
from pathlib import Path

from pydicom.data import get_testdata_file
from typer.testing import CliRunner

import radgate.cli as cli
from tests.dicomgen import make_dx
from tests.helpers.datadir import make_data_dir


def test_import_folder_with_good_bad_and_duplicate_files(tmp_path: Path) -> None:
    src = tmp_path / "incoming"
    (src / "nested" / "deeper").mkdir(parents=True)
    for i in range(3):
        make_dx(seed=i).save_as(src / f"dx{i}.dcm", enforce_file_format=True)
    dup = make_dx(seed=9)
    dup.save_as(src / "nested" / "a.dcm", enforce_file_format=True)
    dup.save_as(src / "nested" / "deeper" / "same-again.dcm", enforce_file_format=True)
    (src / "nested" / "notes.txt").write_text("not an image")
    (src / "empty.dcm").write_bytes(b"")
    rg1_j2k = Path(get_testdata_file("RG1_J2KR.dcm"))  # pydicom-data: real CR chest, JPEG 2000 lossless
    (src / "rg1_j2kr.dcm").write_bytes(rg1_j2k.read_bytes())

    data_dir = make_data_dir(tmp_path / "data")
    cli.register_commands()
    runner = CliRunner()
    result = runner.invoke(cli.app, ["import", str(src), "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "stored │ 5" in out or "stored | 5" in out or "stored 5" in out, result.output
    assert "duplicate │ 1" in out or "duplicate 1" in out, result.output
    assert "rejected │ 2" in out or "rejected 2" in out, result.output
    assert "empty (zero bytes)" in out and "Not a DICOM file" in out

    listed = runner.invoke(cli.app, ["rejections", "--json", "--data-dir", str(data_dir)])
    rows = json.loads(listed.stdout)
    assert {r["source"] for r in rows} == {"import"} and len(rows) == 2

    missing = runner.invoke(cli.app, ["import", str(tmp_path / "nope"), "--data-dir", str(data_dir)])
    assert missing.exit_code == 2 and "does not exist" in " ".join(missing.output.split())


def test_import_decodes_jpeg2000_cr_in_the_background_check(tmp_path: Path) -> None:
    from radgate.config import load_settings
    from radgate.db import database_for
    from radgate.ingest import InstanceStore, PixelChecker, import_paths

    settings = load_settings(data_dir=tmp_path / "d", environ={})
    db = database_for(settings, migrate=True)
    store = InstanceStore(settings, db)
    summary = import_paths(store, [Path(get_testdata_file("RG1_J2KR.dcm")), Path(get_testdata_file("RG1_UNCR.dcm"))])
    assert summary.counts["stored"] + summary.counts["revision"] == 2
    assert PixelChecker(store, db).run_once() == 2
    from sqlalchemy import select

    from radgate.db import Instance

    with db.session() as s:
        assert {r.pixel_status for r in s.scalars(select(Instance))} == {"ok"}
    db.dispose()
