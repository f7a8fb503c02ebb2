"""The prediction log and the feedback table: append-only Parquet segments.

Layout (under the project's ``.loopml/``)::

    log/predictions/date=YYYY-MM-DD/predictions-<utc time>-<pid>-<uuid>.parquet
    log/feedback/date=YYYY-MM-DD/feedback-<utc time>-<pid>-<uuid>.parquet

**Writing.** A request hands its rows to :meth:`PredictionLog.put` before it is answered;
one writer thread per process collects them and writes a segment when ``flush_rows`` rows
(default 1,000) are waiting or the oldest has waited ``flush_seconds`` (default 0.2 s), and
on :meth:`PredictionLog.close`. A segment is written under a temporary name (``.<name>.tmp``),
fsynced, renamed into place (the commit point) and the directory fsynced; then it is indexed
as a ``log_segment`` record in the store. A reader globbing ``*.parquet`` never sees a
partial file. The shadow model, when there is one, predicts each flush's rows in one call on
the writer thread, so it costs the response nothing and its failure fails no request (the
rows are logged with ``shadow_error``).

**Bounded memory, back-pressure.** At most ``max_queue_rows`` rows (default 10,000) are held
between being acknowledged and being durable; a request that would exceed it waits for the
writer (a slow disk slows clients, it never grows memory). Rows count against the bound
until their segment is renamed, so the bound is also the most a crash can lose.

**The promise.** SIGTERM or Ctrl-C (the server's graceful shutdown) closes the log, which
writes every acknowledged row: zero loss. ``kill -9`` loses at most the rows acknowledged
and not yet renamed into a segment: never more than ``max_queue_rows``, and at a disk that
keeps up only the rows of the last ``flush_seconds`` plus one segment write. No segment is
ever corrupt (temporary name + rename). A segment renamed but not yet indexed when the
process died is indexed by the next writer (:func:`index_segments`); readers glob the files,
so they see it either way.

**Feedback** (labels and an optional KPI value keyed by ``request_id``) goes to its own
segments the same way. Repeats are idempotent and the *last write wins*: the newest
``ts`` (receipt time) per request id, ties broken by the later segment and row, so a
corrected label replaces the earlier one.

**Reading.** :func:`read_log`, :func:`read_feedback` and :func:`read_joined` return Arrow
tables; :func:`log_views` registers the three as DuckDB views (``predictions``,
``feedback``, ``predictions_feedback``) over the segment files, readable while servers write.
Columns of ``predictions``: ``request_id``, ``ts`` (UTC timestamp), ``model``, ``version``,
``variant``, ``latency_ms``, the id column, the inputs as their own columns (an input named
like a log column is logged as ``input_<name>``), ``prediction``, ``score`` (binary) or
``proba_<class>`` (multiclass), ``shadow_prediction``, ``shadow_score``, ``shadow_version``,
``shadow_error``. Of ``feedback``: ``request_id``, ``ts``, ``label``, ``kpi``.

With several server worker processes each has its own writer and writes its own segments
(named by pid and a uuid); the readers union them.
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from loopml.errors import StoreError

if TYPE_CHECKING:
    import pyarrow as pa

    from loopml.engine import Backend
    from loopml.project import Project
    from loopml.serving._predict import LoadedModel

__all__ = [
    "FLUSH_ROWS",
    "FLUSH_SECONDS",
    "MAX_QUEUE_ROWS",
    "LogBatch",
    "LogStats",
    "PredictionLog",
    "index_segments",
    "log_dir",
    "log_views",
    "read_feedback",
    "read_joined",
    "read_log",
    "remove_stale_temporaries",
    "segment_files",
]

FLUSH_ROWS = 1_000
FLUSH_SECONDS = 0.2
MAX_QUEUE_ROWS = 10_000
TABLES = ("predictions", "feedback")
Table = Literal["predictions", "feedback"]
_log = logging.getLogger("loopml.serving")


def _project_dir(project: Project | str | Path) -> Path:
    return Path(project) if isinstance(project, str | Path) else project.dir


def log_dir(project: Project | str | Path, table: Table = "predictions") -> Path:
    """The directory of one log table's segments."""
    return _project_dir(project) / ".loopml" / "log" / table


