"""Model packages and deployments for policy and engine tests."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

from radgate.config import Settings
from radgate.db import Database
from radgate.models import Manifest, add_model, write_package
from radgate.routing import DeploymentSpec, sync_deployments
from tests.test_engine_support import manifest_dict, tiny_onnx


def manifest_with(**changes: Any) -> dict[str, Any]:
    """The tiny test model's manifest with top-level tables replaced (e.g. ``validated_subgroups``)."""
    data = copy.deepcopy(manifest_dict())
    data.update(changes)
    return data


def install(tmp_path: Path, settings: Settings, db: Database, manifest: dict[str, Any]) -> None:
    m = Manifest.from_dict(manifest)
    dest = tmp_path / f"pkg-{m.model.name}-{m.model.version}"
    write_package(dest, m, tiny_onnx(), "# tiny\n\nSynthetic, not for clinical use.\n")
    with db.session() as s:
        add_model(s, dest, settings.data_dir)


def deploy(db: Database, *specs: DeploymentSpec) -> None:
    with db.session() as s:
        sync_deployments(s, list(specs))
