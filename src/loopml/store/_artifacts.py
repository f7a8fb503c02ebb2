"""Content-addressed artifacts: files named by their sha256, written atomically.

A write streams into a temporary name in the same directory tree and is renamed into place
only when complete, so a reader never sees a partial artifact; a crash leaves at most a
temporary file, which is ignored and cleaned up by :meth:`ArtifactStore.clean_temporary`.
Every read verifies the content against its address.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO, Any

from loopml.errors import IntegrityError, NotFoundError, StoreError

__all__ = ["ArtifactStore"]

_CHUNK = 1 << 20


class ArtifactStore:
    """Artifacts under a local directory or any fsspec URL (``s3://bucket/prefix``...)."""

    def __init__(self, root: str | Path) -> None:
        self.root = str(root)
        self._local = "://" not in self.root or self.root.startswith("file://")
        if self._local:
            self._path = Path(self.root.removeprefix("file://"))
            self._path.mkdir(parents=True, exist_ok=True)
            self._fs: Any = None
        else:
            import fsspec

            self._fs, self._base = fsspec.core.url_to_fs(self.root)

    def _rel(self, sha: str) -> str:
        if len(sha) != 64 or any(c not in "0123456789abcdef" for c in sha):
            raise NotFoundError(f"{sha!r} is not a sha256 artifact address")
        return f"{sha[:2]}/{sha[2:]}"

    def exists(self, sha: str) -> bool:
        if self._local:
            return (self._path / self._rel(sha)).is_file()
        return bool(self._fs.exists(f"{self._base}/{self._rel(sha)}"))

    def put_bytes(self, data: bytes) -> str:
        sha = hashlib.sha256(data).hexdigest()
        if self.exists(sha):
            return sha
        with self._writer() as (handle, finish):
            handle.write(data)
            finish(sha)
        return sha

    def put_file(self, path: str | Path) -> str:
        """Copy a local file in; returns its sha256."""
        digest = hashlib.sha256()
        with open(path, "rb") as src, self._writer() as (handle, finish):
            while chunk := src.read(_CHUNK):
                digest.update(chunk)
                handle.write(chunk)
            finish(digest.hexdigest())
        return digest.hexdigest()

    @contextmanager
    def _writer(self) -> Iterator[tuple[IO[bytes], Any]]:
        """Yield (handle, finish); ``finish(sha)`` renames the temporary file into place."""
        tmp_name = f"tmp/{uuid.uuid4().hex}.part"
        done: list[str] = []

        def finish(sha: str) -> None:
            done.append(sha)

        if self._local:
            tmp = self._path / tmp_name
            tmp.parent.mkdir(parents=True, exist_ok=True)
            try:
                with open(tmp, "wb") as handle:
                    yield handle, finish
                    handle.flush()
                    os.fsync(handle.fileno())
                if done:
                    final = self._path / self._rel(done[0])
                    final.parent.mkdir(parents=True, exist_ok=True)
                    os.replace(tmp, final)
            finally:
                if tmp.exists():
                    tmp.unlink()
        else:
            tmp_url = f"{self._base}/{tmp_name}"
            try:
                with self._fs.open(tmp_url, "wb") as handle:
                    yield handle, finish
                if done:
                    self._fs.mv(tmp_url, f"{self._base}/{self._rel(done[0])}")
            finally:
                if self._fs.exists(tmp_url):
                    self._fs.rm(tmp_url)

    def get_bytes(self, sha: str) -> bytes:
        rel = self._rel(sha)
        try:
            if self._local:
                data = (self._path / rel).read_bytes()
            else:
                with self._fs.open(f"{self._base}/{rel}", "rb") as handle:
                    data = handle.read()
        except FileNotFoundError:
            raise NotFoundError(
                f"artifact {sha[:12]} is not in the artifact store {self.root}",
                hint="the store may have been copied without its artifacts/ directory",
            ) from None
        except OSError as exc:
            raise StoreError(f"cannot read artifact {sha[:12]}: {exc}") from None
        if hashlib.sha256(data).hexdigest() != sha:
            raise IntegrityError(
                f"artifact {sha[:12]} in {self.root} does not match its content hash",
                hint="the file was modified or corrupted; restore it from a backup",
            )
        return data

    def local_path(self, sha: str) -> Path:
        """A verified local path to the artifact (for engines that read files directly)."""
        if not self._local:
            raise StoreError("local_path() needs a local artifact store")
        path = self._path / self._rel(sha)
        if not path.is_file():
            raise NotFoundError(f"artifact {sha[:12]} is not in the artifact store {self.root}")
        digest = hashlib.sha256()
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                digest.update(chunk)
        if digest.hexdigest() != sha:
            raise IntegrityError(
                f"artifact {sha[:12]} in {self.root} does not match its content hash",
                hint="the file was modified or corrupted; restore it from a backup",
            )
        return path

    def clean_temporary(self) -> int:
        """Remove temporary files left by interrupted writes; returns how many."""
        if not self._local:
            return 0
        tmp = self._path / "tmp"
        count = 0
        if tmp.is_dir():
            for leftover in tmp.glob("*.part"):
                leftover.unlink(missing_ok=True)
                count += 1
        return count
