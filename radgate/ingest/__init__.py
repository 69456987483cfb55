"""Ingest: DIMSE C-STORE SCP, STOW-RS and folder import into the durable instance store."""

from radgate.ingest.folder import ImportSummary, import_paths
from radgate.ingest.parse import IngestRejection, ParsedInstance, Status, parse_part10
from radgate.ingest.pixels import PixelChecker
from radgate.ingest.scp import DicomServer
from radgate.ingest.store import InstanceStore, StoreOutcome

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
