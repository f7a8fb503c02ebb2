"""Recursive-descent parser: text -> :class:`Expr`.

Grammar (keywords case-insensitive; precedence or < and < not < predicate)::

    expr      := or_expr
    or_expr   := and_expr ("or" and_expr)*
    and_expr  := not_expr ("and" not_expr)*
    not_expr  := "not" not_expr | predicate
    predicate := "(" expr ")"
               | operand cmp operand
               | operand ["not"] "in" "(" literal ("," literal)* ")"
               | operand ["not"] "between" operand "and" operand
               | operand "is" ["not"] "null"
               | identifier                       (a bare boolean column)
"""

from __future__ import annotations

import math
from typing import cast

from loopml.errors import SliceExpressionError
from loopml.slices._ast import (
    And,
    Between,
    Column,
    Compare,
    CompareOp,
    Expr,
    In,
    IsNull,
    Literal,
    LiteralValue,
    Not,
    Operand,
    Or,
)
from loopml.slices._lexer import Token, TokenKind, tokenize

__all__ = ["MAX_DEPTH", "parse"]

#: The deepest nesting of parentheses and ``not`` a slice expression may have. Deeper text
#: is refused with a clear error long before Python's recursion limit (about 250 levels of
#: parentheses) would end the parse with a RecursionError.
MAX_DEPTH = 64
_QUOTE_HINT = 'to use a keyword as a column name, quote it: "{word}"'


