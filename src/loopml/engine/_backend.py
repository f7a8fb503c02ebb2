"""The engine's seam: a small ``Backend`` protocol that owns every table touch.

Everything in loopml that reads a table (evaluation's input checks and its one aggregation
statement, discovery's encoding, tags, the dataset readers, diffs and validation, the gate's
paired counts) goes through a backend: run a statement, register a table or a file as a
view, read rows back (as tuples, numpy columns or Arrow). DuckDB in process is the default
(:class:`DuckDBBackend`, from :func:`connect`); :class:`SQLBackend` runs the same statements
on PostgreSQL or a warehouse through SQLAlchemy. No module outside ``loopml.engine`` imports
DuckDB (ruff's banned-api rule and ``lint-imports`` check it).

Errors of the engine surface as :class:`QueryError` (never a DuckDB exception), with
``conversion`` set when a value could not be converted to a column's type.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from loopml.errors import InputError

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
        return {c: np.asarray(table[c]) for c in cols}

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
    bitmask function differs. Tables must already be there (``view`` names them): this
    backend does not upload frames or files.
    """

    grouping_function = "GROUPING"

    def quantiles_sql(self, expr: str, qs: Sequence[float]) -> str:
        listed = ", ".join(repr(float(q)) for q in qs)
        return f"percentile_cont(ARRAY[{listed}]) WITHIN GROUP (ORDER BY {expr})"

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    @contextmanager
    def _errors(self) -> Iterator[Any]:
        import sqlalchemy as sa

        try:
            with self.engine.connect() as conn:
                yield conn
        except sa.exc.DBAPIError as exc:
            raise QueryError(str(exc.orig)) from exc

    def run(self, sql: str) -> dict[str, npt.NDArray[Any]]:
        import sqlalchemy as sa

        with self._errors() as conn:
            result = conn.execute(sa.text(sql.replace(":", "\\:")))
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
        import sqlalchemy as sa

        if params:
            raise QueryError("SQLBackend.rows takes no positional parameters")
        with self._errors() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql.replace(":", "\\:"))).fetchall()]

    def named_rows(self, sql: str) -> tuple[list[str], list[tuple[Any, ...]]]:
        import sqlalchemy as sa

        with self._errors() as conn:
            result = conn.execute(sa.text(sql.replace(":", "\\:")))
            names = [str(k) for k in result.keys()]  # noqa: SIM118 - a Result, not a dict
            return names, [tuple(r) for r in result.fetchall()]

    def execute(self, sql: str) -> None:
        import sqlalchemy as sa

        with self._errors() as conn:
            conn.execute(sa.text(sql.replace(":", "\\:")))
            conn.commit()

    def register(self, obj: Any, view: str, *, what: str = "table") -> str:
        if isinstance(obj, str) and obj == view:
            return f"the {what} {view}"
        raise InputError(
            f"the SQL backend reads tables that are already in the database; cannot register "
            f"a {type(obj).__name__} as {view!r}",
            hint="load the table into the database first, or evaluate on DuckDB (the default)",
        )

    def unregister(self, view: str) -> None:
        return None

    def columns(self, view: str) -> dict[str, str]:
        import sqlalchemy as sa

        with self._errors() as conn:
            cols = sa.inspect(conn).get_columns(view)
        return {str(c["name"]): str(c["type"]) for c in cols}

    def close(self) -> None:
        return None


def _is_decimal(v: Any) -> bool:
    from decimal import Decimal

    return isinstance(v, Decimal)
