"""The engine's seam: a small ``Backend`` protocol that owns every table touch.

Everything in loopml that reads a table (evaluation's input checks and its one aggregation
statement, discovery's encoding, tags, the dataset readers, diffs and validation, the gate's
paired counts) goes through a backend: run a statement, register a table or a file as a
view, read rows back (as tuples, numpy columns or Arrow). DuckDB in process is the default
(:class:`DuckDBBackend`, from :func:`connect`); :class:`SQLBackend` runs the same statements
on PostgreSQL or a warehouse through SQLAlchemy, in one session, and uploads frames and files
as temporary tables. No module outside ``loopml.engine`` imports DuckDB (ruff's banned-api
rule and ``lint-imports`` check it).

Errors of the engine surface as :class:`QueryError` (never a DuckDB exception), with
``conversion`` set when a value could not be converted to a column's type.
"""

from __future__ import annotations

import weakref
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from loopml.errors import InputError, SchemaError
from loopml.slices import quote_identifier as _q

if TYPE_CHECKING:
    import pyarrow as pa

__all__ = [
    "Backend",
    "DuckDBBackend",
    "QueryError",
    "Runner",
    "SQLBackend",
    "as_backend",
    "as_runner",
    "connect",
]


class QueryError(Exception):
    """A statement the engine could not run. ``conversion``: a value did not fit a type."""

    def __init__(self, message: str, *, conversion: bool = False) -> None:
        super().__init__(message)
        self.conversion = conversion


@runtime_checkable
class Runner(Protocol):
    """What the aggregation statement alone needs: run a query, name the grouping function."""

    grouping_function: str

    def run(self, sql: str) -> dict[str, npt.NDArray[Any]]: ...


