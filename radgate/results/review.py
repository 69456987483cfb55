"""The radiologist's read inside a verified SR revision (TID 1500): what was decided, not only who signed.

A revision written on a read (``radgate.worklist.writeback``) keeps the AI's measurement group as the AI
output it is (probability, the AI's Present/Absent at its operating point, tracking identifiers) and adds,
to the group of the finding that was read, the read itself as qualitative evaluations (TID 1410 / 1501
rows "Qualitative Evaluations", CONTAINS):

- CODE ``(RG001, 99RADGATE, "Radiologist's read")`` = ``Accepted`` / ``Modified`` / ``Dismissed`` /
  ``Labelled`` (``RG011`` - ``RG014``): what the radiologist did with the AI's suggestion;
- CODE ``(RG002, 99RADGATE, "Finding at radiologist's read")`` = SCT ``Present`` (52101004) / ``Absent``
  (272519000): the final read (a dismissal, or a modify to absent, is Absent);
- TEXT ``(RG003, 99RADGATE, "Reason for dismissal")``: the reason chosen on dismiss, when one was;
- TEXT ``(121106, DCM, "Comment")``: the radiologist's free text, when given.

DICOM has no standard concept for "a reader accepted/rejected an AI finding", hence the private coding
scheme ``99RADGATE`` (PS3.16 8.2: a "99"-prefixed designator is a private scheme); the finding's presence
uses the standard SNOMED codes. The Verifying Observer (PS3.3 C.17.2.1) names who read it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass

import highdicom as hd
from pydicom.sr.codedict import codes
from pydicom.sr.coding import Code

__all__ = [
    "COMMENT",
    "DISMISSAL_REASON",
    "READ",
    "READ_FINDING",
    "ReadKind",
    "ReviewOutcome",
    "review_items",
]

SCHEME = "99RADGATE"
READ = Code("RG001", SCHEME, "Radiologist's read")
READ_FINDING = Code("RG002", SCHEME, "Finding at radiologist's read")
DISMISSAL_REASON = Code("RG003", SCHEME, "Reason for dismissal")
COMMENT = Code("121106", "DCM", "Comment")
PRESENT = codes.SCT.Present  # 52101004
ABSENT = Code("272519000", "SCT", "Absent")
MAX_TEXT = 10_000  # characters of free text kept (UT holds far more; a read is not a report)


class ReadKind(enum.StrEnum):
    ACCEPTED = "accept"
    MODIFIED = "modify"
    DISMISSED = "dismiss"
    LABELLED = "label"


READ_VALUES = {
    ReadKind.ACCEPTED: Code("RG011", SCHEME, "Accepted"),
    ReadKind.MODIFIED: Code("RG012", SCHEME, "Modified"),
    ReadKind.DISMISSED: Code("RG013", SCHEME, "Dismissed"),
    ReadKind.LABELLED: Code("RG014", SCHEME, "Labelled"),
}


@dataclass(frozen=True)
class ReviewOutcome:
    """The read of one finding (``finding``: its name in the model's manifest)."""

    finding: str
    kind: ReadKind
    present: bool
    reason: str | None = None
    text: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ReadKind(self.kind))
        for name in ("reason", "text"):
            value = getattr(self, name)
            if value is not None:
                value = str(value).strip()
                if len(value) > MAX_TEXT:
                    raise ValueError(f"{name} is {len(value)} characters; at most {MAX_TEXT} are kept.")
                object.__setattr__(self, name, value or None)


def review_items(
    outcome: ReviewOutcome,
) -> tuple[list[hd.sr.QualitativeEvaluation], list[hd.sr.TextContentItem]]:
    """The CODE evaluations (through highdicom's template class) and the TEXT items of ``outcome``."""
    evaluations = [
        hd.sr.QualitativeEvaluation(name=READ, value=READ_VALUES[outcome.kind]),
        hd.sr.QualitativeEvaluation(name=READ_FINDING, value=PRESENT if outcome.present else ABSENT),
    ]
    texts: list[hd.sr.TextContentItem] = []
    contains = hd.sr.RelationshipTypeValues.CONTAINS
    if outcome.reason:
        texts.append(
            hd.sr.TextContentItem(name=DISMISSAL_REASON, value=outcome.reason, relationship_type=contains)
        )
    if outcome.text:
        texts.append(hd.sr.TextContentItem(name=COMMENT, value=outcome.text, relationship_type=contains))
    return evaluations, texts
