"""The radiologist's AI-ordered worklist and the review of one study (issue 11).

``priority.py``: the formula (AI urgency + waiting time with ageing); ``service.py``: typed rows, filters,
the change counter behind the live page; ``review.py``: the review view and the final read (ground truth
``final_read``); ``render.py``: WADO-RS rendered PNGs. Only released and withheld predictions are ever read.
"""

from radgate.worklist.priority import priority
from radgate.worklist.service import (
    NOT_VALIDATED,
    AIState,
    ReadStatus,
    WorklistFilter,
    WorklistRow,
    worklist_rows,
    worklist_version,
)

__all__ = [
    "NOT_VALIDATED",
    "AIState",
    "ReadStatus",
    "WorklistFilter",
    "WorklistRow",
    "priority",
    "worklist_rows",
    "worklist_version",
]
