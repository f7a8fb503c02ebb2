"""Content-addressed artifacts: files named by their sha256, written atomically.

A write streams into a temporary name in the same directory tree and is renamed into place
only when complete, so a reader never sees a partial artifact; a crash leaves at most a
temporary file, which is ignored and removed by ``loopml store gc``. Every read verifies the
content against its address, and so does a write of content that is already stored: a
damaged copy is rewritten (with an :class:`ArtifactRepairedWarning`), never silently reused.
"""

from __future__ import annotations

import hashlib
import os
import uuid
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import IO, Any

from loopml.errors import IntegrityError, NotFoundError, StoreError

__all__ = ["ArtifactFile", "ArtifactRepairedWarning", "ArtifactStore"]

_CHUNK = 1 << 20
_HEX = frozenset("0123456789abcdef")


class ArtifactRepairedWarning(UserWarning):
    """A stored artifact did not match its hash and was rewritten from new, good content."""


@dataclass(frozen=True)
class ArtifactFile:
    """One file under the artifact root: an artifact (``sha`` set) or a temporary file."""

    location: str
    sha: str | None
    size: int
    mtime: float | None  # seconds since the epoch; None when the filesystem does not say


def is_sha256(text: str) -> bool:
    return len(text) == 64 and all(c in _HEX for c in text)


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
        """Store ``data``; returns its sha256. Content already stored is verified first and
        rewritten when the stored copy is damaged."""
        sha = hashlib.sha256(data).hexdigest()
        if self.exists(sha):
            if self.hash_of(sha) == sha:
                self._touch(sha)  # fresh again: `store gc` keeps what a new record is about to use
                return sha
            warnings.warn(
                f"artifact {sha[:12]} in {self.root} was damaged (its content no longer matched "
                "its hash); it has been rewritten from the new copy",
                ArtifactRepairedWarning,
                stacklevel=2,
            )
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

    def hash_of(self, sha: str) -> str | None:
        """The sha256 of the stored file at address ``sha`` (streamed), or None if absent."""
        rel = self._rel(sha)
        digest = hashlib.sha256()
        try:
            if self._local:
                handle: IO[bytes] = open(self._path / rel, "rb")  # noqa: SIM115
            else:
                handle = self._fs.open(f"{self._base}/{rel}", "rb")
            with handle:
                while chunk := handle.read(_CHUNK):
                    digest.update(chunk)
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise StoreError(f"cannot read artifact {sha[:12]}: {exc}", where=self.root) from None
        return digest.hexdigest()

    def _touch(self, sha: str) -> None:
        if self._local:
            with suppress(OSError):
                os.utime(self._path / self._rel(sha))
        else:
            # not every filesystem can; gc's grace period still protects new writes
            with suppress(OSError, NotImplementedError, TypeError, ValueError):
                self._fs.touch(f"{self._base}/{self._rel(sha)}", truncate=False)

    def files(self) -> Iterator[ArtifactFile]:
        """Every file under the root: artifacts and temporary files (``tmp/*.part``)."""
        if self._local:
            if not self._path.is_dir():
                return
            for path in sorted(self._path.rglob("*")):
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue  # removed while listing
                if not path.is_file():
                    continue
                rel = path.relative_to(self._path).as_posix()
                yield ArtifactFile(str(path), _sha_of(rel), st.st_size, st.st_mtime)
            return
        try:
            found = self._fs.find(self._base, detail=True)
        except FileNotFoundError:
            return
        base = self._base.rstrip("/") + "/"
        for name, info in sorted(found.items()):
            if info.get("type", "file") != "file":
                continue
            rel = name[len(base) :] if name.startswith(base) else name
            yield ArtifactFile(name, _sha_of(rel), int(info.get("size") or 0), _mtime(info))

    def remove(self, location: str) -> None:
        """Delete one file listed by :meth:`files`."""
        if self._local:
            Path(location).unlink(missing_ok=True)
        elif self._fs.exists(location):
            self._fs.rm(location)

    def stat_mtime(self, location: str) -> float | None:
        """The modification time of one listed file now (None if it is gone)."""
        if self._local:
            try:
                return Path(location).stat().st_mtime
            except FileNotFoundError:
                return None
        try:
            return _mtime(self._fs.info(location))
        except FileNotFoundError:
            return None

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


def _sha_of(rel: str) -> str | None:
    """The address of an artifact at ``ab/cdef...``; None for anything else (temporary files)."""
    head, _, tail = rel.partition("/")
    sha = head + tail
    return sha if len(head) == 2 and "/" not in tail and is_sha256(sha) else None


def _mtime(info: Mapping[str, Any]) -> float | None:
    for key in ("mtime", "LastModified", "last_modified", "updated", "created"):
        value = info.get(key)
        if value is None:
            continue
        if isinstance(value, int | float):
            return float(value)
        if isinstance(value, datetime):
            return value.timestamp()
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None
