"""Ingest: DIMSE C-STORE SCP, STOW-RS and folder import into the durable instance store."""

from __future__ import annotations

from typing import TYPE_CHECKING

from radgate.lazy_exports import lazy_exports

if TYPE_CHECKING:
    from radgate.ingest.folder import ImportSummary, import_paths
    from radgate.ingest.parse import IngestRejection, ParsedInstance, Status, parse_part10
    from radgate.ingest.pixels import PixelChecker
    from radgate.ingest.scp import DicomServer
    from radgate.ingest.store import InstanceStore, StoreOutcome

# Imported on first use (PEP 562), so that `radgate.ingest.status` (the `radgate series` query) does not
# load pydicom, numpy and pynetdicom.
_EXPORTS = {
    "DicomServer": "scp",
    "ImportSummary": "folder",
    "IngestRejection": "parse",
    "InstanceStore": "store",
    "ParsedInstance": "parse",
    "PixelChecker": "pixels",
    "Status": "parse",
    "StoreOutcome": "store",
    "import_paths": "folder",
    "parse_part10": "parse",
}


__getattr__ = lazy_exports(__name__, {name: f"{__name__}.{module}" for name, module in _EXPORTS.items()})


__all__ = [
    "DicomServer",
    "ImportSummary",
    "IngestRejection",
    "InstanceStore",
    "ParsedInstance",
    "PixelChecker",
    "Status",
    "StoreOutcome",
    "import_paths",
    "parse_part10",
]