def parse(text: str) -> Expr:
    """Parse a slice expression such as ``age < 25 and os = 'android'`` into an AST.

    Raises :class:`loopml.errors.SliceExpressionError` with ``position`` at the offending
    token when the text does not parse.
    """
    if not isinstance(text, str):
        raise SliceExpressionError(
            f"a slice expression must be a string, got {type(text).__name__}",
            hint="write it as text, e.g. \"age < 25 and os = 'android'\"",
        )
    parser = _Parser(text)
    return parser.parse()


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.tokens = tokenize(text)
        self.index = 0
        self.depth = 0

    # -- token helpers -------------------------------------------------------------------
    def current(self) -> Token:
        return self.tokens[self.index]

    def advance(self) -> Token:
        token = self.tokens[self.index]
        if token.kind is not TokenKind.EOF:
            self.index += 1
        return token

    def at_keyword(self, *words: str) -> bool:
        return self.current().kind is TokenKind.KEYWORD and self.current().value in words

    def enter(self, token: Token) -> None:
        """One level deeper (a '(' or a 'not'); refuse beyond :data:`MAX_DEPTH`."""
        self.depth += 1
        if self.depth > MAX_DEPTH:
            end = token.position + 20
            shown = self.text if len(self.text) <= end + 20 else self.text[:end] + " ..."
            raise SliceExpressionError(
                f"the expression nests deeper than {MAX_DEPTH} levels of parentheses or "
                f"'not' ({len(self.text):,} characters)",
                expression=shown,
                position=token.position,
                hint="remove redundant parentheses and double negations; "
                "'a and (b and c)' is 'a and b and c', 'not not x' is x",
            )

    def error(self, message: str, token: Token, hint: str | None = None) -> SliceExpressionError:
        return SliceExpressionError(
            message, expression=self.text, position=token.position, hint=hint
        )

    # -- grammar ---------------------------------------------------------------------------
    def parse(self) -> Expr:
        if self.current().kind is TokenKind.EOF:
            raise self.error(
                "empty slice expression",
                self.current(),
                hint="write a condition such as age < 25 and os = 'android'",
            )
        expr = self.or_expr()
        token = self.current()
        if token.kind is not TokenKind.EOF:
            if token.kind is TokenKind.RPAREN:
                raise self.error("unexpected ')' without a matching '('", token)
            raise self.error(
                f"unexpected {token.describe()}; expected 'and', 'or' or the end of the expression",
                token,
                hint="join conditions with 'and' or 'or'; quote string values: 'text'",
            )
        return expr

    def or_expr(self, after: Token | None = None) -> Expr:
        first = self.current()
        operands = [self.and_expr(after)]
        while self.at_keyword("or"):
            keyword = self.advance()
            operands.append(self.and_expr(keyword))
        if len(operands) == 1:
            return operands[0]
        return Or(tuple(operands), position=first.position)

    def and_expr(self, after: Token | None = None) -> Expr:
        first = self.current()
        operands = [self.not_expr(after)]
        while self.at_keyword("and"):
            keyword = self.advance()
            operands.append(self.not_expr(keyword))
        if len(operands) == 1:
            return operands[0]
        return And(tuple(operands), position=first.position)

    def not_expr(self, after: Token | None = None) -> Expr:
        if self.at_keyword("not"):
            token = self.advance()
            self.enter(token)
            inner = self.not_expr(token)
            self.depth -= 1
            return Not(inner, position=token.position)
        return self.predicate(after)

    def predicate(self, after: Token | None = None) -> Expr:
        token = self.current()
        if token.kind is TokenKind.LPAREN:
            self.advance()
            self.enter(token)
            if self.current().kind is TokenKind.RPAREN:
                raise self.error("expected a condition inside '()'", self.current())
            inner = self.or_expr(token)
            if self.current().kind is not TokenKind.RPAREN:
                if self.current().kind is TokenKind.EOF:
                    raise self.error(
                        "unclosed '('", token, hint="add the matching ')' at the right place"
                    )
                raise self.error(
                    f"expected ')' to close the '(' at offset {token.position}, got "
                    f"{self.current().describe()}",
                    self.current(),
                )
            self.advance()
            self.depth -= 1
            return inner
        left = self.operand(after=after, what="a condition")
        op_token = self.current()
        if op_token.kind is TokenKind.OP:
            self.advance()
            right = self.operand(after=op_token, what="a value")
            op = cast(CompareOp, op_token.value)
            for side in (left, right):
                if isinstance(side, Literal) and side.type == "null":
                    fix = "is not null" if op == "!=" else "is null"
                    raise SliceExpressionError(
                        f"'{op_token.text} null' is never true in SQL",
                        expression=self.text,
                        position=side.position,
                        hint=f"test for missing values with '{fix}'",
                    )
            return Compare(op, left, right, position=op_token.position)
        negated = False
        if self.at_keyword("not"):
            not_token = self.advance()
            negated = True
            if not self.at_keyword("in", "between"):
                raise self.error(
                    f"expected 'in' or 'between' after 'not', got {self.current().describe()}",
                    self.current(),
                    hint="to negate a condition write 'not' before it: not (x = 1)",
                )
            del not_token
        if self.at_keyword("in"):
            return self.in_list(left, negated)
        if self.at_keyword("between"):
            return self.between(left, negated)
        if self.at_keyword("is"):
            is_token = self.advance()
            is_negated = False
            if self.at_keyword("not"):
                self.advance()
                is_negated = True
            if not self.at_keyword("null"):
                raise self.error(
                    f"expected 'null' or 'not null' after 'is', got {self.current().describe()}",
                    self.current(),
                    hint="write 'x is null' or 'x is not null'; compare values with = or !=",
                )
            self.advance()
            return IsNull(left, is_negated, position=is_token.position)
        if isinstance(left, Column):
            return left
        raise self.error(
            f"expected an operator after {token.describe()}, got {op_token.describe()}",
            op_token,
            hint="a value alone is not a condition; compare it, e.g. x = "
            + token.text
            + ", or use a boolean column",
        )

    def in_list(self, left: Operand, negated: bool) -> Expr:
        in_token = self.advance()
        if self.current().kind is not TokenKind.LPAREN:
            raise self.error(
                f"expected '(' after 'in', got {self.current().describe()}",
                self.current(),
                hint="write the values in parentheses: x in ('a', 'b')",
            )
        open_token = self.advance()
        values: list[Literal] = []
        while True:
            if self.current().kind is TokenKind.RPAREN and not values:
                raise self.error(
                    "expected a value in the 'in' list, got ')'",
                    self.current(),
                    hint="an 'in' list needs at least one value: x in ('a')",
                )
            value = self.operand(after=None, what="a value in the 'in' list")
            if isinstance(value, Column):
                raise SliceExpressionError(
                    f"expected a literal value in the 'in' list, got column '{value.name}'",
                    expression=self.text,
                    position=value.position,
                    hint="'in' lists hold constants; compare columns with = and 'or'; "
                    "single-quote strings: 'text'",
                )
            if value.type == "null":
                raise SliceExpressionError(
                    "null in an 'in' list never matches in SQL",
                    expression=self.text,
                    position=value.position,
                    hint="add 'or x is null' to include missing values",
                )
            values.append(value)
            if self.current().kind is TokenKind.COMMA:
                self.advance()
                continue
            if self.current().kind is TokenKind.RPAREN:
                self.advance()
                break
            if self.current().kind is TokenKind.EOF:
                raise self.error("unclosed '('", open_token, hint="close the 'in' list with ')'")
            raise self.error(
                f"expected ',' or ')' in the 'in' list, got {self.current().describe()}",
                self.current(),
            )
        return In(left, tuple(values), negated, position=in_token.position)

    def between(self, left: Operand, negated: bool) -> Expr:
        between_token = self.advance()
        low = self.operand(after=between_token, what="a lower bound")
        if not self.at_keyword("and"):
            raise self.error(
                "expected 'and' after the lower bound of 'between', got "
                f"{self.current().describe()}",
                self.current(),
                hint="write x between 1 and 5",
            )
        and_token = self.advance()
        high = self.operand(after=and_token, what="an upper bound")
        for bound in (low, high):
            if isinstance(bound, Literal) and bound.type == "null":
                raise SliceExpressionError(
                    "a null bound makes 'between' never true in SQL",
                    expression=self.text,
                    position=bound.position,
                    hint="use a number, string or column as the bound",
                )
        return Between(left, low, high, negated, position=between_token.position)

    def operand(self, *, after: Token | None, what: str) -> Operand:
        token = self.current()
        if token.kind is TokenKind.IDENT:
            self.advance()
            return Column(token.value, position=token.position, quote=token.quote)
        if token.kind is TokenKind.STRING:
            self.advance()
            return Literal(token.value, position=token.position)
        if token.kind is TokenKind.NUMBER:
            number = _number(token.value)
            if not math.isfinite(number):
                raise self.error(
                    f"number {token.text} is too large",
                    token,
                    hint="numbers must fit in a 64-bit float (about 1.8e308)",
                )
            self.advance()
            return Literal(number, position=token.position)
        if token.kind is TokenKind.KEYWORD and token.value in ("true", "false", "null"):
            self.advance()
            value: LiteralValue = {"true": True, "false": False, "null": None}[token.value]
            return Literal(value, position=token.position)
        where = f" after {after.describe()}" if after is not None else ""
        hint = None
        if token.kind is TokenKind.KEYWORD:
            hint = _QUOTE_HINT.format(word=token.text)
        if token.kind is TokenKind.LPAREN and after is None:
            hint = "parentheses group conditions, not values"
        raise self.error(f"expected {what}{where}, got {token.describe()}", token, hint=hint)


def _number(text: str) -> int | float:
    if any(ch in text for ch in ".eE"):
        return float(text)
    return int(text)
