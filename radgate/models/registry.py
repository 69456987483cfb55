"""The model registry: install, list, verify and remove model packages; several versions side by side.

Installed packages are copied under ``DATA_DIR/models/NAME/VERSION`` (a folder, or ``VERSION.zip``) so that
what runs never depends on where a package was downloaded to; the database row (``model_versions``) keeps the
manifest and the weights' digest. The bundled demo package (``radgate/data/models/demo-pneumothorax/1.0.0``,
written by ``scripts/train_demo_model.py``) is registered by :func:`ensure_default_models` when present.
"""

from __future__ import annotations

import getpass
import json
import logging
import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from radgate.clock import utcnow
from radgate.errors import Conflict, Invalid, NotFound
from radgate.logs import REPORTED
from radgate.models.installed import BUNDLED_MODELS, InstalledModel, newest_first, unregistered_bundled
from radgate.models.installed import version_key as _version_key
from radgate.models.package import ModelPackage, PackageError, PackageIntegrityError
from radgate.models.tables import ModelVersion

__all__ = [
    "BUNDLED_MODELS",
    "InstalledModel",
    "RegistryError",
    "VerifyReport",
    "add_model",
    "ensure_default_models",
    "get_model",
    "list_models",
    "open_model",
    "remove_model",
    "verify_model",
]

log = logging.getLogger(__name__)


class RegistryError(Invalid, ValueError):
    """A registry operation cannot be done (unknown model, conflicting version, model in use)."""


class ModelNotFound(RegistryError, NotFound):  # noqa: N818 - a kind of NotFound
    """No installed model has that name or version."""

    kind = NotFound.kind


class ModelConflict(RegistryError, Conflict):  # noqa: N818 - a kind of Conflict
    """The registry's state forbids the operation (same version with other weights, model in use)."""

    kind = Conflict.kind


def whoami() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@dataclass(frozen=True)
class VerifyReport:
    """The result of re-hashing an installed package's weights."""

    name: str
    version: str
    ok: bool
    expected_sha256: str
    actual_sha256: str | None
    message: str


def models_dir(data_dir: Path) -> Path:
    return Path(data_dir) / "models"


def add_model(
    session: Session,
    source: Path,
    data_dir: Path,
    registered_by: str | None = None,
) -> InstalledModel:
    """Check ``source`` (folder or .zip, weights hashed), copy it into ``DATA_DIR/models`` and register it.

    Adding the same name and version again with the same weights is a no-op that returns the installed
    model; with different weights it is refused (bump the version, or remove the old one first).
    """
    package = ModelPackage.open(source)
    package.load_weights()  # raises PackageIntegrityError: a damaged package is never installed
    manifest = package.manifest
    existing = session.scalars(
        select(ModelVersion).where(
            ModelVersion.name == manifest.name, ModelVersion.version == manifest.version
        )
    ).one_or_none()
    if existing is not None:
        if existing.sha256 == manifest.weights.sha256:
            return InstalledModel.from_row(existing)
        raise ModelConflict(
            f"Model {manifest.name} {manifest.version} is already installed with weights "
            f"{existing.sha256[:12]}…, and {str(source)!r} has {manifest.weights.sha256[:12]}…. "
            f"Give the new package a new version, or "
            f"remove the installed one first (radgate models remove {manifest.name} {manifest.version})."
        )
    dest = models_dir(data_dir) / manifest.name / (manifest.version + (".zip" if package.is_zip else ""))
    if dest.exists():
        shutil.rmtree(dest) if dest.is_dir() else dest.unlink()
    dest.parent.mkdir(parents=True, exist_ok=True)
    if package.is_zip:
        shutil.copy2(package.root, dest)
    else:
        shutil.copytree(package.root, dest)
    installed = ModelPackage.open(dest)
    installed.load_weights()
    row = ModelVersion(
        name=manifest.name,
        version=manifest.version,
        task=manifest.model.task,
        description=manifest.model.description,
        synthetic=manifest.model.synthetic_training_data,
        sha256=manifest.weights.sha256,
        path=str(dest.resolve()),
        source=str(Path(source).resolve()),
        manifest=manifest.to_toml(),
        finding_names=json.dumps([f.name for f in manifest.findings]),
        intended_use_summary=manifest.intended_use.summary,
        registered_at=utcnow(),
        registered_by=registered_by or whoami(),
    )
    session.add(row)
    session.flush()
    log.info(
        "registered model %s %s (sha256 %s)",
        manifest.name,
        manifest.version,
        manifest.weights.sha256,
        extra=REPORTED,  # the command that registered it says so
    )
    return InstalledModel.from_row(row)


