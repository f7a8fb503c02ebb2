"""The project store: metadata records (SQLAlchemy) and content-addressed artifacts.

Every object loopml writes is one row of ``records``: a kind (``dataset``, ``evaluation``...),
a name and a version (``train@2``), a per-kind sequence number that gives the short id
(``eval-3``), the lineage fields and a JSON payload. Large content lives in artifacts,
addressed by sha256 and written before the row that refers to them, so a record is inserted
in one transaction and is never half written: after a crash at any point the store holds the
record whole or not at all (an orphaned artifact is harmless).
"""

from __future__ import annotations

import builtins
import json
import os
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from loopml._lineage import git_commit, loopml_version, utcnow
from loopml.errors import NotFoundError, StoreError
from loopml.store._artifacts import ArtifactStore
from loopml.store._schema import records

__all__ = ["KIND_PREFIX", "Record", "Store", "store_url_for"]

STORE_DIR = ".loopml"
KIND_PREFIX = {
    "assessment": "scope",
    "dataset": "data",
    "split": "split",
    "labelset": "labels",
    "tagset": "tags",
    "baseline": "base",
    "model": "model",
    "evaluation": "eval",
    "audit": "audit",
    "discovery": "disc",
    "learning_curve": "curve",
}


@dataclass(frozen=True)
class Record:
    """One stored object with its lineage. ``payload`` is plain JSON data."""

    id: str
    kind: str
    seq: int
    name: str
    version: int
    content_hash: str | None
    created_at: str
    loopml_version: str
    git_commit: str | None
    payload: dict[str, Any] = field(default_factory=dict)

    @property
    def ref(self) -> str:
        """``name@version``, e.g. ``train@2``."""
        return f"{self.name}@{self.version}"

    def lineage(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "ref": self.ref,
            "created_at": self.created_at,
            "loopml_version": self.loopml_version,
            "git_commit": self.git_commit,
            "content_hash": self.content_hash,
        }

    def to_dict(self) -> dict[str, Any]:
        return {**self.lineage(), "kind": self.kind, "payload": self.payload}


def store_url_for(project_dir: Path) -> str:
    """The metadata URL: ``LOOPML_STORE_URL`` or SQLite in ``.loopml/`` of the project."""
    url = os.environ.get("LOOPML_STORE_URL")
    if url:
        return url
    return f"sqlite:///{project_dir / STORE_DIR / 'loopml.db'}"


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