def segment_files(project: Project | str | Path, table: Table = "predictions") -> list[Path]:
    """Every committed segment of ``table`` (renamed into place), oldest name first."""
    root = log_dir(project, table)
    if not root.exists():
        return []
    return sorted(root.glob("date=*/*.parquet"), key=lambda p: p.name)


@dataclass
class LogBatch:
    """Rows of one request, as columns (name -> one value per row)."""

    table: Table
    columns: dict[str, list[Any]]
    n: int
    shadow: LoadedModel | None = None


@dataclass
class LogStats:
    """What a log wrote (read by the server's metrics)."""

    rows_written: dict[str, int] = field(default_factory=lambda: dict.fromkeys(TABLES, 0))
    segments_written: int = 0
    shadow_rows: int = 0
    shadow_errors: int = 0
    write_errors: int = 0
    rows_dropped: int = 0  # only rows Arrow could not hold even as text (never expected)
    index_errors: int = 0


_FIXED_TYPES: dict[str, str] = {
    "request_id": "string",
    "model": "string",
    "version": "int64",
    "variant": "string",
    "latency_ms": "double",
    "score": "double",
    "shadow_score": "double",
    "shadow_version": "string",
    "shadow_error": "string",
    "kpi": "double",
}


class PredictionLog:
    """One process's writer of prediction and feedback segments (see the module doc)."""

    def __init__(
        self,
        project: Project | str | Path,
        *,
        flush_rows: int = FLUSH_ROWS,
        flush_seconds: float = FLUSH_SECONDS,
        max_queue_rows: int = MAX_QUEUE_ROWS,
        index: bool = True,
        on_written: Callable[[str, int], None] | None = None,
        on_shadow_error: Callable[[int], None] | None = None,
    ) -> None:
        if flush_rows < 1 or flush_seconds <= 0 or max_queue_rows < flush_rows:
            raise ValueError(
                "flush_rows >= 1, flush_seconds > 0 and max_queue_rows >= flush_rows expected"
            )
        self.dir = _project_dir(project)
        self.flush_rows = flush_rows
        self.flush_seconds = flush_seconds
        self.max_queue_rows = max_queue_rows
        self.index = index
        self.stats = LogStats()
        self._on_written = on_written
        self._on_shadow_error = on_shadow_error
        self._cond = threading.Condition()
        self._items: list[LogBatch] = []
        self._first_at = 0.0
        self._queued_rows = 0  # rows in _items
        self._held = 0  # rows acknowledged and not yet durable (queued + being written)
        self._closing = False
        self._store: Any = None
        self._thread = threading.Thread(target=self._run, name="loopml-log-writer", daemon=True)
        self._thread.start()
        if index:
            threading.Thread(
                target=self._index_orphans, name="loopml-log-index", daemon=True
            ).start()

    # ------------------------------------------------------------------ producers
    @property
    def queue_rows(self) -> int:
        """Rows acknowledged and not yet in a renamed segment."""
        return self._held

    def try_put(self, batch: LogBatch) -> bool:
        """Queue ``batch`` if there is room now (never blocks); False when full."""
        with self._cond:
            if self._closing:
                raise StoreError("the prediction log is closed", where="prediction log")
            if self._held and self._held + batch.n > self.max_queue_rows:
                return False
            self._add(batch)
            return True

    def put(self, batch: LogBatch, timeout: float | None = None) -> None:
        """Queue ``batch``, waiting while the log holds ``max_queue_rows`` (back-pressure)."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._cond:
            while self._held and self._held + batch.n > self.max_queue_rows:
                if self._closing:
                    break
                left = None if deadline is None else deadline - time.monotonic()
                if left is not None and left <= 0:
                    raise StoreError(
                        f"the prediction log stayed full ({self._held} rows) for {timeout} s",
                        hint="the disk is too slow for the traffic; check .loopml/log",
                        where="prediction log",
                    )
                self._cond.wait(left)
            if self._closing:
                raise StoreError("the prediction log is closed", where="prediction log")
            self._add(batch)

    def _add(self, batch: LogBatch) -> None:
        if not self._items:
            self._first_at = time.monotonic()
        self._items.append(batch)
        self._held += batch.n
        self._queued_rows += batch.n
        if len(self._items) == 1 or self._queued_rows >= self.flush_rows:
            self._cond.notify_all()

    def close(self, timeout: float | None = 60.0) -> None:
        """Write every queued row, then stop the writer (idempotent)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise StoreError(
                f"the prediction log could not write {self._held} row(s) within {timeout} s",
                hint="check that .loopml/log is writable and the disk is not full",
                where=str(log_dir(self.dir)),
            )
        if self._store is not None:
            self._store.close()
            self._store = None

    def __enter__(self) -> PredictionLog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ the writer
    def _run(self) -> None:
        while True:
            with self._cond:
                while not self._closing:
                    if self._items:
                        waited = time.monotonic() - self._first_at
                        if self._queued_rows >= self.flush_rows or waited >= self.flush_seconds:
                            break
                        self._cond.wait(self.flush_seconds - waited)
                    else:
                        self._cond.wait()
                items, self._items = self._items, []
                self._queued_rows = 0
                if not items and self._closing:
                    return
            backoff = 0.05
            sanitize = False
            while True:
                try:
                    self._write(items, sanitize=sanitize)
                    break
                except OSError as exc:  # a full disk, a permission error: keep the rows
                    self.stats.write_errors += 1
                    _log.error("prediction log: cannot write a segment (%s); retrying", exc)
                    time.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                except Exception as exc:  # values Arrow cannot hold: never block the log
                    self.stats.write_errors += 1
                    if sanitize:
                        n = sum(i.n for i in items)
                        self.stats.rows_dropped += n
                        _log.error("prediction log: dropped %d unwritable row(s): %s", n, exc)
                        break
                    _log.error("prediction log: %s; writing the values as text", exc)
                    sanitize = True
            with self._cond:
                self._held -= sum(i.n for i in items)
                self._cond.notify_all()

    def _write(self, items: Sequence[LogBatch], *, sanitize: bool = False) -> None:
        groups: dict[tuple[str, str], list[LogBatch]] = {}
        for item in items:
            ts = item.columns.get("ts") or [time.time()]
            day = datetime.fromtimestamp(float(ts[0]), UTC).strftime("%Y-%m-%d")
            groups.setdefault((item.table, day), []).append(item)
        for (table, day), batch in groups.items():
            if table == "predictions":
                self._shadow(batch)
            arrow = _build_table(batch, sanitize=sanitize)
            path = self._commit(table, day, arrow)
            n = arrow.num_rows
            self.stats.rows_written[table] = self.stats.rows_written.get(table, 0) + n
            self.stats.segments_written += 1
            if self._on_written is not None:
                self._on_written(table, n)
            if self.index:
                self._index(table, day, path, arrow)

    def _shadow(self, batch: Sequence[LogBatch]) -> None:
        by_model: dict[int, list[LogBatch]] = {}
        for item in batch:
            if item.shadow is not None:
                by_model.setdefault(id(item.shadow), []).append(item)
        for group in by_model.values():
            shadow = group[0].shadow
            assert shadow is not None
            n = sum(i.n for i in group)
            try:
                import pandas as pd

                from loopml.serving._predict import input_column

                features = shadow.schema.features
                missing = [f for f in features if input_column(f) not in group[0].columns]
                if missing:
                    raise KeyError(f"the request did not hold {missing[:5]}")
                frame = pd.DataFrame(
                    {f: [v for i in group for v in i.columns[input_column(f)]] for f in features}
                )
                out = shadow.outputs(frame)
                preds: list[Any] = out.prediction
                if out.score is not None:
                    scores: list[Any] = out.score
                elif out.proba is not None:
                    matrix = list(out.proba.values())
                    scores = [max(col[k] for col in matrix) for k in range(n)]
                else:
                    scores = [None] * n
                error: str | None = None
            except Exception as exc:  # the shadow never fails a request: log and count
                preds, scores, error = [None] * n, [None] * n, f"{type(exc).__name__}: {exc}"[:500]
                self.stats.shadow_errors += n
                if self._on_shadow_error is not None:
                    self._on_shadow_error(n)
            self.stats.shadow_rows += n
            k = 0
            for item in group:
                item.columns["shadow_prediction"] = preds[k : k + item.n]
                item.columns["shadow_score"] = scores[k : k + item.n]
                item.columns["shadow_version"] = [shadow.ref] * item.n
                item.columns["shadow_error"] = [error] * item.n
                k += item.n

    def _commit(self, table: str, day: str, arrow: pa.Table) -> Path:
        import pyarrow.parquet as pq

        folder = log_dir(self.dir, table) / f"date={day}"  # type: ignore[arg-type]
        folder.mkdir(parents=True, exist_ok=True)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        name = f"{table}-{stamp}-{os.getpid()}-{uuid.uuid4().hex[:8]}.parquet"
        final = folder / name
        tmp = folder / f".{name}.tmp"
        try:
            pq.write_table(arrow, tmp, compression="zstd")
            fd = os.open(tmp, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)
        _fsync_dir(folder)
        return final

    def _index(self, table: str, day: str, path: Path, arrow: pa.Table) -> None:
        try:
            if self._store is None:
                from loopml.store import Store

                self._store = Store.open(self.dir)
            self._store.put(
                "log_segment",
                table,
                _segment_payload(self.dir, table, day, path, arrow),
                content_hash=_sha256(path),
            )
        except Exception as exc:  # the file is committed; the next start indexes it
            self.stats.index_errors += 1
            _log.warning("prediction log: segment %s not indexed yet (%s)", path.name, exc)

    def _index_orphans(self) -> None:
        try:
            remove_stale_temporaries(self.dir)
            index_segments(self.dir)
        except Exception as exc:
            _log.warning("prediction log: could not index earlier segments (%s)", exc)


