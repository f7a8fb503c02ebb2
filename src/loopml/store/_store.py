"""The project store: metadata records (SQL) and content-addressed artifacts.

Every object loopml writes is one row of ``records``: the project it belongs to, a kind
(``dataset``, ``evaluation``...), a name and a version (``train@2``), a per-kind sequence number
that gives the short id (``eval-3``), the lineage fields and a JSON payload. Ids, sequence
numbers and versions are per project, so projects sharing one database never mix. Large content
lives in artifacts, addressed by sha256 and written before the rows that refer to them.

Writes go through :meth:`Store.transaction`: the records put inside one block commit together or
not at all, so after a crash at any point the store holds all of them or none (an orphaned
artifact is harmless; ``loopml store gc`` removes it). Numbers are allocated under a lock (SQLite:
``BEGIN IMMEDIATE``; PostgreSQL: a transaction-scoped advisory lock per project), never by
retrying, and the schema is migrated under a lock too, so concurrent processes are safe.

The embedded default store (a SQLite file) is read and written through Python's own
``sqlite3`` driver, which is what SQLAlchemy drives for SQLite anyway: the same statements on
the same schema, the same pragmas and locking, so the file is the same either way, and a
command that only reads or adds records does not import SQLAlchemy (about 0.2 s). Every other
URL (PostgreSQL), schema migrations and the maintenance commands go through SQLAlchemy; so
does :attr:`Store.engine`, created on first use.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import os
import re
import sqlite3
import sys
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from loopml._lineage import git_commit, loopml_version, utcnow
from loopml.errors import InputError, NotFoundError, StoreError
from loopml.store._artifacts import ArtifactStore
from loopml.store._limits import NAME_MAX, PROJECT_MAX, RECORD_COLUMNS
from loopml.tableview import HtmlRepr

if TYPE_CHECKING:
    import sqlalchemy as sa
    from sqlalchemy.engine import Connection, Engine

    from loopml.store._maintenance import GcResult, StoreCheck

__all__ = [
    "KIND_PREFIX",
    "PROJECT_ID_FILE",
    "Record",
    "Store",
    "Transaction",
    "project_key_for",
    "store_url_for",
]

STORE_DIR = ".loopml"
PROJECT_ID_FILE = "project_id"
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
    "decision": "gate",
    "alias": "alias",
    "log_segment": "seg",
    "monitor": "mon",
    "export": "export",
    "label_export": "lsx",
    "label_import": "lsi",
}
_SQLITE_MAGIC = b"SQLite format 3\x00"
_KEY_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:-]*")
_GITIGNORE = (
    "# written by loopml: commit project_id (clones then share the project in a team store);\n"
    "# the database and the artifacts stay out of git\n"
    "*\n!.gitignore\n!project_id\n"
)


@dataclass(frozen=True)
class Record(HtmlRepr):
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
    project: str = ""

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


# ---------------------------------------------------------------------- project keys
def _check_key(key: str, where: str) -> str:
    if not (0 < len(key) <= PROJECT_MAX and _KEY_RE.fullmatch(key)):
        raise StoreError(
            f"{key!r} is not a valid project key: expected 1 to {PROJECT_MAX} letters, digits, "
            "'.', '_', ':' or '-', starting with a letter or digit",
            hint="pass a key such as 'churn' or the UUID in the project's .loopml/project_id",
            where=where,
        )
    return key


def project_key_for(project_dir: str | Path, *, create: bool = True) -> str:
    """The project's stable key: the UUID in ``.loopml/project_id``, written once.

    The key travels with the project: moving the directory keeps it, and committing
    ``.loopml/project_id`` (the ``.loopml/.gitignore`` loopml writes lets it through) gives every
    clone the same key, so a team sharing one ``LOOPML_STORE_URL`` sees one project. Concurrent
    first opens agree on one key (it is linked into place, never overwritten).
    """
    sdir = Path(project_dir) / STORE_DIR
    path = sdir / PROJECT_ID_FILE
    try:
        text = path.read_text(encoding="ascii")
    except FileNotFoundError:
        if not create:
            raise StoreError(
                f"no project key at {path}", hint="run `loopml init` first", where=str(path)
            ) from None
        _write_key(sdir, path)
        text = path.read_text(encoding="ascii")
    except (OSError, UnicodeDecodeError) as exc:
        raise StoreError(
            f"cannot read the project key: {exc}",
            hint="restore .loopml/project_id from version control or a backup",
            where=str(path),
        ) from None
    key = text.strip()
    try:
        return _check_key(key, str(path))
    except StoreError as exc:
        raise StoreError(
            f"{path} does not hold a project key ({exc.message})",
            hint="restore it from version control or a backup; delete it only to make this "
            "directory a new project that does not see the records stored so far",
            where=str(path),
        ) from None


def _write_key(sdir: Path, path: Path) -> None:
    try:
        sdir.mkdir(parents=True, exist_ok=True)
        ignore = sdir / ".gitignore"
        if not ignore.exists():
            ignore.write_text(_GITIGNORE, encoding="ascii")
        tmp = sdir / f".{PROJECT_ID_FILE}.{uuid.uuid4().hex}.tmp"
        try:
            with open(tmp, "w", encoding="ascii") as handle:
                handle.write(f"{uuid.uuid4()}\n")
                handle.flush()
                os.fsync(handle.fileno())
            try:
                os.link(tmp, path)  # atomic and never overwrites a key another process wrote
            except FileExistsError:
                pass
            except OSError:  # a filesystem without hard links
                if not path.exists():
                    os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot write the project key: {exc.strerror or exc}",
            hint="check that the project directory is writable",
            where=str(path),
        ) from None


# ---------------------------------------------------------------------- engines
def _sqlite_connect(dbapi_connection: Any, _record: Any) -> None:
    # loopml issues BEGIN itself (see _sqlite_begin): the driver must not begin implicitly
    dbapi_connection.isolation_level = None
    _sqlite_pragmas(dbapi_connection)


def _sqlite_pragmas(connection: Any) -> None:
    """Every SQLite connection of a store, either driver: wait for locks, WAL, full sync."""
    cursor = connection.cursor()
    cursor.execute("PRAGMA busy_timeout=30000")  # first: the next pragma may wait on a lock
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=FULL")
    cursor.close()


def _sqlite_begin(conn: Connection) -> None:
    """Writers take the write lock up front (``BEGIN IMMEDIATE``): numbers are allocated with
    the lock held, so no two writers can pick the same one."""
    mode = "IMMEDIATE" if conn.get_execution_options().get("loopml_write") else "DEFERRED"
    conn.exec_driver_sql(f"BEGIN {mode}")


def _make_engine(url: str) -> Engine:
    import sqlalchemy as sa

    try:
        engine = sa.create_engine(url)
    except (sa.exc.ArgumentError, ImportError) as exc:
        raise StoreError(
            f"cannot use the store URL {url!r}: {exc}",
            hint="use sqlite:///path/loopml.db or postgresql+psycopg://user@host/db "
            "(pip install 'loopml[postgres]')",
        ) from None
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_connect)
        sa.event.listen(engine, "begin", _sqlite_begin)
    return engine


def _sqlite_path(url: str) -> Path | None:
    if not url.startswith("sqlite:///") or url in ("sqlite:///:memory:", "sqlite:///"):
        return None
    return Path(url.removeprefix("sqlite:///").split("?", 1)[0])


def _plain_sqlite_file(url: str) -> Path | None:
    """The file of a ``sqlite:///path`` URL without driver options: the store the stdlib path
    serves (a URL with ``?options`` or another driver goes through SQLAlchemy)."""
    path = _sqlite_path(url)
    return None if path is None or "?" in url else path


class _SqliteFile:
    """A SQLite store file through the stdlib driver, with the connections SQLAlchemy's pool
    would give: autocommit mode (loopml issues ``BEGIN`` itself), the store's pragmas, usable
    from any thread, rolled back and kept for reuse when given back."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._idle: builtins.list[sqlite3.Connection] = []
        self._lock = threading.Lock()

    def checkout(self) -> sqlite3.Connection:
        with self._lock:
            if self._idle:
                return self._idle.pop()
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        try:
            _sqlite_pragmas(conn)
        except BaseException:
            conn.close()
            raise
        return conn

    def checkin(self, conn: sqlite3.Connection) -> None:
        try:
            if conn.in_transaction:
                conn.rollback()
        except sqlite3.Error:
            conn.close()
            return
        with self._lock:
            self._idle.append(conn)

    def rows(self, sql: str, params: Mapping[str, Any]) -> builtins.list[dict[str, Any]]:
        """The rows of one statement as dicts by column name."""
        conn = self.checkout()
        try:
            cursor = conn.execute(sql, params)
            names = [d[0] for d in cursor.description]
            return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
        finally:
            self.checkin(conn)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for conn in idle:
            conn.close()


