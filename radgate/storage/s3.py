"""Blobs as objects in an S3-compatible bucket (boto3, the ``scale`` extra).

Durability: a PutObject that returned 200 is stored by the object store (S3 answers only once the object is
written to its own durable storage); the caller commits the row after that, then acknowledges. The Content-MD5
sent with each object makes the store refuse bytes damaged on the way. Keys are never overwritten: the
instance store names each revision by its digest.

Readers get a local file through a read-through cache under ``DATA_DIR/s3-cache/``: objects never change,
so a cached copy never goes stale, and deleting the cache only costs downloads. ``put`` leaves a copy there
too, so the stages behind the edge on the same machine do not download what was just received. The cache is
kept under ``store.s3_cache_gib`` (:class:`radgate.storage.bounded.BoundedDirectory`: least recently used
copies go first, and none used in the last minute, since a reader may hold its path).

Credentials come from boto3's usual sources (``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` /
``AWS_SESSION_TOKEN``, ``AWS_PROFILE``, an instance role), never from radgate's config file.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import os
import uuid
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TypeVar

from radgate.storage.base import BlobStoreError, check_key
from radgate.storage.bounded import BoundedDirectory

if TYPE_CHECKING:
    from radgate.config import StoreSettings

__all__ = ["S3Blobs"]

_CHUNK = 1024 * 1024
T = TypeVar("T")


class S3Blobs:
    """Objects under ``s3://bucket/prefix``; ``cache_dir`` holds the local copies readers open."""

    def __init__(self, store: StoreSettings, cache_dir: Path) -> None:
        try:
            import boto3
            from botocore.config import Config
        except ImportError:
            raise BlobStoreError(
                'store.backend "s3" needs boto3; install the scale extra: pip install "radgate[scale]".'
            ) from None
        self.bucket = store.s3_bucket
        self.prefix = store.s3_prefix.strip("/") + "/" if store.s3_prefix.strip("/") else ""
        self.endpoint = store.s3_endpoint_url or "AWS S3"
        self.location = f"s3://{self.bucket}/{self.prefix}"
        self.cache_dir = Path(cache_dir)
        self.cache = BoundedDirectory(self.cache_dir, max(1, int(store.s3_cache_gib * 2**30)))
        self.client: Any = boto3.session.Session().client(
            "s3",
            endpoint_url=store.s3_endpoint_url or None,
            region_name=store.s3_region or None,
            config=Config(
                connect_timeout=5,
                read_timeout=60,
                retries={"max_attempts": 3, "mode": "standard"},
                max_pool_connections=32,  # concurrent associations (server.max_associations: 16) and readers
            ),
        )

    # ------------------------------------------------------------------ the interface
    def put(self, key: str, data: bytes | memoryview) -> None:
        body = bytes(data)
        md5 = base64.b64encode(hashlib.md5(body, usedforsecurity=False).digest()).decode()
        self._call("store", "put_object", Key=self._key(key), Body=body, ContentMD5=md5)
        with contextlib.suppress(OSError):  # a cache: failing to write it costs a download later, no more
            self._cache(key, [body])

    def read(self, key: str) -> bytes:
        cached = self.cache_dir / check_key(key)
        if cached.is_file():
            self.cache.touch(cached)
            return cached.read_bytes()
        body = self._call("read", "get_object", Key=self._key(key))["Body"]
        return bytes(self._guard("read", body.read))

    def open(self, key: str) -> BinaryIO:
        return self.local_path(key).open("rb")

    def local_path(self, key: str) -> Path:
        cached = self.cache_dir / check_key(key)
        if cached.is_file():
            self.cache.touch(cached)
            return cached
        body = self._call("read", "get_object", Key=self._key(key))["Body"]
        return self._guard("read", self._cache, key, body.iter_chunks(_CHUNK))

    def exists(self, key: str) -> bool:
        try:
            self._call("check", "head_object", Key=self._key(key))
        except FileNotFoundError:
            return False
        return True

    def delete(self, key: str) -> None:
        self._call("delete", "delete_object", Key=self._key(key))
        (self.cache_dir / check_key(key)).unlink(missing_ok=True)

    def check(self) -> None:
        """The bucket exists and these credentials may use it (HeadBucket)."""
        self._call("reach", "head_bucket")

    # ------------------------------------------------------------------ helpers
    def _key(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _cache(self, key: str, chunks: Iterable[bytes]) -> Path:
        target = self.cache_dir / key
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.cache_dir / ".incoming"
        tmp.mkdir(parents=True, exist_ok=True)
        part = tmp / f"{uuid.uuid4().hex}.part"
        size = 0
        try:
            with open(part, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    size += len(chunk)
            os.replace(part, target)
        finally:
            part.unlink(missing_ok=True)
        self.cache.added(size)
        return target

    def _call(self, doing: str, operation: str, **kwargs: Any) -> Any:
        """One S3 request on the bucket, botocore's failures as one :class:`BlobStoreError` line."""
        return self._guard(doing, getattr(self.client, operation), Bucket=self.bucket, **kwargs)

    def _guard(self, doing: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        from botocore.exceptions import BotoCoreError, ClientError

        try:
            return fn(*args, **kwargs)
        except (BotoCoreError, ClientError) as exc:
            raise self._explain(doing, exc) from None

    def _explain(self, doing: str, exc: Exception) -> OSError:
        from botocore.exceptions import ClientError, NoCredentialsError, PartialCredentialsError

        where = f"bucket {self.bucket!r} at {self.endpoint}"
        if isinstance(exc, (NoCredentialsError, PartialCredentialsError)):
            return BlobStoreError(
                f"No usable S3 credentials for {where}; set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY "
                "(or AWS_PROFILE) in radgate's environment."
            )
        if not isinstance(exc, ClientError):  # connection refused, timeouts, DNS: the store is out of reach
            return BlobStoreError(
                f"S3 {where} is unreachable ({type(exc).__name__}); check store.s3_endpoint_url and the "
                "network."
            )
        code = str(exc.response.get("Error", {}).get("Code", ""))
        status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        if code == "NoSuchBucket" or (doing == "reach" and status == 404):
            return BlobStoreError(
                f"S3 {where} does not exist; create it (radgate never creates buckets) or set "
                "store.s3_bucket to an existing one."
            )
        if status == 404 and doing in ("read", "check"):
            return FileNotFoundError(f"no such object in {self.location}")
        if status == 403 or code in ("AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch"):
            return BlobStoreError(
                f"S3 {where} refused radgate's credentials ({code or status}); check AWS_ACCESS_KEY_ID / "
                "AWS_SECRET_ACCESS_KEY and the bucket's policy."
            )
        return BlobStoreError(f"S3 {where} could not {doing} an object ({code or status}).")
