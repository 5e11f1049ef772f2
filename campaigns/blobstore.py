"""Where files that every host must read are kept: model artifacts and uploads waiting for a worker.

One small interface with two implementations: the database (the default: nothing to set up, every
host that reaches PostgreSQL reads it) and a folder (a volume every host mounts). A blob is written
once under its key with its sha256; `read` refuses bytes whose digest differs from the one expected.
Choose with `MAILRAMP_BLOB_STORE`: `database` or `file:///path/to/shared/folder`.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from models import Blob, BlobChunk

CHUNK_BYTES = 4 * 1024 * 1024


class BlobError(RuntimeError):
    """The blob is missing, or its bytes are not the ones recorded."""


@dataclass(frozen=True)
class StoredBlob:
    key: str
    sha256: str
    size: int


class BlobStore(Protocol):
    def put(self, key: str, stream: IO[bytes]) -> StoredBlob: ...

    def chunks(self, key: str) -> Iterator[bytes]: ...

    def stat(self, key: str) -> StoredBlob | None: ...

    def delete(self, key: str) -> None: ...


def put_bytes(store: BlobStore, key: str, data: bytes) -> StoredBlob:
    import io

    return store.put(key, io.BytesIO(data))


def read(store: BlobStore, key: str, sha256: str | None = None) -> bytes:
    """The blob's bytes, checked against `sha256` (or the digest recorded when it was stored)."""
    recorded = store.stat(key)
    if recorded is None:
        raise BlobError(f"blob {key} does not exist")
    expected = sha256 or recorded.sha256
    data = b"".join(store.chunks(key))
    actual = hashlib.sha256(data).hexdigest()
    if actual != expected:
        raise BlobError(f"blob {key} has sha256 {actual}, expected {expected}")
    return data


def download(store: BlobStore, key: str, out: IO[bytes]) -> StoredBlob:
    """Copy the blob into `out`, checking its digest on the way; returns what was recorded."""
    recorded = store.stat(key)
    if recorded is None:
        raise BlobError(f"blob {key} does not exist")
    digest = hashlib.sha256()
    for chunk in store.chunks(key):
        digest.update(chunk)
        out.write(chunk)
    if digest.hexdigest() != recorded.sha256:
        raise BlobError(f"blob {key} has sha256 {digest.hexdigest()}, expected {recorded.sha256}")
    return recorded


class DatabaseBlobStore:
    """Blobs in the `blobs` and `blob_chunks` tables, written in one transaction."""

    def __init__(self, session_factory: sessionmaker[Session]) -> None:
        self.session_factory = session_factory

    def put(self, key: str, stream: IO[bytes]) -> StoredBlob:
        digest = hashlib.sha256()
        size = 0
        with self.session_factory() as session, session.begin():
            session.execute(sa.delete(BlobChunk).where(BlobChunk.key == key))
            session.execute(sa.delete(Blob).where(Blob.key == key))
            session.add(Blob(key=key, sha256="", size=0))
            session.flush()
            seq = 0
            while block := stream.read(CHUNK_BYTES):
                digest.update(block)
                size += len(block)
                session.execute(sa.insert(BlobChunk).values(key=key, seq=seq, data=block))
                seq += 1
            session.execute(
                sa.update(Blob).where(Blob.key == key).values(sha256=digest.hexdigest(), size=size)
            )
        return StoredBlob(key, digest.hexdigest(), size)

    def chunks(self, key: str) -> Iterator[bytes]:
        seq = 0
        while True:  # one chunk per query: memory stays at one chunk whatever the blob's size
            with self.session_factory() as session:
                data = session.scalar(
                    sa.select(BlobChunk.data).where(BlobChunk.key == key, BlobChunk.seq == seq)
                )
            if data is None:
                return
            yield bytes(data)
            seq += 1

    def stat(self, key: str) -> StoredBlob | None:
        with self.session_factory() as session:
            row = session.get(Blob, key)
            return None if row is None else StoredBlob(row.key, row.sha256, int(row.size))

    def delete(self, key: str) -> None:
        with self.session_factory() as session, session.begin():
            session.execute(sa.delete(BlobChunk).where(BlobChunk.key == key))
            session.execute(sa.delete(Blob).where(Blob.key == key))


class FilesystemBlobStore:
    """Blobs as files under a folder every host mounts; the digest sits beside each file."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        path = (self.root / key).resolve()
        if not path.is_relative_to(self.root.resolve()):
            raise BlobError(f"blob key {key!r} leaves the store's folder")
        return path

    def put(self, key: str, stream: IO[bytes]) -> StoredBlob:
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        digest = hashlib.sha256()
        size = 0
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        with os.fdopen(fd, "wb") as out:
            while block := stream.read(CHUNK_BYTES):
                digest.update(block)
                size += len(block)
                out.write(block)
        Path(f"{path}.sha256").write_text(digest.hexdigest())
        os.replace(tmp, path)
        return StoredBlob(key, digest.hexdigest(), size)

    def chunks(self, key: str) -> Iterator[bytes]:
        with self._path(key).open("rb") as fh:
            while block := fh.read(CHUNK_BYTES):
                yield block

    def stat(self, key: str) -> StoredBlob | None:
        path = self._path(key)
        sidecar = Path(f"{path}.sha256")
        if not path.is_file() or not sidecar.is_file():
            return None
        return StoredBlob(key, sidecar.read_text().strip(), path.stat().st_size)

    def delete(self, key: str) -> None:
        path = self._path(key)
        path.unlink(missing_ok=True)
        Path(f"{path}.sha256").unlink(missing_ok=True)


def open_store(url: str, session_factory: sessionmaker[Session]) -> BlobStore:
    """`database` (default) or `file:///shared/folder` (a plain absolute path works too)."""
    if url in ("", "database"):
        return DatabaseBlobStore(session_factory)
    if url.startswith("file://"):
        return FilesystemBlobStore(Path(url[len("file://") :]))
    if url.startswith("/"):
        return FilesystemBlobStore(Path(url))
    raise ValueError(f"MAILRAMP_BLOB_STORE must be 'database' or 'file:///path', not {url!r}")


def spool(store: BlobStore, key: str) -> Path:
    """Copy a blob into a local temporary file (the caller deletes it) after checking its digest."""
    fd, name = tempfile.mkstemp(prefix="mailramp-blob-")
    try:
        with os.fdopen(fd, "wb") as out:
            download(store, key, out)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    return Path(name)


def put_file(store: BlobStore, key: str, path: Path) -> StoredBlob:
    with path.open("rb") as fh:
        return store.put(key, fh)


__all__ = [
    "BlobError",
    "BlobStore",
    "DatabaseBlobStore",
    "FilesystemBlobStore",
    "StoredBlob",
    "download",
    "open_store",
    "put_bytes",
    "put_file",
    "read",
    "spool",
]