_SELECT_RECORDS = f"SELECT {', '.join(RECORD_COLUMNS)} FROM records"


def _sqlite_filters(project: str, **equal: Any) -> tuple[str, dict[str, Any]]:
    """``WHERE project = :project AND col = :col ...`` for the columns given (not None)."""
    params = {"project": project, **{k: v for k, v in equal.items() if v is not None}}
    return " WHERE " + " AND ".join(f"{k} = :{k}" for k in params), params


def _check_sqlite_file(db_path: Path) -> None:
    """Refuse a file SQLite would silently treat as a new, empty database, or cannot read."""
    move_away = (
        f"restore {db_path.name} from a backup, or move it away (e.g. to "
        f"{db_path.name}.broken) to start an empty store"
    )
    try:
        with open(db_path, "rb") as handle:
            head = handle.read(len(_SQLITE_MAGIC))
    except OSError as exc:
        raise StoreError(
            f"cannot read the store: {exc.strerror or exc}",
            hint="check the file's permissions",
            where=str(db_path),
        ) from None
    if not head:
        raise StoreError(
            "the store file is empty (0 bytes): its records are lost, and loopml will not "
            "silently start a new store in its place",
            hint=move_away,
            where=str(db_path),
        )
    if head != _SQLITE_MAGIC:
        raise StoreError(
            "the store file is not a SQLite database (its header is wrong)",
            hint=move_away,
            where=str(db_path),
        )