class Store:
    """Metadata and artifacts of one project. Open with :meth:`Store.open`."""

    def __init__(self, engine: Engine, artifacts: ArtifactStore, project_dir: Path | None) -> None:
        self.engine = engine
        self.artifacts = artifacts
        self.project_dir = project_dir
        self._commit: str | bool | None = False  # False: not looked up yet

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        project_dir: str | Path | None = None,
        *,
        url: str | None = None,
        artifacts_url: str | None = None,
        create: bool = True,
    ) -> Store:
        """Open (and migrate) the store of ``project_dir``.

        ``url`` (or ``LOOPML_STORE_URL``) selects the metadata database; ``artifacts_url`` (or
        ``LOOPML_ARTIFACTS_URL``) the artifact location. The defaults live in ``.loopml/``.
        """
        pdir = Path(project_dir).resolve() if project_dir is not None else None
        if url is None:
            if pdir is None:
                raise StoreError("Store.open needs a project directory or a url")
            url = store_url_for(pdir)
        if url.startswith("sqlite:///") and url != "sqlite:///:memory:":
            db_path = Path(url.removeprefix("sqlite:///"))
            if not db_path.parent.is_dir():
                if not create:
                    raise StoreError(
                        f"no store at {db_path.parent}", hint="run `loopml init` first"
                    )
                db_path.parent.mkdir(parents=True, exist_ok=True)
        art = artifacts_url or os.environ.get("LOOPML_ARTIFACTS_URL")
        if art is None:
            if pdir is None:
                raise StoreError("Store.open needs a project directory or an artifacts_url")
            art = str(pdir / STORE_DIR / "artifacts")
        try:
            engine = sa.create_engine(url, future=True)
        except (sa.exc.ArgumentError, ImportError) as exc:
            raise StoreError(
                f"cannot use the store URL {url!r}: {exc}",
                hint="use sqlite:///path/loopml.db or postgresql+psycopg://user@host/db "
                "(pip install 'loopml[postgres]')",
            ) from None
        if engine.dialect.name == "sqlite":
            sa.event.listen(engine, "connect", _sqlite_pragmas)
        store = cls(engine, ArtifactStore(art), pdir)
        store.migrate()
        return store

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (no-op when current)."""
        from alembic import command
        from alembic.config import Config
        from alembic.runtime.migration import MigrationContext
        from alembic.script import ScriptDirectory

        cfg = Config()
        cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
        head = ScriptDirectory.from_config(cfg).get_current_head()
        try:
            with self.engine.begin() as conn:
                current = MigrationContext.configure(conn).get_current_revision()
                if current == head:
                    return
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, "head")
        except sa.exc.OperationalError as exc:
            raise StoreError(
                f"cannot open the metadata store {self.engine.url!r}: {exc.orig}",
                hint="check LOOPML_STORE_URL, that the server runs and that you may connect",
            ) from None

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing
    def _git_commit(self) -> str | None:
        if self._commit is False:
            self._commit = git_commit(self.project_dir) if self.project_dir else None
        return self._commit if isinstance(self._commit, str) else None

    def put(
        self,
        kind: str,
        name: str,
        payload: Mapping[str, Any],
        *,
        content_hash: str | None = None,
        dedupe: bool = False,
    ) -> Record:
        """Insert a new version of ``kind``/``name``; one transaction, never half written.

        With ``dedupe`` and a ``content_hash``, an existing record of the same kind, name and
        hash is returned instead of a new version.
        """
        if kind not in KIND_PREFIX:
            raise StoreError(f"unknown record kind {kind!r}")
        body = json.dumps(payload, allow_nan=True, default=_json_default, sort_keys=True)
        for _attempt in range(20):
            try:
                with self.engine.begin() as conn:
                    if dedupe and content_hash:
                        found = conn.execute(
                            sa.select(records).where(
                                records.c.kind == kind,
                                records.c.name == name,
                                records.c.content_hash == content_hash,
                            )
                        ).first()
                        if found is not None:
                            return _row_to_record(found)
                    seq = _next(conn, records.c.seq, records.c.kind == kind)
                    version = _next(
                        conn, records.c.version, (records.c.kind == kind) & (records.c.name == name)
                    )
                    row = {
                        "id": f"{KIND_PREFIX[kind]}-{seq}",
                        "kind": kind,
                        "seq": seq,
                        "name": name,
                        "version": version,
                        "content_hash": content_hash,
                        "created_at": utcnow(),
                        "loopml_version": loopml_version(),
                        "git_commit": self._git_commit(),
                        "payload": body,
                    }
                    conn.execute(records.insert().values(**row))
                return _row_to_record(row)
            except sa.exc.IntegrityError:
                continue  # a concurrent writer took the number; try the next one
        raise StoreError(f"could not allocate a version for {kind} {name!r} after 20 attempts")

    # ------------------------------------------------------------------ reading
    def get(self, ref: str, kind: str | None = None) -> Record:
        """A record by id (``eval-3``), by ``name@version`` or by ``name`` (newest version)."""
        query = sa.select(records)
        if kind is not None:
            query = query.where(records.c.kind == kind)
        ref = ref.strip()
        if "@" in ref:
            name, _, ver = ref.rpartition("@")
            if not ver.isdigit():
                raise NotFoundError(
                    f"{ref!r} is not a valid reference: the version after @ must be a number",
                    hint="write name@version, e.g. train@2",
                )
            query = query.where(records.c.name == name, records.c.version == int(ver))
        else:
            by_id = query.where(records.c.id == ref)
            with self.engine.connect() as conn:
                row = conn.execute(by_id).first()
            if row is not None:
                return _row_to_record(row)
            query = query.where(records.c.name == ref).order_by(records.c.version.desc())
        with self.engine.connect() as conn:
            row = conn.execute(query.limit(1)).first()
        if row is None:
            what = kind or "record"
            known = [r.id if kind != "dataset" else r.ref for r in self.list(kind)][-8:]
            raise NotFoundError(
                f"no {what} {ref!r} in the store",
                hint=(f"known: {', '.join(known)}" if known else f"no {what} is stored yet"),
            )
        return _row_to_record(row)

    def latest(self, kind: str, name: str | None = None) -> Record | None:
        query = sa.select(records).where(records.c.kind == kind)
        if name is not None:
            query = query.where(records.c.name == name)
        with self.engine.connect() as conn:
            row = conn.execute(query.order_by(records.c.seq.desc()).limit(1)).first()
        return _row_to_record(row) if row is not None else None

    def list(self, kind: str | None = None, name: str | None = None) -> list[Record]:
        query = sa.select(records)
        if kind is not None:
            query = query.where(records.c.kind == kind)
        if name is not None:
            query = query.where(records.c.name == name)
        with self.engine.connect() as conn:
            rows = conn.execute(query.order_by(records.c.kind, records.c.seq)).all()
        return [_row_to_record(r) for r in rows]

    def iter_all(self) -> Iterator[Record]:
        yield from self.list()

    def check(self) -> builtins.list[str]:
        """Problems found: unreadable payloads, missing or corrupted artifacts."""
        problems: builtins.list[str] = []
        for rec in self.list():
            for sha in _artifact_refs(rec.payload):
                try:
                    self.artifacts.get_bytes(sha)
                except (NotFoundError, StoreError) as exc:
                    problems.append(f"{rec.id}: {exc.message}")
        return problems


def _next(conn: Connection, column: sa.Column[int], where: sa.ColumnElement[bool]) -> int:
    current = conn.execute(sa.select(sa.func.max(column)).where(where)).scalar()
    return int(current or 0) + 1


def _row_to_record(row: Any) -> Record:
    m = row._mapping if hasattr(row, "_mapping") else row
    return Record(
        id=m["id"],
        kind=m["kind"],
        seq=int(m["seq"]),
        name=m["name"],
        version=int(m["version"]),
        content_hash=m["content_hash"],
        created_at=m["created_at"],
        loopml_version=m["loopml_version"],
        git_commit=m["git_commit"],
        payload=json.loads(m["payload"]),
    )


def _artifact_refs(payload: Any) -> Iterator[str]:
    """Every value under a key ending in ``artifact`` or ``_sha256`` in the payload."""
    if isinstance(payload, Mapping):
        for key, value in payload.items():
            if isinstance(value, str) and (key.endswith("artifact") or key.endswith("_sha256")):
                yield value
            else:
                yield from _artifact_refs(value)
    elif isinstance(payload, list):
        for item in payload:
            yield from _artifact_refs(item)


def _json_default(value: Any) -> Any:
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if hasattr(value, "to_dict"):
        return value.to_dict()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot store a {type(value).__name__} in a record payload")
