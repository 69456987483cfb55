"""AI results back to the PACS: TID 1500 SR, GSPS and heatmap SC, sent through a durable outbox.

- :mod:`radgate.results.content`: :class:`AIResult` / :class:`AIFinding`, handed over by the inference engine;
- :mod:`radgate.results.identity`: stable UIDs and SR revisions (predecessor documents);
- :mod:`radgate.results.sr`: Comprehensive 3D SR, TID 1500 Measurement Report (IHE AI Results);
- :mod:`radgate.results.pr`: Grayscale Softcopy Presentation State per source image;
- :mod:`radgate.results.sc`: optional heatmap Secondary Capture, labelled a rough guide, not proof;
- :mod:`radgate.results.send`: the :class:`Destination` interface: C-STORE, STOW-RS, folder;
- :mod:`radgate.results.outbox` and :mod:`radgate.results.tables`: the durable outbox with retries;
- :mod:`radgate.results.publish`: build, store and queue a live result (silent results never leave).
"""

from radgate.results.content import AIFinding, AIResult, Concept
from radgate.results.identity import DocumentReference, ResultIdentity
from radgate.results.outbox import (
    DeliveryReport,
    StoredObject,
    deliver_pending,
    enqueue,
    list_outbox,
    results_store,
    retry,
    write_instance,
)
from radgate.results.pr import build_gsps, build_gsps_all
from radgate.results.publish import build_objects, publish
from radgate.results.sc import build_heatmap_sc
from radgate.results.send import (
    CStoreDestination,
    Destination,
    FolderDestination,
    SendOutcome,
    StowRsDestination,
    destinations_from_settings,
    parse_destination,
)
from radgate.results.source import SourceMismatchError
from radgate.results.sr import build_sr

__all__ = [
    "AIFinding",
    "AIResult",
    "CStoreDestination",
    "Concept",
    "DeliveryReport",
    "Destination",
    "DocumentReference",
    "FolderDestination",
    "ResultIdentity",
    "SendOutcome",
    "SourceMismatchError",
    "StoredObject",
    "StowRsDestination",
    "build_gsps",
    "build_gsps_all",
    "build_heatmap_sc",
    "build_objects",
    "build_sr",
    "deliver_pending",
    "destinations_from_settings",
    "enqueue",
    "list_outbox",
    "parse_destination",
    "publish",
    "results_store",
    "retry",
    "write_instance",
]