def _lock_key(*parts: str) -> int:
    """A signed 64-bit key for pg_advisory_xact_lock."""
    digest = hashlib.sha256("\x00".join(("loopml", *parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


# ---------------------------------------------------------------------- writing
class Transaction:
    """The records put inside one :meth:`Store.transaction` block; they commit together.

    The write lock is taken at the first :meth:`put` and held until the block ends, so keep
    slow work (training, writing artifacts) before the block, not inside it.
    """

    def __init__(self, store: Store) -> None:
        self._store = store
        self._conn: Connection | None = None
        self._trans: sa.engine.RootTransaction | None = None
        self._lite: sqlite3.Connection | None = None  # the stdlib path (a SQLite file)
        self._lock: _WriterLock | None = None
        self.records: builtins.list[Record] = []

    def _connection(self) -> Connection:
        if self._conn is None:
            import sqlalchemy as sa

            store = self._store
            self._lock = _WriterLock.for_engine(store.engine)
            conn = store.engine.connect()
            try:
                conn.execution_options(loopml_write=True)
                self._trans = conn.begin()
                if store.engine.dialect.name == "postgresql":
                    conn.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:k)"),
                        {"k": _lock_key("records", store.project)},
                    )
            except BaseException:
                conn.close()
                self._release_lock()
                raise
            self._conn = conn
        return self._conn

    def _sqlite_connection(self, lite: _SqliteFile) -> sqlite3.Connection:
        """The stdlib path's connection: the file lock, then ``BEGIN IMMEDIATE``, as the
        SQLAlchemy path takes them (see :func:`_sqlite_begin`)."""
        if self._lite is None:
            self._lock = _WriterLock.for_path(lite.path)
            try:
                conn = lite.checkout()
                try:
                    conn.execute("BEGIN IMMEDIATE")
                except BaseException:
                    lite.checkin(conn)
                    raise
            except BaseException:
                self._release_lock()
                raise
            self._lite = conn
        return self._lite

    def _new_row(
        self, kind: str, name: str, seq: int, version: int, content_hash: str | None, body: str
    ) -> dict[str, Any]:
        store = self._store
        return {
            "project": store.project,
            "id": f"{KIND_PREFIX[kind]}-{seq}",
            "kind": kind,
            "seq": seq,
            "name": name,
            "version": version,
            "content_hash": content_hash,
            "created_at": utcnow(),
            "loopml_version": loopml_version(),
            "git_commit": store._git_commit(),
            "payload": body,
        }

    def put(
        self,
        kind: str,
        name: str,
        payload: Mapping[str, Any],
        *,
        content_hash: str | None = None,
        dedupe: bool = False,
    ) -> Record:
        """Insert a new version of ``kind``/``name`` as part of this transaction.

        With ``dedupe`` and a ``content_hash``, an existing record of the same kind, name and
        hash is returned instead of a new version.
        """
        store = self._store
        _check_put(kind, name, content_hash)
        body = json.dumps(payload, allow_nan=True, default=_json_default, sort_keys=True)
        if store._sqlite is not None:
            with store._errors():
                lite = self._sqlite_connection(store._sqlite)
                if dedupe and content_hash:
                    where, params = _sqlite_filters(
                        store.project, kind=kind, name=name, content_hash=content_hash
                    )
                    same = _sqlite_first(lite, _SELECT_RECORDS + where, params)
                    if same is not None:
                        return _row_to_record(same)
                seq, version = _sqlite_next(lite, store.project, kind, name)
                row = self._new_row(kind, name, seq, version, content_hash, body)
                lite.execute(_INSERT_RECORD, row)
            rec = _row_to_record(row)
            self.records.append(rec)
            return rec
        import sqlalchemy as sa

        from loopml.store._schema import records

        with store._errors():
            conn = self._connection()
            project = records.c.project == store.project
            if dedupe and content_hash:
                found = conn.execute(
                    sa.select(records).where(
                        project,
                        records.c.kind == kind,
                        records.c.name == name,
                        records.c.content_hash == content_hash,
                    )
                ).first()
                if found is not None:
                    return _row_to_record(found)
            same_kind = project & (records.c.kind == kind)
            seq, version = _next(conn, same_kind, same_kind & (records.c.name == name))
            row = self._new_row(kind, name, seq, version, content_hash, body)
            conn.execute(records.insert().values(**row))
        rec = _row_to_record(row)
        self.records.append(rec)
        return rec

    def latest(self, kind: str, name: str | None = None) -> Record | None:
        """The newest record of ``kind`` (and ``name``), read inside this transaction.

        Reading here takes the write lock first, so the answer cannot change before the
        block commits: read the current holder of an alias and write its move in one block,
        and a racing writer serializes behind it and sees the move.
        """
        store = self._store
        if store._sqlite is not None:
            where, params = _sqlite_filters(store.project, kind=kind, name=name)
            with store._errors():
                lite = self._sqlite_connection(store._sqlite)
                found = _sqlite_first(lite, f"{_SELECT_RECORDS}{where} {_NEWEST}", params)
            return _row_to_record(found) if found is not None else None
        import sqlalchemy as sa

        from loopml.store._schema import records

        with store._errors():
            conn = self._connection()
            query = sa.select(records).where(
                records.c.project == store.project, records.c.kind == kind
            )
            if name is not None:
                query = query.where(records.c.name == name)
            row = conn.execute(query.order_by(records.c.seq.desc()).limit(1)).first()
        return _row_to_record(row) if row is not None else None

    def _finish(self, commit: bool) -> None:
        lite, self._lite = self._lite, None
        conn, trans = self._conn, self._trans
        self._conn = self._trans = None
        # one transaction is open: the stdlib driver's connection or SQLAlchemy's
        tx: sqlite3.Connection | sa.engine.RootTransaction | None = lite
        if tx is None:
            if conn is None or trans is None:
                return
            tx = trans
        try:
            if commit:
                with self._store._errors():
                    tx.commit()
            else:
                tx.rollback()
        finally:
            if lite is not None:
                assert self._store._sqlite is not None
                self._store._sqlite.checkin(lite)
            elif conn is not None:
                conn.close()
            self._release_lock()

    def _release_lock(self) -> None:
        lock, self._lock = self._lock, None
        if lock is not None:
            lock.release()


class _WriterLock:
    """An OS file lock beside a SQLite store, taken before ``BEGIN IMMEDIATE``.

    SQLite's own busy handler polls with sleeps of up to 100 ms, so under four writers most
    of the time went to sleeping while the lock was free; a blocked ``flock`` wakes as soon as
    the holder releases it (or dies: the kernel drops the lock of a killed process). Where
    ``fcntl`` does not exist (Windows) ``BEGIN IMMEDIATE`` alone serializes the writers.
    """

    def __init__(self, fd: int) -> None:
        self._fd = fd

    @classmethod
    def for_engine(cls, engine: Engine) -> _WriterLock | None:
        if engine.dialect.name != "sqlite":
            return None
        db = _sqlite_path(str(engine.url))
        return None if db is None else cls.for_path(db)

    @classmethod
    def for_path(cls, db: Path) -> _WriterLock | None:
        """The lock beside the SQLite file ``db``."""
        try:
            import fcntl
        except ImportError:  # pragma: no cover - Windows
            return None
        try:
            fd = os.open(f"{db}.lock", os.O_RDWR | os.O_CREAT, 0o644)
        except OSError:
            return None  # a read-only directory: BEGIN IMMEDIATE still serializes
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        return cls(fd)

    def release(self) -> None:
        os.close(self._fd)  # closing the descriptor releases the lock


def _check_put(kind: str, name: str, content_hash: str | None) -> None:
    if kind not in KIND_PREFIX:
        raise StoreError(
            f"unknown record kind {kind!r}; expected one of {', '.join(KIND_PREFIX)}",
            where="kind",
        )
    if not isinstance(name, str) or not name:
        raise InputError(f"record name {name!r} is empty", hint="give it a name", where="name")
    if len(name) > NAME_MAX:
        raise InputError(
            f"the {kind} name is {len(name)} characters long ({name[:40]!r}...); the store "
            f"keeps names of at most {NAME_MAX} characters",
            hint=f"choose a shorter name (at most {NAME_MAX} characters)",
            where="name",
        )
    if "\x00" in name:
        raise InputError(
            f"the {kind} name {name!r} contains a NUL character",
            hint="remove the control character from the name",
            where="name",
        )
    if content_hash is not None and (not isinstance(content_hash, str) or len(content_hash) > 64):
        raise StoreError(
            f"content_hash {content_hash!r} is not a hash of at most 64 characters",
            where="content_hash",
        )


class Store:
    """Metadata and artifacts of one project. Open with :meth:`Store.open`."""

    def __init__(
        self,
        engine: Engine | None,
        artifacts: ArtifactStore,
        project_dir: Path | None,
        *,
        project: str,
        url: str | None = None,
    ) -> None:
        """``engine``: an SQLAlchemy engine, or None with ``url``: then a plain SQLite file
        is served by the stdlib driver and the engine is made when first needed."""
        if engine is None and url is None:
            raise StoreError("Store needs an engine or a url")
        self._engine = engine
        self.url = str(engine.url) if engine is not None else str(url)
        file = _plain_sqlite_file(self.url) if engine is None else None
        self._sqlite = _SqliteFile(file) if file is not None else None
        self._engine_lock = threading.Lock()
        self.artifacts = artifacts
        self.project_dir = project_dir
        self.project = _check_key(project, "project")
        self._commit: str | bool | None = False  # False: not looked up yet
        self._local = threading.local()

    @property
    def engine(self) -> Engine:
        """The SQLAlchemy engine of the store (made on first use)."""
        with self._engine_lock:
            if self._engine is None:
                self._engine = _make_engine(self.url)
            return self._engine

    # ------------------------------------------------------------------ opening
    @classmethod
    def open(
        cls,
        project_dir: str | Path | None = None,
        *,
        url: str | None = None,
        artifacts_url: str | None = None,
        create: bool = True,
        project: str | None = None,
    ) -> Store:
        """Open (and migrate) the store of ``project_dir``.

        ``url`` (or ``LOOPML_STORE_URL``) selects the metadata database; ``artifacts_url`` (or
        ``LOOPML_ARTIFACTS_URL``) the artifact location. The defaults live in ``.loopml/``.
        Records are scoped by ``project``, the key in ``.loopml/project_id`` of
        ``project_dir`` (written at the first open); without a directory pass it explicitly.
        """
        pdir = Path(project_dir).resolve() if project_dir is not None else None
        if url is None:
            if pdir is None:
                raise StoreError("Store.open needs a project directory or a url")
            url = store_url_for(pdir)
        if project is not None:
            key = _check_key(project, "project")
        elif pdir is not None:
            if not create and not (pdir / STORE_DIR).is_dir():
                raise StoreError(f"no store at {pdir / STORE_DIR}", hint="run `loopml init` first")
            key = project_key_for(pdir)
        else:
            raise StoreError(
                "Store.open(url=...) without a project directory needs the project's key",
                hint="pass project='...' (the key in the project's .loopml/project_id), so that "
                "records of different projects in one database never mix",
            )
        art = artifacts_url or os.environ.get("LOOPML_ARTIFACTS_URL")
        if art is None:
            if pdir is None:
                raise StoreError("Store.open needs a project directory or an artifacts_url")
            art = str(pdir / STORE_DIR / "artifacts")
        db_path = _sqlite_path(url)
        if db_path is not None:
            if db_path.exists():
                _check_sqlite_file(db_path)
            else:
                if not create:
                    raise StoreError(f"no store at {db_path}", hint="run `loopml init` first")
                _create_sqlite(db_path, key)
        store = cls(
            None if _plain_sqlite_file(url) is not None else _make_engine(url),
            ArtifactStore(art),
            pdir,
            project=key,
            url=url,
        )
        try:
            store.migrate()
        except BaseException:
            store.close()
            raise
        return store

    def _where(self) -> str:
        if self._sqlite is not None:
            return str(self._sqlite.path)
        return _where(self.engine)

    @contextmanager
    def _errors(self) -> Iterator[None]:
        """Database errors (of either driver) become a StoreError naming the store and the
        fix."""
        try:
            yield
        except sqlite3.Error as exc:
            raise _store_error(
                str(exc).strip() or type(exc).__name__,
                self._where(),
                sqlite=True,
                operational=isinstance(exc, sqlite3.OperationalError),
            ) from None
        except Exception as exc:
            sa = sys.modules.get("sqlalchemy")  # not imported: no SQLAlchemy error possible
            if sa is not None and isinstance(exc, sa.exc.DBAPIError):
                raise _db_error(self.engine, exc) from None
            raise

    def migrate(self) -> None:
        """Bring the schema to the newest Alembic revision (no-op when current)."""
        if self._sqlite is not None and _sqlite_revision(self._sqlite) == HEAD_REVISION:
            return  # current, read with the stdlib driver: no SQLAlchemy, no Alembic
        _migrate(self.engine, self.project)

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
        if self._sqlite is not None:
            self._sqlite.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writing
    def _git_commit(self) -> str | None:
        if self._commit is False:
            self._commit = git_commit(self.project_dir) if self.project_dir else None
        return self._commit if isinstance(self._commit, str) else None

    @contextmanager
    def transaction(self) -> Iterator[Transaction]:
        """A block whose puts commit together or not at all::

            with store.transaction() as tx:
                model = tx.put("model", name, payload, content_hash=sha)
                tx.put("evaluation", name, {..., "model": model.ref})

        An exception (Ctrl-C included) or a crash inside the block stores none of them.
        :meth:`put` called inside the block (in the same thread) joins it; a nested block
        joins the outer one. Write artifacts before the puts that refer to them.
        """
        outer: Transaction | None = getattr(self._local, "tx", None)
        if outer is not None:
            yield outer
            return
        tx = Transaction(self)
        self._local.tx = tx
        try:
            yield tx
        except BaseException:
            self._local.tx = None
            tx._finish(commit=False)
            raise
        self._local.tx = None
        tx._finish(commit=True)

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
        with self.transaction() as tx:
            return tx.put(kind, name, payload, content_hash=content_hash, dedupe=dedupe)

    # ------------------------------------------------------------------ reading
    def _rows(self, query: sa.Select[Any]) -> builtins.list[Any]:
        with self._errors(), self.engine.connect() as conn:
            return builtins.list(conn.execute(query).all())

    def _sqlite_rows(self, sql: str, params: Mapping[str, Any]) -> builtins.list[dict[str, Any]]:
        assert self._sqlite is not None
        with self._errors():
            return self._sqlite.rows(sql, params)

    def get(self, ref: str, kind: str | None = None) -> Record:
        """A record by id (``eval-3``), by ``name@version`` or by ``name`` (newest version)."""
        if self._sqlite is not None:
            return self._sqlite_get(ref, kind)
        import sqlalchemy as sa

        from loopml.store._schema import records

        query = sa.select(records).where(records.c.project == self.project)
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
            rows = self._rows(query.where(records.c.id == ref))
            if rows:
                return _row_to_record(rows[0])
            query = query.where(records.c.name == ref).order_by(records.c.version.desc())
        rows = self._rows(query.limit(1))
        if not rows:
            raise self._not_found(ref, kind)
        return _row_to_record(rows[0])

    def _sqlite_get(self, ref: str, kind: str | None) -> Record:
        """:meth:`get` through the stdlib driver: the same statements."""
        ref = ref.strip()
        if "@" in ref:
            name, _, ver = ref.rpartition("@")
            if not ver.isdigit():
                raise NotFoundError(
                    f"{ref!r} is not a valid reference: the version after @ must be a number",
                    hint="write name@version, e.g. train@2",
                )
            where, params = _sqlite_filters(self.project, kind=kind, name=name, version=int(ver))
            rows = self._sqlite_rows(f"{_SELECT_RECORDS}{where} LIMIT 1", params)
        else:
            where, params = _sqlite_filters(self.project, kind=kind, id=ref)
            rows = self._sqlite_rows(_SELECT_RECORDS + where, params)
            if rows:
                return _row_to_record(rows[0])
            where, params = _sqlite_filters(self.project, kind=kind, name=ref)
            rows = self._sqlite_rows(
                f"{_SELECT_RECORDS}{where} ORDER BY version DESC LIMIT 1", params
            )
        if not rows:
            raise self._not_found(ref, kind)
        return _row_to_record(rows[0])

    def _not_found(self, ref: str, kind: str | None) -> NotFoundError:
        what = kind or "record"
        known = [r.id if kind != "dataset" else r.ref for r in self.list(kind)][-8:]
        return NotFoundError(
            f"no {what} {ref!r} in the store",
            hint=(f"known: {', '.join(known)}" if known else f"no {what} is stored yet"),
        )

    def latest(self, kind: str, name: str | None = None) -> Record | None:
        if self._sqlite is not None:
            where, params = _sqlite_filters(self.project, kind=kind, name=name)
            found = self._sqlite_rows(f"{_SELECT_RECORDS}{where} {_NEWEST}", params)
            return _row_to_record(found[0]) if found else None
        import sqlalchemy as sa

        from loopml.store._schema import records

        query = sa.select(records).where(records.c.project == self.project, records.c.kind == kind)
        if name is not None:
            query = query.where(records.c.name == name)
        rows = self._rows(query.order_by(records.c.seq.desc()).limit(1))
        return _row_to_record(rows[0]) if rows else None

    def list(self, kind: str | None = None, name: str | None = None) -> builtins.list[Record]:
        if self._sqlite is not None:
            where, params = _sqlite_filters(self.project, kind=kind, name=name)
            found = self._sqlite_rows(f"{_SELECT_RECORDS}{where} ORDER BY kind, seq", params)
            return [_row_to_record(r) for r in found]
        import sqlalchemy as sa

        from loopml.store._schema import records

        query = sa.select(records).where(records.c.project == self.project)
        if kind is not None:
            query = query.where(records.c.kind == kind)
        if name is not None:
            query = query.where(records.c.name == name)
        rows = self._rows(query.order_by(records.c.kind, records.c.seq))
        return [_row_to_record(r) for r in rows]

    def iter_all(self) -> Iterator[Record]:
        yield from self.list()

    def projects(self) -> builtins.list[str]:
        """The keys of every project with records in this database."""
        if self._sqlite is not None:
            found = self._sqlite_rows("SELECT DISTINCT project FROM records ORDER BY project", {})
            return [r["project"] for r in found]
        import sqlalchemy as sa

        from loopml.store._schema import records

        query = sa.select(records.c.project).distinct().order_by(records.c.project)
        return [r[0] for r in self._rows(query)]

    # ------------------------------------------------------------------ maintenance
    def verify(self) -> StoreCheck:
        """Verify every record of this project and every artifact it refers to; list
        temporary files and artifacts no record (of any project) refers to."""
        from loopml.store._maintenance import verify_store

        return verify_store(self)

    def check(self) -> builtins.list[str]:
        """Problems found: unreadable payloads, missing or corrupted artifacts (see
        :meth:`verify` for the full result)."""
        return [p.describe() for p in self.verify().problems]

    def gc(self, grace: float | str = "24h", *, dry_run: bool = False) -> GcResult:
        """Remove temporary files and unreferenced artifacts older than ``grace`` (seconds,
        or a duration such as ``24h``, ``30m``, ``7d``)."""
        from loopml.store._maintenance import gc_store

        return gc_store(self, grace=grace, dry_run=dry_run)


def _where(engine: Engine) -> str:
    path = _sqlite_path(str(engine.url))
    return str(path) if path is not None else engine.url.render_as_string()


@contextmanager
def _db_errors(engine: Engine) -> Iterator[None]:
    """Database errors become a StoreError naming the store and the fix."""
    import sqlalchemy as sa

    try:
        yield
    except sa.exc.DBAPIError as exc:
        raise _db_error(engine, exc) from None


def _db_error(engine: Engine, exc: sa.exc.DBAPIError) -> StoreError:
    import sqlalchemy as sa

    return _store_error(
        str(exc.orig).strip() or type(exc.orig).__name__,
        _where(engine),
        sqlite=engine.dialect.name == "sqlite",
        operational=isinstance(exc, sa.exc.OperationalError),
    )


def _store_error(text: str, where: str, *, sqlite: bool, operational: bool) -> StoreError:
    """The StoreError of a database error's ``text`` (either driver)."""
    low = text.lower()
    if "locked" in low or "busy" in low:
        return StoreError(
            f"the store is busy: {text}",
            hint="another loopml process held the write lock too long; retry when it ends",
            where=where,
        )
    if sqlite and ("malformed" in low or "not a database" in low or "corrupt" in low):
        return StoreError(
            f"the store database is damaged: {text}",
            hint="restore it from a backup, or move it away to start an empty store",
            where=where,
        )
    if operational:
        return StoreError(
            f"cannot use the metadata store: {text}",
            hint="check LOOPML_STORE_URL, that the server runs and that you may connect",
            where=where,
        )
    return StoreError(
        f"the metadata store refused the operation: {text}",
        hint="run `loopml store check`; if it persists, report it with `loopml --debug`",
        where=where,
    )


#: the newest migration in migrations/versions (tests/store check it is Alembic's head)
HEAD_REVISION = "0002"


def _current_revision(engine: Engine) -> str | None:
    """The schema revision Alembic recorded, read without Alembic (None when unknown)."""
    import sqlalchemy as sa

    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).fetchall()
    except sa.exc.DBAPIError:
        return None
    return str(rows[0][0]) if len(rows) == 1 else None