def remove_stale_temporaries(project: Project | str | Path) -> int:
    """Delete the temporary files of segment writes whose process is gone (a ``kill -9``
    mid-write); a live process's temporaries are left alone. Returns how many."""
    removed = 0
    for table in TABLES:
        root = log_dir(project, table)  # type: ignore[arg-type]
        for tmp in root.glob("date=*/.*.tmp") if root.exists() else []:
            parts = tmp.name.split("-")
            try:
                pid = int(parts[-2])
            except (IndexError, ValueError):
                continue
            if pid != os.getpid() and not _alive(pid):
                tmp.unlink(missing_ok=True)
                removed += 1
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _segment_payload(
    root: Path, table: str, day: str, path: Path, arrow: pa.Table | None
) -> dict[str, Any]:
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    if arrow is None:
        arrow = pq.read_table(path)
    ts = arrow["ts"] if "ts" in arrow.column_names else None
    bounds = pc.min_max(ts) if ts is not None and arrow.num_rows else None
    return {
        "table": table,
        "path": str(path.relative_to(root)),
        "date": day,
        "rows": arrow.num_rows,
        "bytes": path.stat().st_size,
        "ts_min": bounds["min"].as_py().isoformat() if bounds else None,
        "ts_max": bounds["max"].as_py().isoformat() if bounds else None,
        "columns": arrow.column_names,
        "pid": int(path.stem.split("-")[-2]) if path.stem.count("-") >= 3 else None,
    }


