"""Installed model versions as values: what the registry (:mod:`radgate.models.registry`) hands out, without
the database.

The registry reads and writes ``model_versions`` through SQLAlchemy; this module holds what does not need a
session (the value an installed version is, the order versions are listed in, which bundled packages are
not registered yet), so that ``radgate models list`` can answer from a SQLite data directory read with
``sqlite3`` (:func:`radgate.services.models.list_installed`) and import neither SQLAlchemy, the tables nor
the manifest's schema (pydantic): what the listing shows of the manifest is in the row's own columns
(``finding_names``, ``intended_use_summary``), and :attr:`InstalledModel.manifest` is parsed on first use.
"""

from __future__ import annotations

import json
import tomllib
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from radgate.models.versions import version_key

if TYPE_CHECKING:
    from radgate.models.manifest import Manifest
    from radgate.models.tables import ModelVersion

__all__ = [
    "BUNDLED_MODELS",
    "COLUMNS",
    "InstalledModel",
    "newest_first",
    "package_identity",
    "unregistered_bundled",
    "version_key",
]

#: Packages shipped with radgate and registered by default when present.
BUNDLED_MODELS: tuple[Path, ...] = (
    Path(__file__).resolve().parent.parent / "data" / "models" / "demo-pneumothorax" / "1.0.0",
)

#: The ``model_versions`` columns an :class:`InstalledModel` is made of.
COLUMNS: tuple[str, ...] = (
    "id",
    "name",
    "version",
    "task",
    "description",
    "synthetic",
    "sha256",
    "path",
    "source",
    "registered_at",
    "registered_by",
    "finding_names",
    "intended_use_summary",
    "manifest",
)


@dataclass(frozen=True)
class InstalledModel:
    """A registered model version, as the registry row; its manifest parsed (and checked) on first use.

    ``finding_names`` and ``intended_use_summary`` are the manifest's ``[[findings]]`` names and
    ``[intended_use] summary``, stored in the row when the version was registered (what ``radgate models
    list`` shows without parsing ``manifest_toml``, the manifest as installed).
    """

    id: int
    name: str
    version: str
    task: str
    description: str
    synthetic: bool
    sha256: str
    path: Path
    source: str
    registered_at: datetime
    registered_by: str
    finding_names: tuple[str, ...]
    intended_use_summary: str
    manifest_toml: str

    @cached_property
    def manifest(self) -> Manifest:
        """The installed manifest, parsed and checked by the schema the first time it is asked for."""
        from radgate.models.manifest import Manifest

        return Manifest.from_toml(self.manifest_toml)

    @classmethod
    def from_row(cls, row: ModelVersion) -> InstalledModel:
        return cls.from_columns({name: getattr(row, name) for name in COLUMNS})

    @classmethod
    def from_columns(cls, values: Mapping[str, Any]) -> InstalledModel:
        """From the values of :data:`COLUMNS` as the column types hand them back (``registered_at`` aware)."""
        return cls(
            id=values["id"],
            name=values["name"],
            version=values["version"],
            task=values["task"],
            description=values["description"],
            synthetic=values["synthetic"],
            sha256=values["sha256"],
            path=Path(values["path"]),
            source=values["source"],
            registered_at=values["registered_at"],
            registered_by=values["registered_by"],
            finding_names=tuple(json.loads(values["finding_names"])),
            intended_use_summary=values["intended_use_summary"],
            manifest_toml=values["manifest"],
        )

    @property
    def label(self) -> str:
        return f"{self.name} {self.version}"


def newest_first(models: Iterable[InstalledModel]) -> list[InstalledModel]:
    """By name, then newest version first (the registry's listing order)."""
    ordered = sorted(models, key=lambda m: version_key(m.version), reverse=True)
    ordered.sort(key=lambda m: m.name)
    return ordered


def package_identity(path: Path) -> tuple[str, str] | None:
    """The (name, version) a package folder's ``manifest.toml`` states under ``[model]``, read with
    ``tomllib`` and not checked; None when they cannot be read that way (then the registry opens the
    package, and says what is wrong with it).

    A ``.zip`` is opened as the registry opens it (:meth:`radgate.models.package.ModelPackage.open`)."""
    if path.is_file():
        from radgate.models.package import ModelPackage, PackageError

        try:
            manifest = ModelPackage.open(path).manifest
        except PackageError:
            return None
        return (manifest.name, manifest.version)
    try:
        model = tomllib.loads((path / "manifest.toml").read_text(encoding="utf-8")).get("model")
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return None
    if not isinstance(model, dict):
        return None
    name, version = model.get("name"), model.get("version")
    return (name, version) if isinstance(name, str) and isinstance(version, str) else None


def unregistered_bundled(
    registered: Collection[tuple[str, str]], bundled: Sequence[Path] = BUNDLED_MODELS
) -> list[Path]:
    """The bundled packages that exist and whose (name, version) is not in ``registered`` (a package whose
    identity cannot be read is among them: registering it reports why)."""
    missing = []
    for path in bundled:
        if not (path / "manifest.toml").is_file() and not (path.is_file() and path.suffix == ".zip"):
            continue
        identity = package_identity(path)
        if identity is None or identity not in registered:
            missing.append(path)
    return missing