def _sqlite_revision(lite: _SqliteFile) -> str | None:
    """:func:`_current_revision` through the stdlib driver (None when unknown)."""
    try:
        rows = lite.rows("SELECT version_num FROM alembic_version", {})
    except sqlite3.Error:
        return None
    return str(rows[0]["version_num"]) if len(rows) == 1 else None


def _migrate(engine: Engine, project: str) -> None:
    """Bring the schema to the newest Alembic revision (no-op when current).

    Concurrent openers are serialized: SQLite by ``BEGIN IMMEDIATE``, PostgreSQL by an
    advisory lock; whoever comes second finds the schema current.
    """
    import sqlalchemy as sa

    if _current_revision(engine) == HEAD_REVISION:
        return  # current: no need to import Alembic (about 0.1 s on every command)
    from alembic import command
    from alembic.config import Config
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.util import CommandError

    cfg = Config()
    cfg.set_main_option("script_location", str(Path(__file__).parent / "migrations"))
    script = ScriptDirectory.from_config(cfg)
    head = script.get_current_head()
    with _db_errors(engine):
        with engine.connect() as conn:
            current = MigrationContext.configure(conn).get_current_revision()
        if current == head:
            return
        with engine.connect() as conn:
            conn.execution_options(loopml_write=True)
            with conn.begin():
                if engine.dialect.name == "postgresql":
                    conn.execute(
                        sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _lock_key("migrate")}
                    )
                current = MigrationContext.configure(conn).get_current_revision()
                if current == head:
                    return
                if current is not None:
                    try:
                        script.get_revision(current)
                    except CommandError:
                        raise StoreError(
                            f"the store is at schema revision {current!r}, which this loopml "
                            f"({loopml_version()}) does not know: a newer loopml wrote it",
                            hint="upgrade loopml (pip install -U loopml)",
                            where=_where(engine),
                        ) from None
                cfg.attributes["connection"] = conn
                cfg.attributes["project"] = project
                command.upgrade(cfg, "head")


