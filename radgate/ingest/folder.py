"""Folder import: store every file under the given paths, as if a modality had sent them."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from radgate.ingest.store import InstanceStore, StoreOutcome

__all__ = ["ImportSummary", "import_paths", "iter_files"]

SKIP_NAMES = {"DICOMDIR", ".DS_Store", "Thumbs.db"}


@dataclass
class ImportSummary:
    counts: Counter[str] = field(default_factory=Counter)
    rejected: list[tuple[str, str]] = field(default_factory=list)  # (path, reason)

    @property
    def total(self) -> int:
        return sum(self.counts.values())


def iter_files(paths: Iterable[Path]) -> Iterator[Path]:
    """Files named directly, and every file below named folders (sorted, hidden files skipped)."""
    for path in paths:
        if path.is_dir():
            for root, dirs, files in os.walk(path):
                dirs[:] = sorted(d for d in dirs if not d.startswith("."))
                for name in sorted(files):
                    if name.startswith(".") or name in SKIP_NAMES:
                        continue
                    yield Path(root) / name
        elif path.exists():
            yield path
        else:
            raise FileNotFoundError(f"Import path {str(path)!r} does not exist.")


def import_paths(
    store: InstanceStore,
    paths: Iterable[Path],
    progress: Callable[[Path, StoreOutcome], None] | None = None,
) -> ImportSummary:
    """Import files one by one; a bad file is rejected with its reason and the import goes on."""
    summary = ImportSummary()
    for file in iter_files(paths):
        try:
            data = file.read_bytes()
        except OSError as exc:
            summary.counts["rejected"] += 1
            summary.rejected.append((str(file), f"Could not read the file: {exc.strerror or exc}."))
            continue
        outcome = store.store_bytes(data, source="import", origin=str(file))
        summary.counts[outcome.outcome] += 1
        if outcome.outcome == "rejected":
            summary.rejected.append((str(file), outcome.reason or "rejected"))
        if progress is not None:
            progress(file, outcome)
    return summary
