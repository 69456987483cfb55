"""The ingest side of a gateway in its own process, for kill -9 tests: store, DIMSE SCP, assembler and
pixel checker over one data directory (no HTTP, no engine: those have their own kill tests).

    python -m tests.helpers.ingest_node DATA_DIR

Prints ``{"ready": true, "dicom_port": N}`` once listening, then serves until killed.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from radgate.assembly import Assembler
from radgate.config import load_settings
from radgate.db import database_for
from radgate.ingest import DicomServer, InstanceStore, PixelChecker


def main() -> None:
    settings = load_settings(data_dir=Path(sys.argv[1]), server__dicom_port=0)
    db = database_for(settings, migrate=True)
    store = InstanceStore(settings, db)
    services = [Assembler(settings, db, [], lock=store.lock), PixelChecker(store, db)]
    dicom = DicomServer(settings, store)
    dicom.start()
    for service in services:
        service.start()
    print(json.dumps({"ready": True, "dicom_port": dicom.port}), flush=True)
    threading.Event().wait()


if __name__ == "__main__":
    main()