def _create_sqlite(db_path: Path, project: str) -> None:
    """Build a new SQLite store under a temporary name and link it into place.

    The store file therefore never exists half-made (a 0-byte ``loopml.db`` always means a
    damaged store), and concurrent first opens agree: the first link wins, the rest reuse it.
    """
    try:
        db_path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(
            f"cannot create the store directory: {exc.strerror or exc}",
            hint="check that the project directory is writable",
            where=str(db_path.parent),
        ) from None
    tmp = db_path.with_name(f".{db_path.name}.{uuid.uuid4().hex}.new")
    try:
        engine = _make_engine(f"sqlite:///{tmp}")
        try:
            _migrate(engine, project)
            with engine.connect() as conn:
                conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
        finally:
            engine.dispose()
        try:
            os.link(tmp, db_path)
        except FileExistsError:
            pass  # a concurrent opener created it first: use theirs
        except OSError:  # a filesystem without hard links
            if not db_path.exists():
                os.replace(tmp, db_path)
    except OSError as exc:
        raise StoreError(
            f"cannot create the store: {exc.strerror or exc}",
            hint="check that the directory is writable and the disk is not full",
            where=str(db_path),
        ) from None
    finally:
        for leftover in (tmp, Path(f"{tmp}-wal"), Path(f"{tmp}-shm")):
            leftover.unlink(missing_ok=True)


