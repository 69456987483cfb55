"""Queries on the index that several stages share."""

from __future__ import annotations

from sqlalchemy import Select, and_, func, select

from radgate.db.schema import Instance

__all__ = ["newest_instances"]


def newest_instances(SeriesInstanceUID: str) -> Select[Instance]:
    """The newest revision of every instance of a series (older revisions are kept, never served)."""
    newest = (
        select(Instance.SOPInstanceUID, func.max(Instance.revision).label("revision"))
        .where(Instance.SeriesInstanceUID == SeriesInstanceUID)
        .group_by(Instance.SOPInstanceUID)
        .subquery()
    )
    return select(Instance).join(
        newest,
        and_(Instance.SOPInstanceUID == newest.c.SOPInstanceUID, Instance.revision == newest.c.revision),
    )
