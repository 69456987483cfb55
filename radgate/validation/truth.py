"""Ground truth: import reference labels from CSV; look up one label per UID by reference-standard precedence.

``radgate truth import FILE.csv`` reads columns ``StudyInstanceUID`` and/or ``SeriesInstanceUID``, ``label``
(0/1), ``source`` (the reference standard: ``biopsy``, ``follow-up``, ``consensus``, ``radiologist`` or
another word) and optionally ``date`` (``YYYY-MM-DD`` or DICOM ``YYYYMMDD``). The whole file is checked
first and nothing is written if any row is malformed (the errors name the rows). Re-importing the same
UID and source updates that row, so an import can be repeated safely.
"""

from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from sqlalchemy import or_, select
from sqlalchemy.orm import Session

from radgate.clock import utcnow
from radgate.db import Database
from radgate.errors import Invalid
from radgate.validation.tables import GroundTruth

__all__ = [
    "DEFAULT_PRECEDENCE",
    "ImportSummary",
    "TruthImportError",
    "TruthRow",
    "import_ground_truth",
    "record_label",
    "read_truth_csv",
    "reference_labels",
]

log = logging.getLogger(__name__)

DEFAULT_PRECEDENCE: tuple[str, ...] = ("biopsy", "pathology", "follow-up", "consensus", "radiologist")
_UID = re.compile(r"^[0-9]+(\.[0-9]+)*$")
_MAX_ERRORS_SHOWN = 10


class TruthImportError(Invalid, ValueError):
    """The ground-truth file has problems; ``errors`` lists them by row."""

    def __init__(self, path: Path, errors: Sequence[str]) -> None:
        shown = "; ".join(errors[:_MAX_ERRORS_SHOWN])
        more = f" (and {len(errors) - _MAX_ERRORS_SHOWN} more)" if len(errors) > _MAX_ERRORS_SHOWN else ""
        super().__init__(f"{path.name}: {len(errors)} problem(s), nothing imported: {shown}{more}")
        self.errors = list(errors)


@dataclass(frozen=True)
class TruthRow:
    StudyInstanceUID: str | None
    SeriesInstanceUID: str | None
    label: int
    source: str
    reference_date: date | None


@dataclass(frozen=True)
class ImportSummary:
    rows: int
    inserted: int
    updated: int
    unchanged: int


def _parse_date(text: str) -> date:
    for fmt in ("%Y-%m-%d", "%Y%m%d"):
        try:
            return datetime.strptime(text, fmt).date()
        except ValueError:
            continue
    raise ValueError(text)


def read_truth_csv(path: Path, default_source: str | None = None) -> list[TruthRow]:
    """Parse and check every row; raise :class:`TruthImportError` listing all problems.

    ``default_source`` stands in for a missing ``source`` column or an empty cell (e.g. ``synthetic`` for a
    synthetic site's ``labels.csv``).
    """
    try:
        handle = path.open(newline="", encoding="utf-8-sig")
    except OSError as exc:
        raise TruthImportError(path, [f"cannot read the file: {exc.strerror or exc}"]) from exc
    errors: list[str] = []
    rows: list[TruthRow] = []
    with handle:
        reader = csv.DictReader(handle)
        header = reader.fieldnames or []
        uid_cols = [c for c in ("StudyInstanceUID", "SeriesInstanceUID") if c in header]
        missing = [
            c for c in ("label", "source") if c not in header and not (c == "source" and default_source)
        ]
        if not uid_cols:
            missing.insert(0, "StudyInstanceUID or SeriesInstanceUID")
        if missing:
            raise TruthImportError(path, [f"missing column(s): {', '.join(missing)}; the file has {header}"])
        for row_no, row in enumerate(reader, start=2):
            uids: dict[str, str | None] = {}
            for col in ("StudyInstanceUID", "SeriesInstanceUID"):
                value = (row.get(col) or "").strip() or None
                if value is not None and (len(value) > 64 or not _UID.match(value)):
                    errors.append(
                        f"row {row_no}: {col} {value!r} is not a DICOM UID (digits and dots, <= 64)"
                    )
                uids[col] = value
            if not any(uids.values()):
                errors.append(f"row {row_no}: no StudyInstanceUID or SeriesInstanceUID")
            label_text = (row.get("label") or "").strip()
            if label_text not in {"0", "1"}:
                errors.append(f"row {row_no}: label {label_text!r}, expected 0 or 1")
            source = (row.get("source") or default_source or "").strip().lower()
            if not source or len(source) > 32:
                errors.append(
                    f"row {row_no}: source {source!r} must be 1-32 characters (e.g. biopsy, radiologist)"
                )
            ref_date = None
            date_text = (row.get("date") or "").strip()
            if date_text:
                try:
                    ref_date = _parse_date(date_text)
                except ValueError:
                    errors.append(f"row {row_no}: date {date_text!r}, expected YYYY-MM-DD or YYYYMMDD")
            if label_text in {"0", "1"}:
                rows.append(
                    TruthRow(
                        uids["StudyInstanceUID"], uids["SeriesInstanceUID"], int(label_text), source, ref_date
                    )
                )
    if errors:
        raise TruthImportError(path, errors)
    return rows