def _next(
    conn: Connection, same_kind: sa.ColumnElement[bool], same_name: sa.ColumnElement[bool]
) -> tuple[int, int]:
    """The next sequence number of the kind and version of the name (the write lock is held)."""
    import sqlalchemy as sa

    from loopml.store._schema import records

    seq = sa.select(sa.func.max(records.c.seq)).where(same_kind).scalar_subquery()
    version = sa.select(sa.func.max(records.c.version)).where(same_name).scalar_subquery()
    row = conn.execute(sa.select(seq, version)).one()
    return int(row[0] or 0) + 1, int(row[1] or 0) + 1


_NEWEST = "ORDER BY seq DESC LIMIT 1"
_INSERT_RECORD = (
    f"INSERT INTO records ({', '.join(RECORD_COLUMNS)}) "
    f"VALUES ({', '.join(':' + c for c in RECORD_COLUMNS)})"
)
_NEXT_NUMBERS = (
    "SELECT (SELECT max(seq) FROM records WHERE project = :project AND kind = :kind), "
    "(SELECT max(version) FROM records WHERE project = :project AND kind = :kind "
    "AND name = :name)"
)


def _sqlite_first(
    conn: sqlite3.Connection, sql: str, params: Mapping[str, Any]
) -> dict[str, Any] | None:
    cursor = conn.execute(sql, params)
    row = cursor.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cursor.description], row, strict=True))


def _sqlite_next(conn: sqlite3.Connection, project: str, kind: str, name: str) -> tuple[int, int]:
    """:func:`_next` through the stdlib driver (the write lock is held)."""
    row = conn.execute(_NEXT_NUMBERS, {"project": project, "kind": kind, "name": name}).fetchone()
    return int(row[0] or 0) + 1, int(row[1] or 0) + 1


def _row_to_record(row: Any) -> Record:
    m = row._mapping if hasattr(row, "_mapping") else row
    try:
        payload = json.loads(m["payload"])
    except (TypeError, ValueError) as exc:
        raise StoreError(
            f"record {m['id']} ({m['name']}@{m['version']}) has an unreadable payload: {exc}",
            hint="run `loopml store check`; restore the store from a backup",
            where=m["id"],
        ) from None
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
        payload=payload,
        project=m.get("project", "") or "",
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
