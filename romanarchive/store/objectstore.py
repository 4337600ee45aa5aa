"""Content-addressed object store over fsspec: a local folder by default, ``s3://`` and friends too.

Objects live at ``<prefix>/<sha[:2]>/<sha>/<filename>``, so the same content is stored once and a key never
changes meaning. Writes are atomic: on a local file system the object is written under a temporary name in the
same folder and renamed; on object stores a single PUT is already all-or-nothing, so the object is put directly.
Every write is verified by reading back its size and SHA-256.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import fsspec

CHUNK = 8 * 1024 * 1024


class StoreError(RuntimeError):
    """An object could not be written, verified or read."""


@dataclass(frozen=True)
class StoredObject:
    """What was written.

    Attributes
    ----------
    key
        Key relative to the store root.
    size
        Size in bytes.
    sha256
        Hex SHA-256 of the content.
    created
        False when identical content was already stored under the key.
    """

    key: str
    size: int
    sha256: str
    created: bool


def sha256_file(path: str | os.PathLike[str]) -> str:
    """SHA-256 of a local file, read in chunks."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        while chunk := fh.read(CHUNK):
            h.update(chunk)
    return h.hexdigest()


def content_key(prefix: str, sha256: str, filename: str) -> str:
    """The key an object with this content and name gets."""
    safe = Path(filename).name
    if not safe or safe in (".", ".."):
        raise StoreError(f"invalid file name {filename!r}")
    return f"{prefix.strip('/')}/{sha256[:2]}/{sha256}/{safe}"


class ObjectStore:
    """An fsspec-backed store rooted at a URL.

    Parameters
    ----------
    url
        Local folder or fsspec URL such as ``s3://bucket/prefix``.
    storage_options
        Passed to fsspec (e.g. ``{"client_kwargs": {"endpoint_url": ...}}`` for S3).
    """

    def __init__(self, url: str, storage_options: dict[str, Any] | None = None) -> None:
        self.url = url
        options = dict(storage_options or {})
        if url.startswith("s3://") and "client_kwargs" not in options and os.environ.get("AWS_ENDPOINT_URL"):
            options["client_kwargs"] = {"endpoint_url": os.environ["AWS_ENDPOINT_URL"]}
        self.fs, root = fsspec.core.url_to_fs(url, **options)
        self.root = root.rstrip("/")
        self.local = "file" in (self.fs.protocol if isinstance(self.fs.protocol, tuple) else (self.fs.protocol,))
        if self.local:
            self.fs.makedirs(self.root, exist_ok=True)

    def path(self, key: str) -> str:
        """Backend path of a key."""
        return f"{self.root}/{key}"

    def exists(self, key: str) -> bool:
        """Whether an object exists."""
        return bool(self.fs.exists(self.path(key)))

    def size(self, key: str) -> int:
        """Size of an object in bytes."""
        return int(self.fs.size(self.path(key)))

    def put_file(self, local: str | os.PathLike[str], prefix: str, filename: str | None = None,
                 sha256: str | None = None) -> StoredObject:
        """Store a local file under its content key, atomically, and verify it.

        Parameters
        ----------
        local
            File to store.
        prefix
            Key prefix, e.g. ``l1``.
        filename
            Name to keep; defaults to the local file's name.
        sha256
            Known digest of the file, to avoid hashing it twice.

        Returns
        -------
        StoredObject
            Key, size, digest and whether it was newly written.
        """
        local = Path(local)
        digest = sha256 or sha256_file(local)
        size = local.stat().st_size
        key = content_key(prefix, digest, filename or local.name)
        target = self.path(key)
        if self.fs.exists(target) and self.fs.size(target) == size:
            return StoredObject(key, size, digest, created=False)
        self.fs.makedirs(target.rsplit("/", 1)[0], exist_ok=True)
        if self.local:
            tmp = f"{target}.tmp-{uuid.uuid4().hex}"
            try:
                self.fs.put_file(str(local), tmp)
                os.replace(tmp, target)  # atomic rename within one folder
            finally:
                if self.fs.exists(tmp):
                    self.fs.rm_file(tmp)
        else:
            self.fs.put_file(str(local), target)
        self._verify(key, size, digest)
        return StoredObject(key, size, digest, created=True)

    def _verify(self, key: str, size: int, digest: str) -> None:
        got_size = self.size(key)
        got = self.sha256(key)
        if got_size != size or got != digest:
            self.delete(key)
            raise StoreError(f"verification failed for {key}: size {got_size}/{size}, sha256 {got}/{digest}")

    def sha256(self, key: str) -> str:
        """SHA-256 of a stored object, streamed."""
        h = hashlib.sha256()
        for chunk in self.iter_bytes(key):
            h.update(chunk)
        return h.hexdigest()

    def open(self, key: str, mode: str = "rb") -> IO[bytes]:
        """Open a stored object for reading."""
        return self.fs.open(self.path(key), mode)  # type: ignore[no-any-return]

    def iter_bytes(self, key: str, chunk_size: int = CHUNK) -> Iterator[bytes]:
        """Stream an object's bytes (bounded memory)."""
        with self.open(key) as fh:
            while chunk := fh.read(chunk_size):
                yield chunk

    def get_file(self, key: str, local: str | os.PathLike[str]) -> Path:
        """Copy an object to a local path."""
        local = Path(local)
        local.parent.mkdir(parents=True, exist_ok=True)
        self.fs.get_file(self.path(key), str(local))
        return local

    def local_path(self, key: str) -> Path | None:
        """The object's path when the store is a local folder (no copy needed), else ``None``."""
        return Path(self.path(key)) if self.local else None

    def local_file(self, key: str, copy_to: str | os.PathLike[str]) -> Path:
        """A local path of the object: its own file in a local store, else a copy written to ``copy_to``."""
        local = self.local_path(key)
        return local if local is not None else self.get_file(key, copy_to)

    def delete(self, key: str) -> None:
        """Remove an object and the now-empty folders above it (local stores)."""
        target = self.path(key)
        if self.fs.exists(target):
            self.fs.rm_file(target)
        if self.local:
            parent = Path(target).parent
            for _ in range(2):
                try:
                    parent.rmdir()
                except OSError:
                    break
                parent = parent.parent

    def list_keys(self, prefix: str = "") -> list[str]:
        """Every object key under a prefix."""
        base = self.path(prefix.strip("/")) if prefix else self.root
        if not self.fs.exists(base):
            return []
        n = len(self.root) + 1
        return sorted(p[n:] for p in self.fs.find(base) if ".tmp-" not in p)
