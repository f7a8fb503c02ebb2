"""Reading a table the user hands us: a file (Parquet, CSV, Arrow IPC; a local path or an
fsspec URL) or an in-memory table (pandas, polars, pyarrow, a DuckDB relation) -- the same
kinds :func:`loopml.evaluate` accepts.

CSV cells stay as written: a column DuckDB's sniffer would read as BOOLEAN (``yes``/``no``,
``true``/``false``, ``t``/``f``) is kept as text, unless the caller names it in
``keep_boolean`` (``add_dataset`` does so for the label when the spec's ``positive_class`` is
``true`` or ``false``). Columns can be given a type (``types={"x": "float"}``) and CSV files a
decimal separator; a declared type never silently turns a cell into a missing value: cells
that do not parse are an error naming the column, their count and example rows.
"""

from __future__ import annotations

import io
import os
import re
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from loopml.data._util import MAX_EXAMPLES
from loopml.engine import DuckDBBackend, QueryError, file_format
from loopml.errors import InputError, SchemaError
from loopml.slices import quote_identifier as qident

__all__ = ["TYPE_NAMES", "read_table"]

# declared column types -> DuckDB types
TYPE_NAMES: dict[str, str] = {
    "float": "DOUBLE",
    "double": "DOUBLE",
    "number": "DOUBLE",
    "integer": "BIGINT",
    "int": "BIGINT",
    "text": "VARCHAR",
    "string": "VARCHAR",
    "boolean": "BOOLEAN",
    "bool": "BOOLEAN",
    "date": "DATE",
    "timestamp": "TIMESTAMP",
}
_COMPRESSED = (".gz", ".zst", ".bz2")
_BATCH_ROWS = 1_000_000  # rows per Arrow chunk from DuckDB (one chunk per row group)
_READ_BY_DUCKDB = b"loopml.read_by_duckdb"  # schema metadata: no second pass needed
_MAX_RETRIES = 20
_MAGIC: list[tuple[bytes, str]] = [
    (b"\x89PNG", "a PNG image"),
    (b"\xff\xd8\xff", "a JPEG image"),
    (b"GIF8", "a GIF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive (an .xlsx workbook is one)"),
    (b"PAR1", "a Parquet file"),
    (b"ARROW1", "an Arrow IPC file"),
    (b"\x1f\x8b", "a gzip-compressed file"),
    (b"\xd0\xcf\x11\xe0", "an old Office document (.xls)"),
    (b"SQLite format 3", "an SQLite database"),
]


def _duckdb() -> DuckDBBackend:
    return DuckDBBackend()


