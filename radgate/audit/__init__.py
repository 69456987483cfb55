"""The audit log: who did what, when, in an append-only, hash-chained table (IHE ATNA in spirit).

Other packages call :func:`record` inside their own transaction, so the entry commits with the change.
"""

from radgate.audit.export import entry_dict, iter_entries
from radgate.audit.log import record, record_in
from radgate.audit.tables import AuditEntry, AuditHead
from radgate.audit.verify import VerifyResult, verify_chain

__all__ = [
    "AuditEntry",
    "AuditHead",
    "VerifyResult",
    "entry_dict",
    "iter_entries",
    "record",
    "record_in",
    "verify_chain",
]
