"""WADO-RS retrieve (PS3.18 10.4): the stored instances of a study, series or single instance.

Answers ``multipart/related; type="application/dicom"`` with each instance's Part-10 file as stored (the
newest revision), so the RetrieveURLs that STOW-RS and QIDO-RS hand out resolve. Transcoding on request
(``transfer-syntax=`` in Accept) is not offered: instances go out in the syntax they arrived in, which
PS3.18 allows when the client accepts ``*`` or that syntax.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.orm import Session

from radgate.db import Instance, Series
from radgate.db.queries import newest_instances

__all__ = ["instance_paths", "multipart_body"]


def instance_paths(
    s: Session, store_root: Path, study_uid: str, series_uid: str | None = None, sop_uid: str | None = None
) -> list[Path]:
    """Files of the newest revision of each matching instance, in series then instance order."""
    if series_uid is not None:
        series_uids = [series_uid]
    else:
        series_uids = list(
            s.scalars(
                select(Series.SeriesInstanceUID)
                .where(Series.StudyInstanceUID == study_uid)
                .order_by(Series.SeriesNumber, Series.SeriesInstanceUID)
            )
        )
    paths: list[Path] = []
    for uid in series_uids:
        query = newest_instances(uid).where(Instance.StudyInstanceUID == study_uid)
        if sop_uid is not None:
            query = query.where(Instance.SOPInstanceUID == sop_uid)
        query = query.order_by(Instance.InstanceNumber, Instance.SOPInstanceUID)
        paths += [store_root / row.path for row in s.scalars(query)]
    return paths


def multipart_body(paths: list[Path], boundary: str | None = None) -> tuple[str, Iterator[bytes]]:
    """The Content-Type and a generator of the body: one ``application/dicom`` part per file."""
    boundary = boundary or uuid.uuid4().hex

    def parts() -> Iterator[bytes]:
        for path in paths:
            yield f"--{boundary}\r\nContent-Type: application/dicom\r\n\r\n".encode()
            yield path.read_bytes()
            yield b"\r\n"
        yield f"--{boundary}--\r\n".encode()

    return f'multipart/related; type="application/dicom"; boundary={boundary}', parts()
