"""Data directories for tests: migrations are explicit (``radgate init``), so a test that runs a command on a
data directory creates one first.

Migrating a new SQLite database takes seconds (Alembic loads every table module); :func:`make_data_dir`
migrates once per test session into a template and copies the file after that.
"""

from __future__ import annotations

import atexit
import shutil
import tempfile
from functools import cache
from pathlib import Path

from radgate.config import load_settings
from radgate.db.datadir import init_data_dir

__all__ = ["make_data_dir"]


@cache
def _template() -> Path:
    """A data directory created once (by ``radgate init``'s service), migrated to the heads."""
    root = Path(tempfile.mkdtemp(prefix="radgate-template-"))
    atexit.register(shutil.rmtree, root, True)
    init_data_dir(load_settings(data_dir=root / "data", environ={}))
    return root / "data"


def make_data_dir(data_dir: Path) -> Path:
    """Make ``data_dir`` a radgate data directory (SQLite at the migration heads, the instance store and a
    commented radgate.toml), as ``radgate init DATA_DIR`` does; returns it."""
    template = _template()
    data_dir.mkdir(parents=True, exist_ok=True)
    for name in ("radgate.sqlite", "radgate.toml"):
        if not (data_dir / name).exists():
            shutil.copyfile(template / name, data_dir / name)
    for sub in ("instances", "quarantine"):
        (data_dir / sub).mkdir(exist_ok=True)
    return data_dir


def make_behind_data_dir(data_dir: Path, missing: str = "l100") -> Path:
    """A data directory whose database an older radgate left: every migration branch applied but the one
    whose head is ``missing`` (a revision no other script depends on)."""
    from alembic import command

    from radgate.db.engine import Database, alembic_config, script_dependencies, script_heads

    data_dir.mkdir(parents=True, exist_ok=True)
    db = Database(f"sqlite:///{data_dir / 'radgate.sqlite'}")
    cfg = alembic_config(db.url)
    with db.engine.begin() as conn:
        cfg.attributes["connection"] = conn
        for head in sorted((script_heads() or frozenset()) - script_dependencies() - {missing}):
            command.upgrade(cfg, head)
    db.dispose()
    return data_dir
