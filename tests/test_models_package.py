"""Packages (folder or zip) are hash-checked at load; the registry keeps versions side by side; the CLI drives it."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest
from typer.testing import CliRunner

import radgate.cli.models  # noqa: F401  (registers the commands)
from radgate.cli.app import app
from radgate.config import Settings
from radgate.db import Database
from radgate.inference import LoadedModel
from radgate.models import (
    ModelPackage,
    PackageError,
    PackageIntegrityError,
    RegistryError,
    add_model,
    ensure_default_models,
    get_model,
    list_models,
    open_model,
    remove_model,
    verify_model,
)
from radgate.models.registry import BUNDLED_MODELS
from tests.test_engine_support import build_package, tiny_onnx


def _tamper(path: Path) -> None:
    weights = path / "model.onnx"
    weights.write_bytes(weights.read_bytes() + b"\0")


def test_folder_package_loads_and_records_hash(tmp_path: Path) -> None:
    package = ModelPackage.open(build_package(tmp_path / "pkg"))
    assert package.manifest.weights.sha256 == package.weights_sha256()
    assert package.load_weights() == tiny_onnx()
    assert "Synthetic" in package.model_card
    assert package.files() == ["MODEL_CARD.md", "manifest.toml", "model.onnx"]


def test_zip_package_with_top_folder(tmp_path: Path) -> None:
    folder = build_package(tmp_path / "tiny-ptx-1.0.0")
    archive = tmp_path / "tiny.zip"
    with zipfile.ZipFile(archive, "w") as zf:
        for item in folder.iterdir():
            zf.write(item, f"tiny-ptx-1.0.0/{item.name}")
    package = ModelPackage.open(archive)
    assert package.is_zip and package.prefix == "tiny-ptx-1.0.0/"
    assert package.load_weights() == tiny_onnx()


def test_hash_mismatch_refuses_to_load(tmp_path: Path) -> None:
    path = build_package(tmp_path / "pkg")
    _tamper(path)
    package = ModelPackage.open(path)
    with pytest.raises(PackageIntegrityError) as info:
        LoadedModel.load(package)
    message = str(info.value)
    assert "tiny-ptx 1.0.0" in message and "model.onnx" in message and "refusing to run" in message
    assert package.weights_sha256() in message and package.manifest.weights.sha256 in message


def test_missing_manifest_is_explained(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(PackageError, match="has no manifest.toml"):
        ModelPackage.open(tmp_path / "empty")


def test_registry_versions_side_by_side(tmp_path: Path, settings: Settings, db: Database) -> None:
    with db.session() as s:
        add_model(s, build_package(tmp_path / "v1"), settings.data_dir, registered_by="tester")
    v2 = build_package(tmp_path / "v2.zip", version="1.10.0", as_zip=True)
    with db.session() as s:
        add_model(s, v2, settings.data_dir)
        models = list_models(s)
        assert [(m.name, m.version) for m in models] == [("tiny-ptx", "1.10.0"), ("tiny-ptx", "1.0.0")]
        assert get_model(s, "tiny-ptx").version == "1.10.0"  # newest by SemVer, not by string
        assert get_model(s, "tiny-ptx", "1.0.0").registered_by == "tester"
        installed = get_model(s, "tiny-ptx", "1.10.0")
    assert installed.path.is_relative_to(settings.data_dir.resolve()) and installed.path.suffix == ".zip"
    with db.session() as s, pytest.raises(RegistryError, match="no version '2.0.0'.*1.0.0, 1.10.0"):
        get_model(s, "tiny-ptx", "2.0.0")


def test_same_version_with_other_weights_is_refused(tmp_path: Path, settings: Settings, db: Database) -> None:
    with db.session() as s:
        first = add_model(s, build_package(tmp_path / "a"), settings.data_dir)
        again = add_model(s, build_package(tmp_path / "b"), settings.data_dir)  # same bytes: a no-op
        assert again.id == first.id
    with db.session() as s, pytest.raises(RegistryError, match="already installed with weights"):
        add_model(s, build_package(tmp_path / "c", weights=tiny_onnx(gain=3.0)), settings.data_dir)


def test_tampered_install_fails_verify_and_load(tmp_path: Path, settings: Settings, db: Database) -> None:
    with db.session() as s:
        model = add_model(s, build_package(tmp_path / "pkg"), settings.data_dir)
        assert verify_model(s, "tiny-ptx").ok
    _tamper(model.path)
    with db.session() as s:
        report = verify_model(s, "tiny-ptx", "1.0.0")
    assert not report.ok and report.actual_sha256 != report.expected_sha256
    with pytest.raises(PackageIntegrityError):
        open_model(model).load_weights()


def test_remove(tmp_path: Path, settings: Settings, db: Database) -> None:
    with db.session() as s:
        model = add_model(s, build_package(tmp_path / "pkg"), settings.data_dir)
    with db.session() as s:
        remove_model(s, "tiny-ptx", "1.0.0", settings.data_dir)
    assert not model.path.exists()
    with db.session() as s:
        assert list_models(s) == []


def test_bundled_package_is_registered_once(tmp_path: Path, settings: Settings, db: Database) -> None:
    bundled = build_package(tmp_path / "bundled" / "demo")
    with db.session() as s:
        added = ensure_default_models(s, settings.data_dir, bundled=(bundled, tmp_path / "absent"))
        assert [m.label for m in added] == ["tiny-ptx 1.0.0"]
        assert ensure_default_models(s, settings.data_dir, bundled=(bundled,)) == []
        assert get_model(s, "tiny-ptx").registered_by == "radgate (bundled)"
    assert BUNDLED_MODELS[0].parts[-3:] == ("models", "demo-pneumothorax", "1.0.0")


def test_cli_add_list_show_verify_remove(tmp_path: Path, settings: Settings) -> None:
    runner = CliRunner()
    data = ["--data-dir", str(settings.data_dir)]
    pkg = build_package(tmp_path / "pkg")
    result = runner.invoke(app, ["models", "add", str(pkg), *data, "--by", "alice"])
    assert result.exit_code == 0, result.output
    assert "Installed tiny-ptx 1.0.0" in result.output
    result = runner.invoke(app, ["models", "list", *data, "--json"])
    rows = [r for r in json.loads(result.stdout) if r["name"] == "tiny-ptx"]
    assert rows[0]["registered_by"] == "alice" and rows[0]["synthetic"] is True
    result = runner.invoke(app, ["models", "show", "tiny-ptx", *data])
    assert result.exit_code == 0 and "high-sensitivity" in result.output and "not for clinical use" in result.output
    assert runner.invoke(app, ["models", "verify", "tiny-ptx", *data]).exit_code == 0
    _tamper(settings.data_dir / "models" / "tiny-ptx" / "1.0.0")
    result = runner.invoke(app, ["models", "verify", "tiny-ptx", *data])
    assert result.exit_code == 1 and "MISMATCH" in result.output
    result = runner.invoke(app, ["models", "remove", "tiny-ptx", "1.0.0", *data])
    assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["models", "show", "tiny-ptx", *data])
    assert result.exit_code == 1 and "No model named 'tiny-ptx'" in result.output
