"""Turn what the user hands us (a path, a pandas/polars frame, an Arrow table) into a
DuckDB view, with errors that name the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from loopml.errors import InputError

__all__ = ["TableLike", "file_format", "register"]

TableLike = Any  # str | Path | pandas.DataFrame | polars.DataFrame | pyarrow.Table | ...


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


_COMPRESSED = (".gz", ".zst", ".bz2")


def file_format(name: str) -> str | None:
    """``"parquet"``, ``"csv"`` or ``"arrow"`` by the file's name (compression suffixes
    such as ``.csv.gz`` allowed), else by its first bytes (artifacts in the store are named
    by their hash); None when neither tells. The one format rule of every table reader."""
    lower = name.lower()
    for suffix in _COMPRESSED:
        lower = lower.removesuffix(suffix)
    if lower.endswith((".parquet", ".pq", ".parq")):
        return "parquet"
    if lower.endswith((".csv", ".tsv", ".txt")):
        return "csv"
    if lower.endswith((".arrow", ".feather", ".ipc", ".arrows")):
        return "arrow"
    if "://" in name and not name.startswith("file://"):
        return None
    try:
        with open(name.removeprefix("file://"), "rb") as handle:
            magic = handle.read(6)
    except OSError:
        return None
    if magic[:4] == b"PAR1":
        return "parquet"
    if magic == b"ARROW1":
        return "arrow"
    return None


def register(con: Any, obj: TableLike, view: str, *, what: str = "table") -> str:
    """Make ``obj`` readable as the DuckDB view ``view``; returns a label for messages."""
    import duckdb

    if isinstance(obj, str | Path):
        path = str(obj)
        label = path
        fmt = file_format(path)
        is_url = "://" in path and not path.startswith("file://")
        if not is_url and not Path(path).exists():
            raise InputError(f"{what} file {path} does not exist", hint="check the path")
        try:
            if fmt is None:
                raise InputError(
                    f"cannot read {what} file {path}: unknown file type "
                    f"{Path(path).suffix or '(none)'}",
                    hint="use Parquet (.parquet), CSV (.csv/.tsv) or Arrow IPC (.arrow/.feather)",
                )
            if is_url:
                rel = con.from_arrow(_read_url(path, fmt))
            elif fmt == "parquet":
                rel = con.read_parquet(path)
            elif fmt == "csv":
                tab = path.lower().removesuffix(".gz").endswith(".tsv")
                rel = con.read_csv(path, sep="\t" if tab else None)
            else:
                rel = con.from_arrow(_read_arrow(path, what))
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


def _read_arrow(path: str, what: str) -> Any:
    """An Arrow IPC file or stream (``.arrow``, ``.feather``, ``.arrows``)."""
    import pyarrow as pa

    for opener in (pa.ipc.open_file, pa.ipc.open_stream):
        try:
            with pa.memory_map(path) as source:
                return opener(source).read_all()
        except (pa.ArrowInvalid, OSError):
            continue
    raise InputError(
        f"cannot read {what} file {path} as an Arrow IPC file or stream",
        hint="write it with pyarrow.feather.write_feather or pyarrow.ipc",
        where=path,
    )


def _read_url(url: str, fmt: str) -> Any:
    import fsspec
    import pyarrow.csv as pacsv
    import pyarrow.feather as feather
    import pyarrow.parquet as pq

    with fsspec.open(url, "rb") as handle:
        if fmt == "parquet":
            return pq.read_table(handle)
        if fmt == "arrow":
            return feather.read_table(handle)
        return pacsv.read_csv(handle)


def _first_lines(text: str, n: int = 4) -> str:
    return " ".join(line.strip() for line in text.strip().splitlines()[:n])
