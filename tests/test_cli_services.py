"""Issue 9: CLI commands call services and open no database sessions of their own.

The modules listed have been moved onto radgate.services; this keeps them there.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
THIN = ["ingest.py", "results.py", "validation.py", "process.py"]


@pytest.mark.parametrize("module", THIN)
def test_cli_module_opens_no_session(module: str) -> None:
    tree = ast.parse((ROOT / "radgate" / "cli" / module).read_text(encoding="utf-8"))
    calls = [
        node.lineno
        for node in ast.walk(tree)
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "session"
    ]
    assert calls == [], f"radgate/cli/{module} opens a session on line(s) {calls}: call a service instead"