def record_label(
    session: Session,
    *,
    source: str,
    label: int,
    origin: str,
    now: datetime,
    key: str,
    StudyInstanceUID: str | None = None,  # noqa: N803 (DICOM keywords, as the table's columns)
    SeriesInstanceUID: str | None = None,  # noqa: N803
) -> GroundTruth:
    """One label per ``source`` and UID (``key``: the column it is matched on): a later read by a person
    (a final read, a labelled request) replaces the earlier one rather than standing beside it."""
    uids = {"StudyInstanceUID": StudyInstanceUID, "SeriesInstanceUID": SeriesInstanceUID}
    if uids.get(key) is None:
        raise ValueError(f"record_label: {key} is the match column but no {key} was given")
    existing = session.scalars(
        select(GroundTruth).where(GroundTruth.source == source, getattr(GroundTruth, key) == uids[key])
    ).first()
    if existing is None:
        existing = GroundTruth(
            **{k: v for k, v in uids.items() if v is not None}, label=label, source=source,
            reference_date=now.date(), imported_at=now, origin=origin,
        )
        session.add(existing)
    else:
        existing.label = label
        existing.reference_date = now.date()
        existing.imported_at = now
        existing.origin = origin
    return existing

def import_ground_truth(
    db: Database, path: Path, now: datetime | None = None, default_source: str | None = None
) -> ImportSummary:
    """Import ``path`` into ``ground_truth`` (insert, or update the row with the same UIDs and source)."""
    rows = read_truth_csv(path, default_source)
    stamp = now or utcnow()
    inserted = updated = unchanged = 0
    with db.session() as session:
        for r in rows:
            existing = session.scalars(
                select(GroundTruth).where(
                    GroundTruth.StudyInstanceUID.is_(None)
                    if r.StudyInstanceUID is None
                    else GroundTruth.StudyInstanceUID == r.StudyInstanceUID,
                    GroundTruth.SeriesInstanceUID.is_(None)
                    if r.SeriesInstanceUID is None
                    else GroundTruth.SeriesInstanceUID == r.SeriesInstanceUID,
                    GroundTruth.source == r.source,
                )
            ).first()
            if existing is None:
                session.add(
                    GroundTruth(
                        StudyInstanceUID=r.StudyInstanceUID,
                        SeriesInstanceUID=r.SeriesInstanceUID,
                        label=r.label,
                        source=r.source,
                        reference_date=r.reference_date,
                        imported_at=stamp,
                        origin=path.name,
                    )
                )
                inserted += 1
            elif (existing.label, existing.reference_date) != (r.label, r.reference_date):
                existing.label, existing.reference_date = r.label, r.reference_date
                existing.imported_at, existing.origin = stamp, path.name
                updated += 1
            else:
                unchanged += 1
    log.info(
        "ground truth import from %s: %d inserted, %d updated, %d unchanged",
        path.name,
        inserted,
        updated,
        unchanged,
    )
    return ImportSummary(len(rows), inserted, updated, unchanged)


def reference_labels(
    db: Database, uids: Iterable[str], precedence: Sequence[str] = DEFAULT_PRECEDENCE
) -> dict[str, int]:
    """One label per UID (study or series UID), choosing the source that ranks first in ``precedence``.

    Sources not in ``precedence`` rank after those that are; among equals the latest ``reference_date``
    (then the latest import) wins. UIDs without any reference are absent from the result.
    """
    wanted = sorted(set(uids))
    rank = {s: i for i, s in enumerate(precedence)}
    best: dict[str, tuple[tuple[int, date, datetime], int]] = {}
    with db.session() as session:
        for start in range(0, len(wanted), 500):
            chunk = wanted[start : start + 500]
            rows = session.scalars(
                select(GroundTruth).where(
                    or_(GroundTruth.StudyInstanceUID.in_(chunk), GroundTruth.SeriesInstanceUID.in_(chunk))
                )
            ).all()
            chunk_set = set(chunk)
            for row in rows:
                key = (-rank.get(row.source, len(rank)), row.reference_date or date.min, row.imported_at)
                for uid in (row.StudyInstanceUID, row.SeriesInstanceUID):
                    if uid in chunk_set and (uid not in best or key > best[uid][0]):
                        best[uid] = (key, row.label)
    return {uid: label for uid, (_, label) in best.items()}
