"""The instance store's files behind one interface: the local filesystem, or an S3-compatible object store."""

from __future__ import annotations

import functools
from pathlib import Path

from radgate.config import Settings, StoreSettings
from radgate.storage.base import BlobStore, BlobStoreError, check_key
from radgate.storage.filesystem import FilesystemBlobs

__all__ = ["BlobStore", "BlobStoreError", "FilesystemBlobs", "blobs_for", "check_key", "open_blobs"]


def blobs_for(settings: Settings) -> BlobStore:
    """The blob store ``settings`` name (``[store]``), one per configuration in a process (boto3 clients are
    thread-safe and slow to make)."""
    return open_blobs(settings.store, settings.data_dir, settings.ingest.fsync)


def open_blobs(store: StoreSettings, data_dir: Path, fsync: bool = True) -> BlobStore:
    """The blob store of a ``[store]`` section for the data directory ``data_dir`` (cached)."""
    return _open(tuple(store.model_dump().items()), Path(data_dir), fsync)


@functools.lru_cache(maxsize=16)
def _open(store: tuple[tuple[str, object], ...], data_dir: Path, fsync: bool) -> BlobStore:
    section = StoreSettings.model_validate(dict(store))
    if section.backend == "s3":
        from radgate.storage.s3 import S3Blobs

        return S3Blobs(section, data_dir / "s3-cache")
    return FilesystemBlobs(data_dir / "instances", fsync=fsync)
