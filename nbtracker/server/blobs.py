"""Content-addressed files under `<data dir>/blobs/`: `blobs/ab/<sha256>` for a file whose
sha256 starts with `ab`.

A blob's path comes only from its hash, checked to be 64 lower-case hex digits — never from
a name a client gave. An upload streams into a temporary file in `blobs/tmp/` while hashing,
and is renamed into place only when the bytes hash to the name they were sent under, so a
blob in place is always whole and correct (a killed server leaves at most a temporary file).
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
import zlib
from collections.abc import AsyncIterator
from pathlib import Path

_SHA256 = re.compile(r"^[0-9a-f]{64}$")


class BlobError(ValueError):
    """The bytes do not hash to the name they were sent under."""


class BlobTooLarge(Exception):
    pass


def is_sha256(text: str) -> bool:
    return bool(_SHA256.fullmatch(text))


class BlobStore:
    def __init__(self, data_dir: str | os.PathLike):
        self.root = Path(data_dir).resolve() / "blobs"
        self.tmp = self.root / "tmp"

    def path(self, sha256: str) -> Path:
        if not is_sha256(sha256):
            raise BlobError(f"{sha256!r} is not a sha256 (64 lower-case hex digits)")
        return self.root / sha256[:2] / sha256

    def has(self, sha256: str) -> bool:
        return self.path(sha256).is_file()

    async def put(self, sha256: str, chunks: AsyncIterator[bytes], limit: int,
                  gzip: bool = False) -> int:
        """Store the streamed bytes as blob `sha256`; returns its size."""
        dest = self.path(sha256)
        self.tmp.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=self.tmp, prefix="up-")
        try:
            size, digest = await self._write(fd, chunks, limit, gzip)
            os.fsync(fd)
            os.close(fd)
            fd = -1
            if digest != sha256:
                raise BlobError(f"the bytes hash to {digest}, not {sha256}")
            dest.parent.mkdir(exist_ok=True)
            os.replace(tmp, dest)
            return size
        finally:
            if fd != -1:
                os.close(fd)
            if os.path.exists(tmp):
                os.unlink(tmp)

    @staticmethod
    async def _write(fd: int, chunks: AsyncIterator[bytes], limit: int,
                     gzip: bool) -> tuple[int, str]:
        h = hashlib.sha256()
        size = 0
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS) if gzip else None
        async for chunk in chunks:
            if inflater is not None:
                try:
                    chunk = inflater.decompress(chunk, limit + 1 - size)
                except zlib.error as e:
                    raise BlobError(f"the gzip body does not inflate: {e}") from None
                if inflater.unconsumed_tail:
                    raise BlobTooLarge()
            size += len(chunk)
            if size > limit:
                raise BlobTooLarge()
            h.update(chunk)
            _write_all(fd, chunk)
        if inflater is not None and not inflater.eof:
            raise BlobError("the gzip body is cut short")
        return size, h.hexdigest()


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]