def index_segments(project: Project | str | Path) -> int:
    """Index every committed segment that has no ``log_segment`` record yet (a process
    killed between the rename and the record); returns how many were indexed."""
    from loopml.store import Store

    root = _project_dir(project)
    files = {t: segment_files(root, t) for t in TABLES}  # type: ignore[arg-type]
    if not any(files.values()):
        return 0
    store = Store.open(root)
    try:
        known = {str(r.payload.get("path")) for r in store.list("log_segment")}
        added = 0
        for table, paths in files.items():
            for path in paths:
                rel = str(path.relative_to(root))
                if rel in known:
                    continue
                day = path.parent.name.removeprefix("date=")
                store.put(
                    "log_segment",
                    table,
                    _segment_payload(root, table, day, path, None),
                    content_hash=_sha256(path),
                )
                added += 1
        return added
    finally:
        store.close()


def _text(v: Any) -> str | None:
    if v is None:
        return None
    return str(v).encode("utf-8", "replace").decode("utf-8")


def _build_table(items: Sequence[LogBatch], *, sanitize: bool = False) -> pa.Table:
    import numpy as np
    import pyarrow as pa

    names: dict[str, None] = {}
    for item in items:
        names.update(dict.fromkeys(item.columns))
    arrays: dict[str, pa.Array] = {}
    for name in names:
        values: list[Any] = []
        for item in items:
            col = item.columns.get(name)
            values.extend(col if col is not None else [None] * item.n)
        if name == "ts":
            micros = (np.asarray(values, dtype=np.float64) * 1e6).astype(np.int64)
            arrays[name] = pa.array(micros, type=pa.int64()).cast(pa.timestamp("us", tz="UTC"))
            continue
        fixed = _FIXED_TYPES.get(name)
        if sanitize and fixed in (None, "string"):
            arrays[name] = pa.array([_text(v) for v in values], pa.string())
            continue
        try:
            arrays[name] = pa.array(values, type=fixed) if fixed else pa.array(values)
        except (pa.ArrowInvalid, pa.ArrowTypeError):  # mixed types (a model change): text
            arrays[name] = pa.array([None if v is None else str(v) for v in values], pa.string())
    return pa.table(arrays)


