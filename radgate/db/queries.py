"""Queries on the index that several stages share."""

from __future__ import annotations

from sqlalchemy import BindParameter, Select, and_, func, select

from radgate.db.schema import Instance

__all__ = ["newest_instances"]


def newest_instances(SeriesInstanceUID: str | BindParameter[str] | None) -> Select[Instance]:
    """The newest revision of every instance of a series, or of every series with ``None`` (older revisions
    are kept, never served). A :func:`sqlalchemy.bindparam` builds the statement once for every series."""
    query = select(Instance.SOPInstanceUID, func.max(Instance.revision).label("revision"))
    if SeriesInstanceUID is not None:
        query = query.where(Instance.SeriesInstanceUID == SeriesInstanceUID)
    newest = query.group_by(Instance.SOPInstanceUID).subquery()
    return select(Instance).join(
        newest,
        and_(Instance.SOPInstanceUID == newest.c.SOPInstanceUID, Instance.revision == newest.c.revision),
    )
