"""Render an AST as SQL (for DuckDB) or back as slice-expression text.

SQL is generated from the tree, never from the user's text: identifiers are always
double-quoted with embedded double quotes doubled, strings single-quoted with embedded
single quotes doubled, numbers written from the parsed Python numbers.
"""

from __future__ import annotations

import re

from loopml.errors import InputError
from loopml.slices._ast import (
    And,
    Between,
    Column,
    Compare,
    Expr,
    In,
    IsNull,
    Literal,
    LiteralValue,
    Not,
    Or,
)
from loopml.slices._lexer import KEYWORDS

__all__ = ["quote_identifier", "quote_string", "sql_literal", "to_sql", "to_text"]

_BARE_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_.]*\Z")


def quote_identifier(name: str) -> str:
    """``name`` as a SQL identifier: double-quoted, embedded double quotes doubled."""
    _reject_nul(name, "column name")
    return '"' + name.replace('"', '""') + '"'


def quote_string(value: str) -> str:
    """``value`` as a SQL string literal: single-quoted, embedded single quotes doubled."""
    _reject_nul(value, "string")
    return "'" + value.replace("'", "''") + "'"


def sql_literal(value: LiteralValue) -> str:
    """A SQL literal for a parsed value. Floats are written with an exponent so that DuckDB
    reads them as DOUBLE (correctly rounded), not as DECIMAL."""
    if value is None:
        return "NULL"
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # a numpy scalar read from a table
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, int):
        text = str(value)
    elif isinstance(value, float):
        text = repr(value)
        if "e" not in text and "E" not in text:
            text += "e0"
    elif isinstance(value, str):
        return quote_string(value)
    else:
        raise TypeError(f"not a slice literal value: {type(value).__name__}")
    return f"({text})" if text.startswith("-") else text


def to_sql(expr: Expr, *, null_as_false: bool = False) -> str:
    """The expression as a DuckDB SQL boolean expression.

    A row where the expression is NULL (SQL three-valued logic) is not in the slice; pass
    ``null_as_false=True`` to get ``COALESCE((...), FALSE)``, which is what the engine uses.
    """
    sql = _sql(expr)
    if null_as_false:
        return f"COALESCE({sql}, FALSE)"
    return sql


def _sql(node: Expr) -> str:
    if isinstance(node, Column):
        return quote_identifier(node.name)
    if isinstance(node, Literal):
        return sql_literal(node.value)
    if isinstance(node, Compare):
        op = "<>" if node.op == "!=" else node.op
        return f"({_sql(node.left)} {op} {_sql(node.right)})"
    if isinstance(node, In):
        keyword = "NOT IN" if node.negated else "IN"
        values = ", ".join(sql_literal(v.value) for v in node.values)
        return f"({_sql(node.operand)} {keyword} ({values}))"
    if isinstance(node, Between):
        keyword = "NOT BETWEEN" if node.negated else "BETWEEN"
        return f"({_sql(node.operand)} {keyword} {_sql(node.low)} AND {_sql(node.high)})"
    if isinstance(node, IsNull):
        keyword = "IS NOT NULL" if node.negated else "IS NULL"
        return f"({_sql(node.operand)} {keyword})"
    if isinstance(node, Not):
        return f"(NOT {_sql(node.operand)})"
    if isinstance(node, And):
        return "(" + " AND ".join(_sql(child) for child in node.operands) + ")"
    if isinstance(node, Or):
        return "(" + " OR ".join(_sql(child) for child in node.operands) + ")"
    raise TypeError(f"not a slice expression node: {type(node).__name__}")


def to_text(expr: Expr) -> str:
    """The expression in the slice language, canonically spelled; ``parse(to_text(e)) == e``."""
    return _text(expr)


def text_identifier(name: str) -> str:
    """A column name as the slice language writes it: bare when possible, else "quoted"."""
    if _BARE_IDENT.match(name) and name.lower() not in KEYWORDS:
        return name
    return '"' + name.replace('"', '""') + '"'


def text_literal(value: LiteralValue) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    return "'" + value.replace("'", "''") + "'"


def _text(node: Expr) -> str:
    if isinstance(node, Column):
        return text_identifier(node.name)
    if isinstance(node, Literal):
        return text_literal(node.value)
    if isinstance(node, Compare):
        return f"{_text(node.left)} {node.op} {_text(node.right)}"
    if isinstance(node, In):
        keyword = "not in" if node.negated else "in"
        values = ", ".join(text_literal(v.value) for v in node.values)
        return f"{_text(node.operand)} {keyword} ({values})"
    if isinstance(node, Between):
        keyword = "not between" if node.negated else "between"
        return f"{_text(node.operand)} {keyword} {_text(node.low)} and {_text(node.high)}"
    if isinstance(node, IsNull):
        keyword = "is not null" if node.negated else "is null"
        return f"{_text(node.operand)} {keyword}"
    if isinstance(node, Not):
        inner = _text(node.operand)
        if isinstance(node.operand, And | Or):
            inner = f"({inner})"
        return f"not {inner}"
    if isinstance(node, And):
        return " and ".join(
            f"({_text(c)})" if isinstance(c, And | Or) else _text(c) for c in node.operands
        )
    if isinstance(node, Or):
        return " or ".join(
            f"({_text(c)})" if isinstance(c, Or) else _text(c) for c in node.operands
        )
    raise TypeError(f"not a slice expression node: {type(node).__name__}")


def _reject_nul(value: str, what: str) -> None:
    if "\x00" in value:
        raise InputError(
            f"a {what} contains a NUL character (\\x00): {value!r}",
            hint="remove the NUL character; SQL engines cannot hold it in text",
        )
