"""s3storage: objects in an S3 bucket (AWS, or any S3-compatible store via S3_ENDPOINT_URL).

Writes go through ``upload_fileobj``: multipart above 8 MB, a bounded number of
parts in memory, and atomic by nature: an object appears only when its upload
completes, and a stream that raises aborts the multipart upload.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from havarti.config import Settings
from havarti.storage.base import (
    CHUNK,
    Drain,
    ObjectNotFound,
    Readable,
    Storage,
    StorageError,
    StoredObject,
)

PART_SIZE = 8 * 1024 * 1024
#: Parts uploaded at once; with PART_SIZE this bounds what a write holds in memory.
PARALLEL_PARTS = 4

_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
_CREDENTIALS = {"InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied", "403",
                "InvalidClientTokenId", "AuthorizationHeaderMalformed"}


class S3Storage(Storage):
    name = "s3storage"

    def __init__(self, client: Any, bucket: str, prefix: str = "", redirect: bool = True,
                 region: str | None = None, endpoint: str | None = None) -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.redirect = redirect
        self.region = region
        self.endpoint = endpoint
        self.transfer = TransferConfig(multipart_threshold=PART_SIZE, multipart_chunksize=PART_SIZE,
                                       max_concurrency=PARALLEL_PARTS)
        # Parts read ahead of the upload (boto3's TransferConfig does not take it as an argument).
        self.transfer.max_in_memory_upload_chunks = PARALLEL_PARTS

    @classmethod
    def from_settings(cls, settings: Settings) -> S3Storage:
        """Build from S3_* settings; a custom endpoint gets path-style addressing."""
        assert settings.s3_bucket is not None
        config = Config(
            signature_version="s3v4",
            # Custom endpoints (MinIO, Ceph, Swift s3api) rarely have wildcard DNS for buckets.
            s3={"addressing_style": "path" if settings.s3_endpoint_url else "auto"},
            retries={"max_attempts": 3, "mode": "standard"},
            connect_timeout=5, read_timeout=60,
            # Newer botocore sends CRC checksums some S3-compatible stores reject.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
        )
        client = boto3.session.Session().client(
            "s3", aws_access_key_id=settings.s3_access_key,
            aws_secret_access_key=settings.s3_secret_key, region_name=settings.s3_region,
            endpoint_url=settings.s3_endpoint_url, config=config)
        return cls(client, settings.s3_bucket, settings.s3_prefix, settings.s3_redirect,
                   settings.s3_region, settings.s3_endpoint_url)

    def _key(self, key: str) -> str:
        return self.prefix + key

    def _error(self, exc: Exception, key: str | None = None) -> StorageError:
        """One line a user can act on, for any SDK error."""
        if isinstance(exc, ClientError):
            code = str(exc.response.get("Error", {}).get("Code", ""))
            status = exc.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if key is not None and (code in _NOT_FOUND or status == 404) and code != "NoSuchBucket":
                return ObjectNotFound(key)
            if code == "NoSuchBucket" or (key is None and status == 404):
                return StorageError(f"S3 bucket {self.bucket!r} does not exist")
            if code in _CREDENTIALS or status == 403:
                return StorageError(f"S3 refused the credentials or access to bucket "
                                    f"{self.bucket!r} ({code or status}): check S3_ACCESS_KEY "
                                    f"and S3_SECRET_KEY")
            message = exc.response.get("Error", {}).get("Message") or code
            return StorageError(f"S3 {code or status}: {message}")
        where = self.endpoint or "S3"
        return StorageError(f"cannot reach {where}: {exc}")

    def write(self, key: str, stream: Readable, size: int | None = None) -> int:
        reader = Drain(stream)
        try:
            self.client.upload_fileobj(reader, self.bucket, self._key(key), Config=self.transfer)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc) from None
        except Exception as exc:
            # s3transfer may wrap what the stream raised; give the caller the original.
            raise reader.error or exc from None
        return reader.count

    def open(self, key: str, start: int = 0, end: int | None = None) -> Iterator[bytes]:
        args: dict[str, Any] = {"Bucket": self.bucket, "Key": self._key(key)}
        if start or end is not None:
            args["Range"] = f"bytes={start}-{'' if end is None else end}"
        try:
            body = self.client.get_object(**args)["Body"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "InvalidRange":
                return iter(())
            raise self._error(exc, key) from None
        except BotoCoreError as exc:
            raise self._error(exc) from None
        return self._chunks(body)

    def _chunks(self, body: Any) -> Iterator[bytes]:
        try:
            yield from body.iter_chunks(CHUNK)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc) from None
        finally:
            body.close()

    def size(self, key: str) -> int:
        try:
            head = self.client.head_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc, key) from None
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        try:
            self.client.delete_object(Bucket=self.bucket, Key=self._key(key))
        except (ClientError, BotoCoreError) as exc:
            error = self._error(exc, key)
            if not isinstance(error, ObjectNotFound):
                raise error from None

    def objects(self, prefix: str = "") -> Iterator[StoredObject]:
        paginator = self.client.get_paginator("list_objects_v2")
        try:
            for page in paginator.paginate(Bucket=self.bucket, Prefix=self._key(prefix)):
                for item in page.get("Contents", ()):
                    yield StoredObject(item["Key"][len(self.prefix):], int(item["Size"]),
                                       item.get("LastModified"))
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc) from None

    def url(self, key: str, filename: str, expires: int = 300) -> str | None:
        if not self.redirect:
            return None
        try:
            return self.client.generate_presigned_url(
                "get_object", Params={"Bucket": self.bucket, "Key": self._key(key)},
                ExpiresIn=expires)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc) from None

    def _probe(self) -> None:
        """One cheap request that fails with a telling code (a HEAD has no error body)."""
        try:
            self.client.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc) from None

    def ensure_ready(self) -> str | None:
        try:
            self._probe()
            return None
        except StorageError as exc:
            if "does not exist" not in str(exc):
                raise
        args: dict[str, Any] = {"Bucket": self.bucket}
        if self.region and self.region != "us-east-1":
            args["CreateBucketConfiguration"] = {"LocationConstraint": self.region}
        try:
            self.client.create_bucket(**args)
        except (ClientError, BotoCoreError) as exc:
            raise self._error(exc) from None
        return f"created S3 bucket {self.bucket!r}"

    def check(self) -> str:
        self._probe()
        where = f" at {self.endpoint}" if self.endpoint else ""
        mode = "redirect" if self.redirect else "stream-through"
        return f"s3storage bucket {self.bucket!r}{where} ({mode})"
