"""Where archived histories' bytes live when not in the records database: an object store.

Built here: a ``file://`` folder (a local disk, or any mounted share — NFS, SMB, a
``s3fs``/``rclone`` mount of a bucket). An S3-compatible store is a documented option, not
built: it would be one more class with these three methods (``put`` with the object's
SHA-256 as its checksum, ``get``, ``delete``), for example on boto3, chosen by an
``s3://bucket/prefix`` URL in ``SENFLOW_ARCHIVE_URL``. Until then such a URL is refused
rather than half-supported.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlparse


class BlobStore(Protocol):
    url: str

    def put(self, key: str, data: bytes) -> str:
        """Store ``data`` under ``key`` (``<workflow id>/<name>``); return its location URL."""
        ...

    def get(self, location: str) -> bytes: ...

    def delete(self, prefix: str) -> int:
        """Delete the object ``prefix`` names, or every object under it (a workflow id);
        return how many were deleted."""
        ...


class FileBlobStore:
    """A folder: ``<root>/<workflow id>/<run id>.json.gz``. Writes are atomic (a temporary
    file renamed into place), so a reader never sees half an object and two archivers writing
    the same run's identical bytes at once leave one whole file."""

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self.url = self.root.as_uri()

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"key {key!r} leaves the archive folder")
        return path

    def put(self, key: str, data: bytes) -> str:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return path.as_uri()

    def get(self, location: str) -> bytes:
        path = Path(unquote(urlparse(location).path)).resolve()
        if not path.is_relative_to(self.root):
            raise ValueError(f"{location} is not in this archive ({self.url})")
        return path.read_bytes()

    def delete(self, prefix: str) -> int:
        path = self._path(prefix)
        if path.is_file():
            path.unlink()
            return 1
        if not path.is_dir():
            return 0
        count = sum(1 for p in path.rglob("*") if p.is_file())
        shutil.rmtree(path)
        return count


def blob_store(url: str) -> BlobStore | None:
    """``db`` (or empty): no object store, bytes go in the records database."""
    if url in ("", "db"):
        return None
    parsed = urlparse(url)
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise ValueError(f"{url}: a file:// URL names a local folder (file:///path)")
        return FileBlobStore(Path(unquote(parsed.path)))
    if parsed.scheme in ("s3", "s3a", "gs", "az"):
        raise ValueError(
            f"{url}: object stores other than a file:// folder are a documented option, not "
            "built yet (see archive/blobs.py); mount the bucket as a folder, or use 'db'"
        )
    raise ValueError(f"SENFLOW_ARCHIVE_URL {url!r}: use 'db' or file:///a/folder")
