"""The slice expression AST: frozen dataclasses, one per construct.

Every node keeps ``position``, the 0-based offset of its token in the source text, so that
later checks (unknown column, type mismatch) can point at it. Positions do not take part in
equality: two trees that mean the same thing compare equal wherever they were written.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal as TypingLiteral

__all__ = [
    "And",
    "Between",
    "Column",
    "Compare",
    "CompareOp",
    "Expr",
    "In",
    "IsNull",
    "Literal",
    "LiteralType",
    "LiteralValue",
    "Not",
    "Operand",
    "Or",
]

LiteralValue = int | float | str | bool | None
LiteralType = TypingLiteral["number", "string", "bool", "null"]
CompareOp = TypingLiteral["=", "!=", "<", "<=", ">", ">="]


def _position() -> int:
    return field(default=-1, compare=False, repr=False, kw_only=True)


class Expr:
    """Base class of every node of a slice expression."""

    __slots__ = ()

    def columns(self) -> set[str]:
        """The names of the columns this expression reads."""
        names: set[str] = set()
        _collect_columns(self, names)
        return names

    def __str__(self) -> str:
        from loopml.slices._render import to_text

        return to_text(self)


@dataclass(frozen=True, slots=True)
class Column(Expr):
    """A column reference; alone, a bare boolean column used as a condition."""

    name: str
    position: int = _position()
    #: how it was written: "" (bare), '"' or '`' (quoted); used only for hints.
    quote: str = field(default="", compare=False, repr=False, kw_only=True)


@dataclass(frozen=True, slots=True)
class Literal(Expr):
    """A constant: a number, a string, true/false or null."""

    value: LiteralValue
    position: int = _position()
    type: LiteralType = field(init=False, compare=True, repr=False)

    def __post_init__(self) -> None:
        value = self.value
        kind: LiteralType
        if value is None:
            kind = "null"
        elif isinstance(value, bool):
            kind = "bool"
        elif isinstance(value, int | float):
            if isinstance(value, float) and not math.isfinite(value):
                raise ValueError(f"a slice literal must be a finite number, got {value!r}")
            kind = "number"
        elif isinstance(value, str):
            kind = "string"
        else:
            raise TypeError(
                f"a slice literal must be int, float, str, bool or None, got {type(value).__name__}"
            )
        object.__setattr__(self, "type", kind)


Operand = Column | Literal


@dataclass(frozen=True, slots=True)
class Compare(Expr):
    """``left op right`` with op one of = != < <= > >= (``==`` and ``<>`` are normalized)."""

    op: CompareOp
    left: Operand
    right: Operand
    position: int = _position()


@dataclass(frozen=True, slots=True)
class In(Expr):
    """``operand [not] in (v1, v2, ...)`` over non-null literals."""

    operand: Operand
    values: tuple[Literal, ...]
    negated: bool = False
    position: int = _position()


@dataclass(frozen=True, slots=True)
class Between(Expr):
    """``operand [not] between low and high`` (both bounds inclusive)."""

    operand: Operand
    low: Operand
    high: Operand
    negated: bool = False
    position: int = _position()


@dataclass(frozen=True, slots=True)
class IsNull(Expr):
    """``operand is [not] null``."""

    operand: Operand
    negated: bool = False
    position: int = _position()


@dataclass(frozen=True, slots=True)
class Not(Expr):
    """``not operand``."""

    operand: Expr
    position: int = _position()


@dataclass(frozen=True, slots=True)
class And(Expr):
    """``a and b and ...`` (two or more operands)."""

    operands: tuple[Expr, ...]
    position: int = _position()


@dataclass(frozen=True, slots=True)
class Or(Expr):
    """``a or b or ...`` (two or more operands)."""

    operands: tuple[Expr, ...]
    position: int = _position()


def _collect_columns(node: Expr, names: set[str]) -> None:
    if isinstance(node, Column):
        names.add(node.name)
    elif isinstance(node, Literal):
        return
    elif isinstance(node, Compare):
        _collect_columns(node.left, names)
        _collect_columns(node.right, names)
    elif isinstance(node, In):
        _collect_columns(node.operand, names)
    elif isinstance(node, Between):
        _collect_columns(node.operand, names)
        _collect_columns(node.low, names)
        _collect_columns(node.high, names)
    elif isinstance(node, IsNull | Not):
        _collect_columns(node.operand, names)
    elif isinstance(node, And | Or):
        for child in node.operands:
            _collect_columns(child, names)
    else:
        raise TypeError(f"not a slice expression node: {type(node).__name__}")