def _sql_str(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _first_line(text: str) -> str:
    return text.strip().splitlines()[0] if text.strip() else text


def _format_of(name: str) -> str:
    found = file_format(name)  # the engine's rule: by the name, else by the first bytes
    if found is not None:
        return found
    raise InputError(
        f"cannot tell the format of {name!r}; expected a .parquet, .csv (.tsv) or "
        ".arrow (.feather, .ipc) file",
        hint="rename the file with its format's extension",
        where=name,
    )


def _declared(types: Mapping[str, str] | None) -> dict[str, str]:
    out: dict[str, str] = {}
    for column, name in (types or {}).items():
        duck = TYPE_NAMES.get(str(name).strip().lower())
        if duck is None:
            raise InputError(
                f"type {name!r} of column {column!r} is not one loopml knows; expected one of "
                f"{sorted(TYPE_NAMES)}",
                hint="write e.g. --type price=float",
                where=column,
            )
        out[str(column)] = duck
    return out


def read_table(
    source: Any,
    *,
    types: Mapping[str, str] | None = None,
    decimal: str = ".",
    keep_boolean: Collection[str] = (),
) -> pa.Table:
    """Read ``source`` and pass it through DuckDB, so every format gives the same Arrow types
    for the same data (and so the same content hash).

    ``source`` is a Parquet, CSV or Arrow IPC file (a local path or an fsspec URL), a pandas
    or polars DataFrame (or polars LazyFrame), a pyarrow Table or RecordBatch, or a DuckDB
    relation. ``types`` maps columns to a declared type (``float``, ``integer``, ``text``,
    ``boolean``, ``date``, ``timestamp``); ``decimal`` is the decimal separator of a CSV
    file's numbers (``.`` or ``,``). See the module doc for booleans in CSV files.
    """
    if decimal not in (".", ","):
        raise InputError(
            f"decimal separator {decimal!r}; expected '.' or ','",
            hint="pass --decimal , for numbers written like 1,5",
        )
    declared = _declared(types)
    table = _read_any(source, declared=declared, decimal=decimal, keep_boolean=keep_boolean)
    where = str(source) if isinstance(source, str | os.PathLike) else "the table"
    missing = [c for c in declared if c not in table.column_names]
    if missing:
        raise SchemaError(
            f"{where} has no column {', '.join(map(repr, missing))} (named in the declared "
            f"types); its columns are {table.column_names}",
            hint="check the column names given with --type",
            where=", ".join(missing),
        )
    con = _duckdb()
    try:
        if not declared:
            if _READ_BY_DUCKDB in (table.schema.metadata or {}):
                return table.replace_schema_metadata(None)  # already DuckDB's Arrow types
            con.register(table, "src")
            out: pa.Table = con.arrow("SELECT * FROM src", _BATCH_ROWS)
            return out
        rows = pa.array(range(1, table.num_rows + 1), pa.int64())
        con.register(table.append_column("__loopml_row", rows), "src")
        current = {f.name: f.type for f in table.schema}
        selects = []
        for name in table.column_names:
            q = qident(name)
            if name not in declared:
                selects.append(q)
                continue
            expr = _cast_expr(q, declared[name], current[name], decimal)
            _check_cast(con, name, expr, str(types[name]) if types else "", where)
            selects.append(f"{expr} AS {q}")
        out = con.arrow(f"SELECT {', '.join(selects)} FROM src", _BATCH_ROWS)
        return out
    finally:
        con.close()


def _cast_expr(q: str, duck: str, current: pa.DataType, decimal: str) -> str:
    text = pa.types.is_string(current) or pa.types.is_large_string(current)
    if duck == "VARCHAR":
        return q if text else f"CAST({q} AS VARCHAR)"
    if text and duck in ("DOUBLE", "BIGINT"):
        cell = f"trim({q})"
        if decimal == ",":
            cell = f"replace(replace({cell}, '.', ''), ',', '.')"
        cell = f"nullif({cell}, '')"
        if duck == "BIGINT":
            return f"TRY_CAST({cell} AS BIGINT)"
        return f"TRY_CAST({cell} AS DOUBLE)"
    if text:
        return f"TRY_CAST(nullif(trim({q}), '') AS {duck})"
    return f"TRY_CAST({q} AS {duck})"


def _check_cast(con: Any, name: str, expr: str, type_name: str, where: str) -> None:
    """Refuse a declared type that some non-empty cells do not have (no silent nulls)."""
    q = qident(name)
    bad = f"{q} IS NOT NULL AND trim({q}::VARCHAR) <> '' AND ({expr}) IS NULL"
    n_bad, rows, values = con.rows(
        f"SELECT count(*) FILTER (WHERE {bad}), "
        f"list_slice(list(__loopml_row ORDER BY __loopml_row) FILTER (WHERE {bad}), 1, "
        f"{MAX_EXAMPLES}), "
        f"list_slice(list({q}::VARCHAR ORDER BY __loopml_row) FILTER (WHERE {bad}), 1, "
        f"{MAX_EXAMPLES}) FROM src"
    )[0]
    if n_bad:
        shown = ", ".join(f"row {r}: {v!r}" for r, v in zip(rows, values, strict=True))
        raise InputError(
            f"{int(n_bad)} cell(s) of column {name!r} are not {type_name}, e.g. {shown} "
            "(rows count data rows from 1, the header is not a row)",
            hint="clean those cells (leave a missing value empty), or declare another type",
            where=f"{where}: column {name!r}",
        )


def _read_any(
    source: Any, *, declared: dict[str, str], decimal: str, keep_boolean: Collection[str]
) -> pa.Table:
    """Read a Parquet, CSV or Arrow IPC file (local path or fsspec URL) into an Arrow table.

    An in-memory table is taken as is. A malformed CSV raises InputError naming the file and
    the line.
    """
    if isinstance(source, pa.Table):
        return source
    if isinstance(source, pa.RecordBatch):
        return pa.Table.from_batches([source])
    if not isinstance(source, str | os.PathLike):
        return _from_memory(source)
    text = os.fspath(source)
    if not isinstance(text, str):
        text = text.decode()
    fmt = _format_of(text)
    if "://" in text and not text.startswith("file://"):
        return _read_url(
            text, fmt, declared=list(declared), decimal=decimal, keep_boolean=keep_boolean
        )
    path = Path(text.removeprefix("file://"))
    if not path.is_file():
        raise InputError(
            f"file {text!r} does not exist",
            hint="check the path (relative paths are relative to the current directory)",
            where=text,
        )
    if fmt == "parquet":
        return _read_parquet(path)
    if fmt == "arrow":
        try:
            with open(path, "rb") as handle:
                return _read_ipc(handle.read(), text)
        except OSError as exc:
            raise InputError(f"cannot read {text}: {exc}", where=text) from None
    return _read_csv(
        path,
        text_columns=list(declared),
        decimal=decimal,
        keep_boolean=keep_boolean,
    )


def _from_memory(source: Any) -> pa.Table:
    module = type(source).__module__.split(".")[0]
    kind = type(source).__name__
    if module == "pandas" and kind == "DataFrame":
        return pa.Table.from_pandas(source, preserve_index=False)
    if module == "polars" and kind in ("DataFrame", "LazyFrame"):
        frame = source.collect() if kind == "LazyFrame" else source
        table: pa.Table = frame.to_arrow()
        return table
    if module == "duckdb" and hasattr(source, "to_arrow_table"):
        out: pa.Table = source.to_arrow_table(_BATCH_ROWS)
        return out
    if isinstance(source, pa.RecordBatchReader):
        return source.read_all()
    raise InputError(
        f"cannot read a {kind} as a dataset",
        hint="pass a file path, an fsspec URL, a pandas or polars DataFrame, a pyarrow Table "
        "or a DuckDB relation",
    )


def _read_parquet(path: Path) -> pa.Table:
    con = _duckdb()
    try:
        result: pa.Table = con.arrow(
            f"SELECT * FROM read_parquet({_sql_str(str(path))})", _BATCH_ROWS
        )
        return _mark(result)
    except QueryError as exc:
        raise InputError(
            f"cannot read {path} as Parquet: {_first_line(str(exc))}",
            hint="check that the file is a complete Parquet file (not truncated or renamed)",
            where=str(path),
        ) from None
    finally:
        con.close()


def _mark(table: pa.Table) -> pa.Table:
    return table.replace_schema_metadata({_READ_BY_DUCKDB: b"1"})


def _read_ipc(data: bytes, name: str) -> pa.Table:
    try:
        return pa.ipc.open_file(pa.BufferReader(data)).read_all()
    except (pa.ArrowInvalid, OSError):
        pass
    try:
        return pa.ipc.open_stream(pa.BufferReader(data)).read_all()
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(
            f"cannot read {name} as an Arrow IPC file or stream: {exc}",
            hint="write it with pyarrow.feather.write_feather or pyarrow.ipc",
            where=name,
        ) from None


def _check_text_file(path: Path) -> None:
    """Refuse an empty file and a file that is not text, before DuckDB's sniffer sees it."""
    if path.name.lower().endswith(_COMPRESSED):
        return
    with open(path, "rb") as handle:
        head = handle.read(8192)
    expected = "expected a CSV text file: a header line with the column names, then one line "
    expected += "per row"
    if not head.strip():
        raise InputError(
            f"{path} is empty" + (" (0 bytes)" if not head else " (only blank lines)"),
            hint=expected,
            where=str(path),
        )
    for magic, what in _MAGIC:
        if head.startswith(magic):
            raise InputError(
                f"{path} is not a CSV file: it is {what}",
                hint=f"{expected}; convert the file to CSV (or Parquet) first",
                where=str(path),
            )
    controls = sum(1 for b in head if b < 32 and b not in (9, 10, 12, 13))
    if b"\x00" in head or controls > len(head) // 20:
        raise InputError(
            f"{path} is not a CSV file: it holds binary data (NUL or control bytes in its "
            "first bytes)",
            hint=f"{expected} (UTF-8); is it the file you meant?",
            where=str(path),
        )


def _read_csv(
    path: Path,
    *,
    text_columns: Collection[str] = (),
    decimal: str = ".",
    keep_boolean: Collection[str] = (),
) -> pa.Table:
    _check_text_file(path)
    varchar: dict[str, str] = {}
    options = "auto_detect=true" + (", decimal_separator=','" if decimal == "," else "")
    con = _duckdb()

    def query() -> str:
        spec = ""
        if varchar:
            spec = ", types={" + ", ".join(f"{_sql_str(c)}: 'VARCHAR'" for c in varchar) + "}"
        return f"SELECT * FROM read_csv({_sql_str(str(path))}, {options}{spec})"

    try:
        # sniff only: booleans are kept as text, as written (unless asked to keep them)
        described = con.rows(f"DESCRIBE {query()}")
        # declared columns are read as text and cast by read_table, which names bad cells
        varchar.update((str(d[0]), "VARCHAR") for d in described if str(d[0]) in text_columns)
        for name, duck_type, *_ in described:
            if str(duck_type) == "BOOLEAN" and str(name) not in keep_boolean:
                varchar[str(name)] = "VARCHAR"
        for _ in range(_MAX_RETRIES):
            try:
                table: pa.Table = _mark(con.arrow(query(), _BATCH_ROWS))
                break
            except QueryError as exc:
                if not exc.conversion:
                    raise
                # a cell beyond the sniffer's sample does not fit the sniffed type: read that
                # column as text (validation then reports the cells that are not numbers)
                m = re.search(r'converting column "(.+?)"', str(exc))
                if m is None or m.group(1) in varchar:
                    raise
                varchar[m.group(1)] = "VARCHAR"
        else:
            table = con.arrow(
                query().replace("auto_detect=true", "auto_detect=true, sample_size=-1"), _BATCH_ROWS
            )
    except QueryError as exc:
        _raise_csv_error(path, str(exc))
        raise  # pragma: no cover - _raise_csv_error always raises
    finally:
        con.close()
    if table.column_names != _csv_header(path):
        # the sniffer gives up on a malformed file by reading it as one text column or by
        # skipping the lines before the one it could parse: look for the bad line
        located = _locate_csv_problem(path)
        if located is not None:
            line, what = located
            raise InputError(
                f"malformed CSV: line {line} {what}",
                hint="fix that line (quote fields that contain the delimiter)",
                where=f"{path}:{line}",
            )
    return table


def _raise_csv_error(path: Path, message: str) -> None:
    m = re.search(r"Line:\s*(\d+)", message)
    if m:
        detail = re.search(r"Expected Number of Columns: (\d+) Found: (\d+)", message)
        what = (
            f"has {detail.group(2)} fields where the header has {detail.group(1)}"
            if detail
            else "cannot be parsed"
        )
        raise InputError(
            f"malformed CSV: line {m.group(1)} {what}",
            hint="fix that line (quote fields that contain the delimiter)",
            where=f"{path}:{m.group(1)}",
        ) from None
    located = _locate_csv_problem(path)
    if located is not None:
        line, what = located
        raise InputError(
            f"malformed CSV: line {line} {what}",
            hint="fix that line (quote fields that contain the delimiter)",
            where=f"{path}:{line}",
        ) from None
    raise InputError(
        f"cannot read {path} as CSV: the delimiter, quoting and column layout could not be "
        "detected",
        hint="expected a UTF-8 text file with a header line and the same number of fields "
        "(separated by , ; | or tab) on every line",
        where=str(path),
    ) from None


def _csv_header(path: Path) -> list[str]:
    """The fields of the first line of a CSV file ([] when it cannot be read)."""
    import csv

    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            return next(csv.reader(handle, delimiter=delimiter), [])
    except (csv.Error, UnicodeDecodeError, OSError):
        return []


def _locate_csv_problem(path: Path) -> tuple[int, str] | None:
    """The first line whose field count differs from the header's (only called on failure)."""
    import csv

    delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.reader(handle, delimiter=delimiter, strict=True)
            try:
                header = next(reader)
            except StopIteration:
                return None
            if len(header) < 2:
                return None
            for row in reader:
                if row and len(row) != len(header):
                    return reader.line_num, (
                        f"has {len(row)} fields where the header has {len(header)}"
                    )
    except csv.Error as exc:
        return reader.line_num, f"cannot be parsed: {exc}"
    except UnicodeDecodeError as exc:
        return 1, f"is not UTF-8 text ({exc.reason} at byte {exc.start})"
    return None


def _read_url(
    url: str,
    fmt: str,
    *,
    declared: Collection[str] = (),
    decimal: str = ".",
    keep_boolean: Collection[str] = (),
) -> pa.Table:
    import fsspec

    try:
        with fsspec.open(url, "rb", compression="infer") as handle:
            data = handle.read()
    except (OSError, ValueError, ImportError) as exc:
        raise InputError(
            f"cannot open {url}: {exc}",
            hint="check the URL and that the fsspec backend for its protocol is installed",
            where=url,
        ) from None
    if fmt == "parquet":
        try:
            return pq.read_table(io.BytesIO(data))
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"cannot read {url} as Parquet: {exc}", where=url) from None
    if fmt == "arrow":
        return _read_ipc(data, url)
    import tempfile

    suffix = ".tsv" if ".tsv" in url.lower() else ".csv"
    with tempfile.TemporaryDirectory() as tmp:
        local = Path(tmp) / f"data{suffix}"
        local.write_bytes(data)
        try:
            return _read_csv(
                local, text_columns=list(declared), decimal=decimal, keep_boolean=keep_boolean
            )
        except InputError as exc:
            where = (exc.where or "").replace(str(local), url)
            raise InputError(
                exc.message.replace(str(local), url), hint=exc.hint, where=where
            ) from None
