"""Checking and cleaning a store: ``loopml store check`` and ``loopml store gc``.

``verify_store`` reads every record of the project (its payload must parse) and streams every
artifact a record refers to through sha256; it also lists what interrupted writes leave behind:
temporary files and artifacts no record refers to. ``gc_store`` removes those once they are
older than a grace period, so a write in progress (artifacts first, record last) is never
touched. "Referenced" counts the records of every project in the database, so projects that
share an artifact location never delete each other's artifacts.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loopml.errors import InputError
from loopml.store._artifacts import ArtifactFile, is_sha256
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    from loopml.store._store import Store

__all__ = ["GcResult", "Leftover", "Problem", "StoreCheck", "gc_store", "parse_duration"]

_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, "w": 604800.0}
_DURATION = re.compile(r"\s*(\d+(?:\.\d*)?)\s*([smhdw]?)\s*", re.IGNORECASE)


def parse_duration(value: float | str, *, where: str = "grace") -> float:
    """Seconds in ``value``: a number of seconds or ``90s``, ``30m``, ``24h``, ``7d``, ``2w``."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        if value < 0 or value != value:
            raise InputError(
                f"{value!r} is not a duration of zero or more seconds",
                hint="write e.g. 0, 30m, 24h or 7d",
                where=where,
            )
        return float(value)
    m = _DURATION.fullmatch(str(value))
    if m is None:
        raise InputError(
            f"{value!r} is not a duration",
            hint="write a number and a unit: 90s, 30m, 24h, 7d or 2w (0 for no grace period)",
            where=where,
        )
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


@dataclass(frozen=True)
class Problem:
    """Something wrong in the store: a record that cannot be read or a bad artifact."""

    message: str
    record: str | None = None
    artifact: str | None = None

    def describe(self) -> str:
        return f"{self.record}: {self.message}" if self.record else self.message

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record, "artifact": self.artifact, "message": self.message}


@dataclass(frozen=True)
class Leftover:
    """A file no record needs: a temporary file or an unreferenced artifact."""

    location: str
    reason: Literal["temporary", "unreferenced"]
    size: int
    age_seconds: float | None
    sha: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "reason": self.reason,
            "bytes": self.size,
            "age_seconds": None if self.age_seconds is None else round(self.age_seconds, 1),
            "sha256": self.sha,
        }


@dataclass(frozen=True)
class StoreCheck(HtmlRepr):
    """What :meth:`Store.verify` found. ``ok`` when no record or artifact is broken
    (leftovers are not problems: ``loopml store gc`` removes them)."""

    store: str
    artifacts: str
    project: str
    records: int
    artifacts_verified: int
    problems: list[Problem] = field(default_factory=list)
    temporary: list[Leftover] = field(default_factory=list)
    unreferenced: list[Leftover] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def leftover_bytes(self) -> int:
        return sum(f.size for f in (*self.temporary, *self.unreferenced))

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "store": self.store,
            "artifacts": self.artifacts,
            "project": self.project,
            "records": self.records,
            "artifacts_verified": self.artifacts_verified,
            "problems": [p.to_dict() for p in self.problems],
            "temporary": [f.to_dict() for f in self.temporary],
            "unreferenced": [f.to_dict() for f in self.unreferenced],
            "leftover_bytes": self.leftover_bytes,
        }


@dataclass(frozen=True)
class GcResult(HtmlRepr):
    """What :meth:`Store.gc` removed (or, with ``dry_run``, would remove)."""

    dry_run: bool
    grace_seconds: float
    removed: list[Leftover] = field(default_factory=list)
    kept: list[Leftover] = field(default_factory=list)  # younger than the grace period

    @property
    def bytes_freed(self) -> int:
        return sum(f.size for f in self.removed)

    def to_dict(self) -> dict[str, Any]:
        return {
            "dry_run": self.dry_run,
            "grace_seconds": self.grace_seconds,
            "removed": [f.to_dict() for f in self.removed],
            "kept": [f.to_dict() for f in self.kept],
            "bytes_freed": self.bytes_freed,
        }


def verify_store(store: Store) -> StoreCheck:
    import sqlalchemy as sa  # the maintenance commands go through SQLAlchemy

    from loopml.store._schema import records
    from loopml.store._store import _artifact_refs

    problems: list[Problem] = []
    problems.extend(_database_problems(store))
    query = sa.select(records.c.id, records.c.name, records.c.version, records.c.payload).where(
        records.c.project == store.project
    )
    with store._errors(), store.engine.connect() as conn:
        rows = conn.execute(query.order_by(records.c.kind, records.c.seq)).all()
    verified: dict[str, str | None] = {}  # sha -> problem (None: fine)
    for rec_id, name, version, body in rows:
        try:
            payload = json.loads(body)
        except (TypeError, ValueError) as exc:
            problems.append(
                Problem(f"{name}@{version} has a payload that is not valid JSON: {exc}", rec_id)
            )
            continue
        for sha in _artifact_refs(payload):
            if not is_sha256(sha):
                problems.append(
                    Problem(
                        f"refers to artifact {sha!r}, which is not a sha256 address", rec_id, sha
                    )
                )
                continue
            if sha not in verified:
                actual = store.artifacts.hash_of(sha)
                verified[sha] = (
                    f"artifact {sha[:12]} is missing from {store.artifacts.root}"
                    if actual is None
                    else None
                    if actual == sha
                    else f"artifact {sha[:12]} in {store.artifacts.root} does not match its "
                    "content hash (modified or corrupted)"
                )
            message = verified[sha]
            if message is not None:
                problems.append(Problem(message, rec_id, sha))
    temporary, unreferenced = _leftovers(store, time.time())
    return StoreCheck(
        store=store._where(),
        artifacts=store.artifacts.root,
        project=store.project,
        records=len(rows),
        artifacts_verified=len(verified),
        problems=problems,
        temporary=temporary,
        unreferenced=unreferenced,
    )


