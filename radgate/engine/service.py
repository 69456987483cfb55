"""Services the CLI, API and server share: bring the registry and deployments in line with the config."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from radgate.config import Settings
from radgate.db.engine import Database
from radgate.models.registry import ensure_default_models
from radgate.routing.deployment import (
    DeploymentError,
    DeploymentSpec,
    has_deployments,
    load_deployments_file,
    sync_deployments,
)

__all__ = ["config_deployments", "prepare", "resolve_config_path"]


def resolve_config_path(
    config: Path | None, data_dir: Path | None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The config file :func:`radgate.config.load_settings` reads: ``--config``, ``$RADGATE_CONFIG``,
    else ``DATA_DIR/radgate.toml`` when it exists."""
    environ = os.environ if environ is None else environ
    if config is not None:
        return config
    if environ.get("RADGATE_CONFIG"):
        return Path(environ["RADGATE_CONFIG"])
    if data_dir is not None and (Path(data_dir) / "radgate.toml").is_file():
        return Path(data_dir) / "radgate.toml"
    return None


def config_deployments(settings: Settings, config: Path | None) -> list[DeploymentSpec] | None:
    """The ``[[deployments]]`` of the config file in use (site defaulting to the ``site`` setting).

    ``None`` when there is no config file or it has no ``deployments`` key: then the database is left as
    it is, so a command run without ``--config`` never turns off what the server's config deployed.
    """
    path = resolve_config_path(config, settings.data_dir)
    if path is None or not has_deployments(path):
        return None
    return load_deployments_file(path, settings.site)


def prepare(db: Database, settings: Settings, config: Path | None) -> list[str]:
    """Register bundled models and sync the config's deployments; returns the changes, in words.

    Every entry is checked (keys, model and version installed, rules, policy settings) and a
    ``mode = "live"`` passes the go-live gate (:func:`radgate.services.deployments.config_live_gate`);
    any complaint names the config file and nothing is applied.
    """
    from radgate.services.deployments import config_live_gate

    path = resolve_config_path(config, settings.data_dir)
    source = str(path) if path is not None else "the config"
    try:
        specs = config_deployments(settings, config)
        with db.session() as s:
            changes = [f"registered {m.label}" for m in ensure_default_models(s, settings.data_dir)]
            if specs is not None:
                changes += sync_deployments(s, specs, gate=config_live_gate(settings.policy, source))
    except DeploymentError as exc:
        if exc.message.startswith(source):
            raise
        raise DeploymentError(f"{source}: {exc.message}") from None
    return changes