# --------------------------------------------------------------------------- reading


def _sql_list(paths: Sequence[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


_EMPTY = {
    "predictions": (
        "SELECT NULL::VARCHAR AS request_id, NULL::TIMESTAMPTZ AS ts, NULL::VARCHAR AS model, "
        "NULL::BIGINT AS version, NULL::VARCHAR AS variant, NULL::DOUBLE AS latency_ms, "
        "NULL::VARCHAR AS prediction WHERE false"
    ),
    "feedback": (
        "SELECT NULL::VARCHAR AS request_id, NULL::TIMESTAMPTZ AS ts, NULL::VARCHAR AS label, "
        "NULL::DOUBLE AS kpi WHERE false"
    ),
}


def log_views(con: Backend, project: Project | str | Path) -> list[str]:
    """Register ``predictions``, ``feedback`` (deduplicated: the last write per request id
    wins) and ``predictions_feedback`` (predictions left-joined to feedback by
    ``request_id``) as views on the engine backend ``con`` (:func:`loopml.engine.connect`).
    The segment list is read now: call again to see segments written since."""
    preds = segment_files(project, "predictions")
    fb = segment_files(project, "feedback")
    if preds:
        con.execute(
            "CREATE OR REPLACE VIEW predictions AS SELECT * FROM "
            f"read_parquet({_sql_list(preds)}, union_by_name = true, hive_partitioning = false)"
        )
    else:
        con.execute(f"CREATE OR REPLACE VIEW predictions AS {_EMPTY['predictions']}")
    if fb:
        con.execute(
            "CREATE OR REPLACE VIEW feedback AS SELECT request_id, ts, label, kpi FROM "
            f"read_parquet({_sql_list(fb)}, union_by_name = true, hive_partitioning = false, "
            "filename = true, "
            "file_row_number = true) QUALIFY row_number() OVER (PARTITION BY request_id "
            "ORDER BY ts DESC, filename DESC, file_row_number DESC) = 1"
        )
    else:
        con.execute(f"CREATE OR REPLACE VIEW feedback AS {_EMPTY['feedback']}")
    con.execute(
        "CREATE OR REPLACE VIEW predictions_feedback AS SELECT p.*, f.label, f.kpi, "
        "f.ts AS feedback_ts FROM predictions p LEFT JOIN feedback f USING (request_id)"
    )
    return ["predictions", "feedback", "predictions_feedback"]


def _read(project: Project | str | Path, view: str) -> pa.Table:
    from loopml.engine import connect

    with connect() as con:
        log_views(con, project)
        return con.arrow(f"SELECT * FROM {view}")


def read_log(project: Project | str | Path) -> pa.Table:
    """Every logged prediction (all committed segments) as one Arrow table."""
    return _read(project, "predictions")


def read_feedback(project: Project | str | Path) -> pa.Table:
    """The feedback, one row per request id (the last write wins)."""
    return _read(project, "feedback")


def read_joined(project: Project | str | Path) -> pa.Table:
    """Every logged prediction with its feedback (``label``, ``kpi``, ``feedback_ts``;
    null when none arrived yet)."""
    return _read(project, "predictions_feedback")