def gc_store(store: Store, *, grace: float | str, dry_run: bool) -> GcResult:
    seconds = parse_duration(grace)
    now = time.time()
    temporary, unreferenced = _leftovers(store, now)
    removed: list[Leftover] = []
    kept: list[Leftover] = []
    for item in (*temporary, *unreferenced):
        if item.age_seconds is None or item.age_seconds < seconds:
            kept.append(item)
            continue
        if not dry_run:
            # look again right before removing: a writer reusing an artifact touches it
            mtime = _stat_mtime(store, item)
            if mtime is None:
                continue  # already gone
            if time.time() - mtime < seconds:
                kept.append(item)
                continue
            _remove(store, item)
        removed.append(item)
    return GcResult(dry_run=dry_run, grace_seconds=seconds, removed=removed, kept=kept)


# ---------------------------------------------------------------------- helpers
def _database_problems(store: Store) -> list[Problem]:
    if store.engine.dialect.name != "sqlite":
        return []
    with store._errors(), store.engine.connect() as conn:
        result = [str(r[0]) for r in conn.exec_driver_sql("PRAGMA quick_check").all()]
    if result == ["ok"]:
        return []
    return [Problem(f"the SQLite database is damaged: {line}") for line in result[:20]]


def _referenced(store: Store) -> set[str]:
    """Every artifact address any record of any project refers to (payload or content hash)."""
    import sqlalchemy as sa

    from loopml.store._schema import records
    from loopml.store._store import _artifact_refs

    refs: set[str] = set()
    query = sa.select(records.c.content_hash, records.c.payload)
    with store._errors(), store.engine.connect() as conn:
        for content_hash, body in conn.execute(query):
            if content_hash:
                refs.add(content_hash)
            try:
                refs.update(_artifact_refs(json.loads(body)))
            except (TypeError, ValueError):
                # an unreadable payload may refer to anything: keep every artifact whose
                # address appears in its text
                refs.update(re.findall(r"[0-9a-f]{64}", str(body)))
    return refs


def _leftovers(store: Store, now: float) -> tuple[list[Leftover], list[Leftover]]:
    # files first, references second: an artifact written after the listing is not a
    # candidate, and one referenced after the listing is caught by the re-check in gc
    files = list(store.artifacts.files())
    temporary = [
        _leftover(f, "temporary", now)
        for f in files
        if f.sha is None and _is_artifact_temporary(store, f)
    ]
    temporary.extend(_database_temporaries(store, now))
    refs = _referenced(store)
    unreferenced = [
        _leftover(f, "unreferenced", now) for f in files if f.sha is not None and f.sha not in refs
    ]
    return temporary, unreferenced


def _leftover(
    f: ArtifactFile, reason: Literal["temporary", "unreferenced"], now: float
) -> Leftover:
    age = None if f.mtime is None else max(0.0, now - f.mtime)
    return Leftover(f.location, reason, f.size, age, f.sha)


def _is_artifact_temporary(store: Store, f: ArtifactFile) -> bool:
    """Only the writer's own ``tmp/*.part`` files; anything else someone put there stays."""
    parts = f.location.replace("\\", "/").rsplit("/", 2)
    return len(parts) >= 2 and parts[-2] == "tmp" and parts[-1].endswith(".part")


def _database_temporaries(store: Store, now: float) -> list[Leftover]:
    """Half-built SQLite stores (``.loopml.db.<id>.new``) and project-key temporaries."""
    from loopml.store._store import _sqlite_path

    db = _sqlite_path(str(store.engine.url))
    out: list[Leftover] = []
    if db is not None and db.parent.is_dir():
        patterns = [f".{db.name}.*.new", f".{db.name}.*.new-wal", f".{db.name}.*.new-shm"]
        patterns.append(".project_id.*.tmp")
        for pattern in patterns:
            for path in sorted(db.parent.glob(pattern)):
                try:
                    st = path.stat()
                except FileNotFoundError:
                    continue
                out.append(
                    Leftover(str(path), "temporary", st.st_size, max(0.0, now - st.st_mtime))
                )
    return out


def _is_database_file(store: Store, item: Leftover) -> bool:
    return item.reason == "temporary" and not item.location.endswith(".part")


def _stat_mtime(store: Store, item: Leftover) -> float | None:
    if _is_database_file(store, item):
        try:
            return Path(item.location).stat().st_mtime
        except FileNotFoundError:
            return None
    return store.artifacts.stat_mtime(item.location)


def _remove(store: Store, item: Leftover) -> None:
    if _is_database_file(store, item):
        Path(item.location).unlink(missing_ok=True)
    else:
        store.artifacts.remove(item.location)
