"""Turn what the user hands us (a path, a pandas/polars frame, an Arrow table) into a
DuckDB view, with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loopml.errors import InputError

__all__ = ["TableLike", "describe", "register"]

TableLike = Any  # str | Path | pandas.DataFrame | polars.DataFrame | pyarrow.Table | ...

_PARQUET = {".parquet", ".pq", ".parq"}
_CSV = {".csv", ".tsv", ".txt", ".csv.gz", ".tsv.gz"}
_ARROW = {".arrow", ".feather", ".ipc"}

#: DuckDB's integer type names (the engine's own vocabulary; see duckdb.org/docs/sql/data_types)
INTEGER_TYPES = frozenset(
    {
        "TINYINT",
        "SMALLINT",
        "INTEGER",
        "BIGINT",
        "HUGEINT",
        "UTINYINT",
        "USMALLINT",
        "UINTEGER",
        "UBIGINT",
        "UHUGEINT",
    }
)


def is_integer_or_bool(type_name: str) -> bool:
    """A DuckDB integer or BOOLEAN type name (any case)."""
    t = type_name.upper()
    return t == "BOOLEAN" or t in INTEGER_TYPES


def _suffix(path: str) -> str:
    """The format of ``path`` by its name, or by its first bytes when the name has no known
    suffix (artifacts in the store are named by their hash)."""
    low = path.lower()
    for s in (".csv.gz", ".tsv.gz"):
        if low.endswith(s):
            return s
    suffix = Path(low).suffix
    if suffix in _PARQUET | _CSV | _ARROW or "://" in path:
        return suffix
    try:
        with open(path, "rb") as handle:
            magic = handle.read(6)
    except OSError:
        return suffix
    if magic[:4] == b"PAR1":
        return ".parquet"
    if magic == b"ARROW1":
        return ".arrow"
    return suffix


def register(con: Any, obj: TableLike, view: str, *, what: str = "table") -> str:
    """Make ``obj`` readable as the DuckDB view ``view``; returns a label for messages."""
    import duckdb

    if isinstance(obj, str | Path):
        path = str(obj)
        label = path
        suffix = _suffix(path)
        is_url = "://" in path and not path.startswith("file://")
        if not is_url and not Path(path).exists():
            raise InputError(f"{what} file {path} does not exist", hint="check the path")
        try:
            if is_url:
                rel = con.from_arrow(_read_url(path, suffix))
            elif suffix in _PARQUET:
                rel = con.read_parquet(path)
            elif suffix in _CSV:
                rel = con.read_csv(path, sep="\t" if suffix.startswith(".tsv") else None)
            elif suffix in _ARROW:
                import pyarrow.feather as feather

                rel = con.from_arrow(feather.read_table(path))
            else:
                raise InputError(
                    f"cannot read {what} file {path}: unknown file type {suffix or '(none)'}",
                    hint="use Parquet (.parquet), CSV (.csv/.tsv) or Arrow IPC (.arrow/.feather)",
                )
            rel.to_view(view, replace=True)
            con.sql(f'SELECT * FROM "{view}" LIMIT 0')
        except duckdb.Error as exc:
            raise InputError(
                f"cannot read {what} file {path}: {_first_lines(str(exc))}",
                hint="check that the file is complete and in the format its name says",
            ) from None
        return label
    module = type(obj).__module__.split(".")[0]
    if module == "polars":
        obj = obj.to_arrow()
    elif module not in {"pandas", "pyarrow", "duckdb"}:
        raise InputError(
            f"cannot use a {type(obj).__name__} as the {what}",
            hint="pass a file path, a pandas or polars DataFrame, or a pyarrow Table",
        )
    if module == "duckdb":
        obj.to_view(view, replace=True)
    else:
        con.register(view, obj)
    return f"the {what} ({type(obj).__name__})"


def _read_url(url: str, suffix: str) -> Any:
    import fsspec
    import pyarrow.csv as pacsv
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    with fsspec.open(url, "rb") as handle:
        if suffix in _PARQUET:
            return pq.read_table(handle)
        if suffix in _ARROW:
            return feather.read_table(handle)
        return pacsv.read_csv(handle)


def _first_lines(text: str, n: int = 4) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines()[:n])


def describe(con: Any, view: str) -> dict[str, str]:
    """Column name -> DuckDB type name."""
    rows = con.execute(f'DESCRIBE "{view}"').fetchall()
    return {str(r[0]): str(r[1]) for r in rows}