@runtime_checkable
class Backend(Protocol):
    """What loopml needs of an engine; the SQL it sends is the shared dialect of DuckDB,
    PostgreSQL and Spark SQL (GROUPING SETS, CASE, arithmetic, aggregates)."""

    #: the grouping bitmask function: DuckDB's GROUPING_ID, standard SQL's GROUPING
    grouping_function: str

    def run(self, sql: str) -> dict[str, npt.NDArray[Any]]:
        """Run a query; its result as one numpy array per column."""
        ...

    def quantiles_sql(self, expr: str, qs: Sequence[float]) -> str:
        """An aggregate giving the continuous quantiles ``qs`` of ``expr`` as one list (one
        sort, where one ``percentile_cont`` per quantile sorts once each)."""
        ...

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        """Run a query; its result as tuples."""
        ...

    def named_rows(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        """Run a query; its column names and its rows as tuples."""
        ...

    def execute(self, sql: str) -> None:
        """Run a statement that returns nothing (CREATE VIEW, ...)."""
        ...

    def register(self, obj: Any, view: str, *, what: str = "table") -> str:
        """Make a file path, a pandas/polars frame or an Arrow table readable as ``view``;
        returns a label for messages."""
        ...

    def unregister(self, view: str) -> None: ...

    def columns(self, view: str) -> dict[str, str]:
        """Column name -> type name of a view or table."""
        ...

    def close(self) -> None: ...


class DuckDBBackend:
    """The default backend: DuckDB in process (one connection, closed by :meth:`close`)."""

    grouping_function = "GROUPING_ID"

    def quantiles_sql(self, expr: str, qs: Sequence[float]) -> str:
        return f"quantile_cont({expr}, [{', '.join(repr(float(q)) for q in qs)}])"

    def __init__(self, con: Any | None = None) -> None:
        import duckdb

        self._duckdb = duckdb
        self.con = con if con is not None else duckdb.connect()

    # errors -------------------------------------------------------------------------
    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except self._duckdb.Error as exc:
            raise QueryError(
                str(exc), conversion=isinstance(exc, self._duckdb.ConversionException)
            ) from exc

    # the protocol ---------------------------------------------------------------------
    def run(self, sql: str) -> dict[str, npt.NDArray[Any]]:
        with self._errors():
            rel = self.con.sql(sql)
            cols = rel.columns
            table = rel.fetchnumpy()
        # a column with NULLs comes back masked: the mask is kept (np.asarray would drop it
        # and leave the 0 under it, so a NULL slice key would merge with a real 0)
        return {
            c: table[c] if np.ma.isMaskedArray(table[c]) else np.asarray(table[c]) for c in cols
        }

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        with self._errors():
            cur = self.con.execute(sql, list(params)) if params else self.con.execute(sql)
            return [tuple(r) for r in cur.fetchall()]

    def named_rows(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self._errors():
            cur = self.con.execute(sql)
            rows = [tuple(r) for r in cur.fetchall()]
            return [str(d[0]) for d in cur.description], rows

    def execute(self, sql: str) -> None:
        with self._errors():
            self.con.execute(sql)

    def register(self, obj: Any, view: str, *, what: str = "table") -> str:
        from loopml.engine._sources import register

        return register(self.con, obj, view, what=what)

    def unregister(self, view: str) -> None:
        with self._errors():
            self.con.unregister(view)

    def columns(self, view: str) -> dict[str, str]:
        with self._errors():
            rows = self.con.execute(f'DESCRIBE "{view}"').fetchall()
        return {str(r[0]): str(r[1]) for r in rows}

    def close(self) -> None:
        self.con.close()

    # DuckDB's extras, used by the readers (Arrow out in bounded batches) ----------------
    def arrow(self, sql: str, batch_rows: int = 1_000_000) -> pa.Table:
        """A query's result as an Arrow table (DuckDB's own Arrow types)."""
        with self._errors():
            out: pa.Table = self.con.sql(sql).to_arrow_table(batch_rows)
        return out

    def numpy(self, sql: str) -> dict[str, Any]:
        """DuckDB's own ``fetchnumpy``: masked arrays where a column holds NULLs."""
        with self._errors():
            return dict(self.con.sql(sql).fetchnumpy())

    def df(self, sql: str) -> Any:
        """A query's result as a pandas DataFrame (DuckDB's conversion)."""
        with self._errors():
            return self.con.execute(sql).df()

    def __enter__(self) -> DuckDBBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def connect() -> DuckDBBackend:
    """A new in-process DuckDB backend (use it as a context manager, or close it)."""
    return DuckDBBackend()


def as_runner(con: Any) -> Runner:
    """``con`` as something that runs the aggregation: any :class:`Runner` (a backend) as
    is, a raw DuckDB connection wrapped."""
    if isinstance(con, Runner):
        return con
    return as_backend(con)


def as_backend(con: Any) -> Backend:
    """``con`` as a backend: a backend is returned as is, a raw DuckDB connection wrapped."""
    if isinstance(con, Backend):
        return con
    module = type(con).__module__.split(".")[0]
    if module in ("duckdb", "_duckdb"):
        return DuckDBBackend(con)
    raise InputError(
        f"cannot run the engine on a {type(con).__name__}",
        hint="pass a loopml.engine backend (DuckDBBackend, SQLBackend) or a DuckDB connection",
    )


class SQLBackend:
    """Run the engine's statements on another SQL engine through SQLAlchemy (PostgreSQL, a
    warehouse). The statements are the same as on DuckDB; only the name of the grouping
    bitmask function differs.

    The backend holds one connection for its life (opened on first use, closed by
    :meth:`close` or at the end of a ``with`` block), so temporary tables and views persist
    from one statement to the next. Every statement ends its own transaction: it commits
    when it ran, and rolls back when it failed (a :class:`QueryError`), so one failed
    statement never leaves the connection in an aborted transaction for the next.

    :meth:`register` reads a table already in the database as itself (``register(name,
    name)``), and uploads a pandas or polars frame, an Arrow table or a Parquet, CSV or Arrow
    file as ``CREATE TEMPORARY TABLE "<view>"``. The object is read exactly as
    :class:`DuckDBBackend` reads it (the engine's own source reading, in a scratch DuckDB),
    so NULLs and NaN arrive as DuckDB sees them: a pandas NaN is NULL, an Arrow or polars
    NaN stays a float NaN. Column types map from Arrow: integers to BIGINT, floats to DOUBLE
    PRECISION, booleans to BOOLEAN, strings (and categoricals, and columns of nothing but
    NULLs) to TEXT, timestamps to TIMESTAMP (WITH TIME ZONE when they carry a zone), dates
    to DATE; any other type is a :class:`~loopml.errors.SchemaError` naming the column. Rows
    go in by ``COPY ... FROM STDIN`` when the driver is psycopg 3, else by batched INSERTs.
    Timestamps keep microseconds (PostgreSQL's precision; nanoseconds are truncated).
    :meth:`unregister` drops only a table :meth:`register` uploaded (on PostgreSQL with the
    temporary views built on it). One backend is one database session: two backends on one
    database never see each other's temporary tables. Like a DuckDB connection, it is not
    meant to be shared between threads.
    """

    grouping_function = "GROUPING"

    #: rows per COPY chunk or INSERT batch (and per batch read from the source)
    batch_rows = 65_536

    def quantiles_sql(self, expr: str, qs: Sequence[float]) -> str:
        listed = ", ".join(repr(float(q)) for q in qs)
        return f"percentile_cont(ARRAY[{listed}]) WITHIN GROUP (ORDER BY {expr})"

    def __init__(self, engine: Any) -> None:
        self.engine = engine
        self._conn: Any | None = None
        #: views this backend uploaded as temporary tables (what unregister may drop)
        self._uploaded: set[str] = set()

    # the one connection -----------------------------------------------------------------
    def _connection(self) -> Any:
        if self._conn is None or self._conn.closed:
            self._uploaded.clear()  # a new session: temporary tables of an old one are gone
            self._conn = self.engine.connect()
            # a backend dropped without close() ends its session outright (not back to a
            # pool that may be disposed by then, nor to the next user with its temporaries)
            weakref.finalize(self, _end_session, self._conn)
        return self._conn

    def _driver_errors(self) -> tuple[type[BaseException], ...]:
        """The driver's own errors (raised by its COPY on the raw connection)."""
        dialect = self.engine.dialect
        dbapi = getattr(dialect, "loaded_dbapi", None) or getattr(dialect, "dbapi", None)
        error = getattr(dbapi, "Error", None)
        return (error,) if isinstance(error, type) else ()

    @contextmanager
    def _errors(self) -> Iterator[Any]:
        """The held connection for one statement: committed when the statement ran, rolled
        back when it failed, a driver error raised as :class:`QueryError`."""
        import sqlalchemy as sa

        conn = None
        try:
            conn = self._connection()
            yield conn
            conn.commit()
        except sa.exc.DBAPIError as exc:
            self._rollback(conn)
            raise QueryError(str(exc.orig)) from exc
        except self._driver_errors() as exc:
            self._rollback(conn)
            raise QueryError(str(exc)) from exc
        except BaseException:
            self._rollback(conn)
            raise

    def _rollback(self, conn: Any | None) -> None:
        if conn is None:
            return
        try:
            conn.rollback()
        except Exception:  # the session is gone; the next statement opens a new one
            try:
                conn.close()
            finally:
                self._conn = None

    def _text(self, sql: str) -> Any:
        import sqlalchemy as sa

        return sa.text(sql.replace(":", "\\:"))

    # the protocol ---------------------------------------------------------------------
    def run(self, sql: str) -> dict[str, npt.NDArray[Any]]:
        with self._errors() as conn:
            result = conn.execute(self._text(sql))
            names = list(result.keys())
            rows = result.fetchall()
        out: dict[str, npt.NDArray[Any]] = {}
        for j, name in enumerate(names):
            values = [row[j] for row in rows]
            if any(v is None for v in values):
                out[name] = np.array(values, dtype=object)
            else:
                out[name] = np.array([float(v) if _is_decimal(v) else v for v in values])
        return out

    def rows(self, sql: str, params: Sequence[Any] | None = None) -> list[tuple[Any, ...]]:
        if params:
            raise QueryError("SQLBackend.rows takes no positional parameters")
        with self._errors() as conn:
            return [tuple(r) for r in conn.execute(self._text(sql)).fetchall()]

    def named_rows(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        with self._errors() as conn:
            result = conn.execute(self._text(sql))
            names = [str(k) for k in result.keys()]  # noqa: SIM118 - a Result, not a dict
            return names, [tuple(r) for r in result.fetchall()]

    def execute(self, sql: str) -> None:
        with self._errors() as conn:
            conn.execute(self._text(sql))

    def register(self, obj: Any, view: str, *, what: str = "table") -> str:
        """``register(name, name)``: the table ``name`` already in the database. Anything
        else (a frame, an Arrow table, a file path) is uploaded as the temporary table
        ``view``, replacing one this backend uploaded under that name before."""
        if isinstance(obj, str) and obj == view:
            return f"the {what} {view}"
        import duckdb
        import pyarrow as pa

        try:
            with _arrow_batches(obj, what, self.batch_rows) as (label, reader):
                columns = [_upload_column(f, what) for f in reader.schema]
                self._upload(view, columns, reader, what)
        except (duckdb.Error, pa.ArrowException) as exc:
            raise InputError(
                f"cannot read the {what} to upload it as {view!r}: {_first_line(str(exc))}",
                hint="check the frame or file: DuckDBBackend reads it the same way",
            ) from exc
        return label

    def unregister(self, view: str) -> None:
        if view not in self._uploaded:
            return  # a table that was in the database already is never dropped
        cascade = " CASCADE" if self._postgresql else ""
        with self._errors() as conn:
            conn.execute(self._text(f"DROP TABLE IF EXISTS {self._temp_name(view)}{cascade}"))
        self._uploaded.discard(view)

    def columns(self, view: str) -> dict[str, str]:
        import sqlalchemy as sa

        with self._errors() as conn:
            cols = sa.inspect(conn).get_columns(view)
        return {str(c["name"]): str(c["type"]) for c in cols}

    def close(self) -> None:
        """End the session. On PostgreSQL ``DISCARD TEMP`` first drops every temporary table
        and view the backend made, so none reaches the next user of the pooled connection;
        elsewhere the uploaded tables are dropped."""
        conn, self._conn = self._conn, None
        if conn is None or conn.closed:
            return
        try:
            if self._postgresql:
                conn.execute(self._text("DISCARD TEMP"))
            else:
                for view in sorted(self._uploaded):
                    conn.execute(self._text(f"DROP TABLE IF EXISTS {self._temp_name(view)}"))
            conn.commit()
        except Exception:  # closing anyway: the session's temporaries go with it
            conn.invalidate()
        finally:
            self._uploaded.clear()
            conn.close()

    def __enter__(self) -> SQLBackend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # uploads ----------------------------------------------------------------------------
    @property
    def _postgresql(self) -> bool:
        return str(self.engine.dialect.name) == "postgresql"

    def _temp_name(self, view: str) -> str:
        """``view`` as the temporary table: schema-qualified on PostgreSQL, so a DROP can
        never reach a permanent table of the same name."""
        return f"pg_temp.{_q(view)}" if self._postgresql else _q(view)

    def _copy_loads(self, conn: Any) -> bool:
        """Whether rows go in by psycopg 3's ``COPY ... FROM STDIN`` (else INSERT batches)."""
        return self._postgresql and str(conn.dialect.driver) == "psycopg"

    def _upload(
        self, view: str, columns: list[_UploadColumn], reader: pa.RecordBatchReader, what: str
    ) -> None:
        """CREATE TEMPORARY TABLE and load every batch, in one transaction: a failure leaves
        no table (and no half-loaded one)."""
        if self._postgresql and len(view.encode()) > 63:
            raise InputError(
                f"the view name {view!r} is longer than PostgreSQL's 63 bytes",
                hint="register it under a shorter name",
            )
        target = self._temp_name(view)
        defs = ", ".join(f"{_q(c.name)} {c.sql_type}" for c in columns)
        try:
            with self._errors() as conn:
                if view in self._uploaded:  # replaced, as DuckDB replaces a view
                    cascade = " CASCADE" if self._postgresql else ""
                    conn.execute(self._text(f"DROP TABLE IF EXISTS {target}{cascade}"))
                conn.execute(self._text(f"CREATE TEMPORARY TABLE {_q(view)} ({defs})"))
                batches = (_wire_batch(b, columns, what) for b in reader)
                if self._copy_loads(conn):
                    _copy(conn, target, columns, batches)
                else:
                    _insert(conn, target, columns, batches)
        except QueryError as exc:  # rolled back: no new table, and an old one is still there
            raise InputError(
                f"cannot upload the {what} as {view!r}: {_first_line(str(exc))}",
                hint="check that every value fits its column's type (an unsigned 64-bit "
                "integer above 2**63 does not fit BIGINT; text cannot hold NUL)",
            ) from exc
        self._uploaded.add(view)


class _UploadColumn:
    """One column of an upload: its name, its SQL type and the Arrow type sent for it."""

    __slots__ = ("name", "sql_type", "wire")

    def __init__(self, name: str, sql_type: str, wire: pa.DataType) -> None:
        self.name = name
        self.sql_type = sql_type
        self.wire = wire


def _upload_column(field: pa.Field, what: str) -> _UploadColumn:
    """The SQL type of an Arrow column, or a SchemaError naming the column and the fix."""
    import pyarrow as pa

    t = field.type
    name = str(field.name)
    if pa.types.is_boolean(t):
        return _UploadColumn(name, "BOOLEAN", pa.bool_())
    if pa.types.is_integer(t):
        return _UploadColumn(name, "BIGINT", pa.int64())
    if pa.types.is_floating(t):
        return _UploadColumn(name, "DOUBLE PRECISION", pa.float64())
    textual = pa.types.is_string(t) or pa.types.is_large_string(t) or pa.types.is_string_view(t)
    categorical = pa.types.is_dictionary(t) and (
        pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)
    )
    if textual or categorical or pa.types.is_null(t):
        return _UploadColumn(name, "TEXT", pa.large_string())
    if pa.types.is_timestamp(t):
        if t.tz is None:
            return _UploadColumn(name, "TIMESTAMP", pa.timestamp("us"))
        return _UploadColumn(name, "TIMESTAMP WITH TIME ZONE", pa.timestamp("us", tz="UTC"))
    if pa.types.is_date(t):
        return _UploadColumn(name, "DATE", pa.date32())
    raise SchemaError(
        f"column {name!r} of the {what} has type {t}, which the SQL backend cannot upload "
        "(it uploads integers, floats, booleans, strings, timestamps and dates)",
        hint=f"cast {name!r} before registering it (e.g. to float64 or to string), "
        "or evaluate on DuckDB (the default)",
        where=name,
    )


def _wire_batch(batch: pa.RecordBatch, columns: list[_UploadColumn], what: str) -> pa.RecordBatch:
    """``batch`` in the types sent to the database (int64, float64, large strings, UTC
    microseconds), a value that does not fit (a uint64 above 2**63) an InputError."""
    import pyarrow as pa

    arrays = []
    for j, col in enumerate(columns):
        array = batch.column(j)
        if array.type != col.wire:
            exact = pa.types.is_integer(col.wire)  # never wrap an integer around
            try:
                array = array.cast(col.wire, safe=exact)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                raise InputError(
                    f"column {col.name!r} of the {what} does not fit {col.sql_type}: {exc}",
                    hint=f"cast {col.name!r} to a type that holds its values before registering it",
                    where=col.name,
                ) from exc
        arrays.append(array)
    return pa.RecordBatch.from_arrays(arrays, names=[c.name for c in columns])


def _copy(
    conn: Any, target: str, columns: list[_UploadColumn], batches: Iterator[pa.RecordBatch]
) -> None:
    """psycopg 3's ``COPY ... FROM STDIN`` as CSV written by Arrow: NULL unquoted and empty,
    every value quoted (so an empty string stays one), floats in their shortest exact form
    (``nan``/``inf`` as PostgreSQL reads them)."""
    import io

    import pyarrow.csv as pacsv

    options = pacsv.WriteOptions(include_header=False, quoting_style="all_valid")
    listed = ", ".join(_q(c.name) for c in columns)
    sql = f"COPY {target} ({listed}) FROM STDIN (FORMAT csv, ENCODING 'UTF8')"
    raw = conn.connection.dbapi_connection
    with raw.cursor() as cur, cur.copy(sql) as copy:
        for batch in batches:
            if batch.num_rows:
                buf = io.BytesIO()
                pacsv.write_csv(batch, buf, options)
                copy.write(buf.getbuffer())


def _insert(
    conn: Any, target: str, columns: list[_UploadColumn], batches: Iterator[pa.RecordBatch]
) -> None:
    """Batched ``executemany`` INSERTs, for drivers without psycopg's COPY."""
    import sqlalchemy as sa

    if not columns:
        return
    keys = [f"p{j}" for j in range(len(columns))]
    listed = ", ".join(_q(c.name) for c in columns)
    # a colon in an identifier escaped, so that only the bound names are parameters
    into = f"INSERT INTO {target} ({listed}) VALUES (".replace(":", "\\:")
    stmt = sa.text(into + ", ".join(f":{k}" for k in keys) + ")")
    for batch in batches:
        if batch.num_rows:
            values = [batch.column(j).to_pylist() for j in range(len(columns))]
            conn.execute(
                stmt, [dict(zip(keys, row, strict=True)) for row in zip(*values, strict=True)]
            )


@contextmanager
def _arrow_batches(
    obj: Any, what: str, batch_rows: int
) -> Iterator[tuple[str, pa.RecordBatchReader]]:
    """``obj`` read as DuckDBBackend reads it (the engine's own source reading, in a scratch
    DuckDB), as Arrow batches; yields its label for messages and the batch reader."""
    import duckdb

    from loopml.engine._sources import register

    if type(obj).__module__.split(".")[0] in ("duckdb", "_duckdb"):  # a DuckDB relation
        yield f"the {what} ({type(obj).__name__})", obj.to_arrow_reader(batch_rows)
        return
    scratch = duckdb.connect()
    try:
        label = register(scratch, obj, "__upload", what=what)
        yield label, scratch.sql('SELECT * FROM "__upload"').to_arrow_reader(batch_rows)
    finally:
        scratch.close()


def _end_session(conn: Any) -> None:
    """Close ``conn`` and its database connection for good, unless closed already."""
    if not conn.closed:
        try:
            conn.invalidate()
        finally:
            conn.close()


def _first_line(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[0] if lines else text


def _is_decimal(v: Any) -> bool:
    from decimal import Decimal

    return isinstance(v, Decimal)