def list_models(session: Session, name: str | None = None) -> list[InstalledModel]:
    """Every installed model version (of ``name`` if given), by name then newest version first."""
    query = select(ModelVersion)
    if name is not None:
        query = query.where(ModelVersion.name == name)
    return newest_first(InstalledModel.from_row(r) for r in session.scalars(query))


def _get_row(session: Session, name: str, version: str | None) -> ModelVersion:
    rows = list(session.scalars(select(ModelVersion).where(ModelVersion.name == name)))
    if not rows:
        known = sorted(set(session.scalars(select(ModelVersion.name))))
        raise ModelNotFound(
            f"No model named {name!r} is installed; installed: {', '.join(known) or 'none'}. "
            f"Install one with radgate models add PATH."
        )
    if version is None:
        return max(rows, key=lambda r: _version_key(r.version))
    for row in rows:
        if row.version == version:
            return row
    raise ModelNotFound(
        f"Model {name!r} has no version {version!r}; installed versions: "
        f"{', '.join(sorted((r.version for r in rows), key=_version_key))}."
    )


def get_model(session: Session, name: str, version: str | None = None) -> InstalledModel:
    """One installed model version; ``version=None`` means the newest."""
    return InstalledModel.from_row(_get_row(session, name, version))


def open_model(model: InstalledModel) -> ModelPackage:
    """Open an installed package and check that it still is the one registered (manifest digest)."""
    package = ModelPackage.open(model.path)
    if package.manifest.weights.sha256 != model.sha256:
        raise PackageIntegrityError(
            f"Model {model.label}: the manifest at {str(model.path)!r} now names weights "
            f"{package.manifest.weights.sha256}, "
            f"but {model.sha256} was registered. The installed package was altered; refusing to run it. "
            f"Remove and re-add it (radgate models remove / add)."
        )
    return package


def verify_model(session: Session, name: str, version: str | None = None) -> VerifyReport:
    """Re-hash the installed weights and compare with the registered digest."""
    model = get_model(session, name, version)
    try:
        package = open_model(model)
        actual = package.weights_sha256()
        package.load_weights()
    except PackageIntegrityError as exc:
        return VerifyReport(model.name, model.version, False, model.sha256, _safe_hash(model), str(exc))
    except PackageError as exc:
        return VerifyReport(model.name, model.version, False, model.sha256, None, str(exc))
    return VerifyReport(
        model.name,
        model.version,
        True,
        model.sha256,
        actual,
        f"Model {model.label}: weights match the registered SHA-256 {model.sha256}.",
    )


def _safe_hash(model: InstalledModel) -> str | None:
    try:
        return ModelPackage.open(model.path).weights_sha256()
    except PackageError:
        return None


def remove_model(session: Session, name: str, version: str, data_dir: Path) -> InstalledModel:
    """Unregister a model version and delete its installed copy.

    Refused while a deployment refers to it (turn the deployment off and drop it from the config first);
    stored predictions keep the model's name and version, so history survives the removal.
    """
    row = _get_row(session, name, version)
    model = InstalledModel.from_row(row)
    session.delete(row)
    try:
        session.flush()
    except IntegrityError as exc:
        raise ModelConflict(
            f"Model {model.label} is used by a deployment (see radgate deployments list); remove that "
            f"deployment from the config before removing the model."
        ) from exc
    root = models_dir(data_dir).resolve()
    if model.path.resolve().is_relative_to(root) and model.path.exists():
        shutil.rmtree(model.path) if model.path.is_dir() else model.path.unlink()
    log.info("removed model %s %s", model.name, model.version)
    return model


def ensure_default_models(
    session: Session,
    data_dir: Path,
    bundled: Sequence[Path] = BUNDLED_MODELS,
) -> list[InstalledModel]:
    """Register the bundled packages that exist and are not installed yet; returns those added."""
    rows = session.execute(select(ModelVersion.name, ModelVersion.version))
    registered = {(name, version) for name, version in rows}
    return [
        add_model(session, path, data_dir, registered_by="radgate (bundled)")
        for path in unregistered_bundled(registered, bundled)
    ]
