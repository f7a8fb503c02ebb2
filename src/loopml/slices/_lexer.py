"""Tokenizer of the slice expression language."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum

from loopml.errors import SliceExpressionError

__all__ = ["KEYWORDS", "Token", "TokenKind", "tokenize"]

KEYWORDS = frozenset({"and", "or", "not", "in", "between", "is", "null", "true", "false"})

_OPERATORS = {
    "=": "=",
    "==": "=",
    "!=": "!=",
    "<>": "!=",
    "<": "<",
    "<=": "<=",
    ">": ">",
    ">=": ">=",
}
_OPERATOR_CHARS = frozenset("=!<>")
_OPERATOR_FIXES = {"=<": "<=", "=>": ">=", "!": "!=", "=!": "!=", "===": "=", "><": "!="}
_IDENT_START = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ_")
_IDENT_CHARS = _IDENT_START | frozenset("0123456789.")
_DIGITS = frozenset("0123456789")


class TokenKind(Enum):
    IDENT = "identifier"
    KEYWORD = "keyword"
    STRING = "string"
    NUMBER = "number"
    OP = "operator"
    LPAREN = "'('"
    RPAREN = "')'"
    COMMA = "','"
    STAR = "'*'"
    EOF = "end of expression"


@dataclass(frozen=True, slots=True)
class Token:
    kind: TokenKind
    #: identifier name (unquoted), keyword (lower case), string contents, operator
    #: (normalized), or the number's source text.
    value: str
    position: int
    #: the token as written in the source
    text: str
    #: for IDENT: "" when bare, else the quote character
    quote: str = ""

    def describe(self) -> str:
        if self.kind is TokenKind.EOF:
            return "the end of the expression"
        return f"'{self.text}'"


def tokenize(text: str) -> list[Token]:
    """Split ``text`` into tokens; the last token is always EOF."""
    tokens: list[Token] = []
    i = 0
    n = len(text)
    while i < n:
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch == "(":
            tokens.append(Token(TokenKind.LPAREN, "(", i, "("))
            i += 1
        elif ch == ")":
            tokens.append(Token(TokenKind.RPAREN, ")", i, ")"))
            i += 1
        elif ch == ",":
            tokens.append(Token(TokenKind.COMMA, ",", i, ","))
            i += 1
        elif ch == "*":
            tokens.append(Token(TokenKind.STAR, "*", i, "*"))
            i += 1
        elif ch == "'":
            value, end = _read_quoted(text, i, "'", "string literal")
            tokens.append(Token(TokenKind.STRING, value, i, text[i:end]))
            i = end
        elif ch in '"`':
            value, end = _read_quoted(text, i, ch, "quoted column name")
            if value == "":
                raise SliceExpressionError(
                    "empty quoted column name",
                    expression=text,
                    position=i,
                    hint='write the column name between the quotes, e.g. "my column"',
                )
            tokens.append(Token(TokenKind.IDENT, value, i, text[i:end], quote=ch))
            i = end
        elif ch in _OPERATOR_CHARS:
            j = i
            while j < n and text[j] in _OPERATOR_CHARS:
                j += 1
            op = text[i:j]
            if op not in _OPERATORS:
                fix = _OPERATOR_FIXES.get(op)
                hint = f"did you mean '{fix}'?" if fix else None
                raise SliceExpressionError(
                    f"unknown operator '{op}'; expected one of = == != <> < <= > >=",
                    expression=text,
                    position=i,
                    hint=hint or "use one of = == != <> < <= > >=",
                )
            tokens.append(Token(TokenKind.OP, _OPERATORS[op], i, op))
            i = j
        elif ch in _DIGITS or (
            ch in "-+." and i + 1 < n and (text[i + 1] in _DIGITS or text[i + 1] == ".")
        ):
            end = _read_number(text, i)
            tokens.append(Token(TokenKind.NUMBER, text[i:end], i, text[i:end]))
            i = end
        elif ch in _IDENT_START:
            j = i + 1
            while j < n and text[j] in _IDENT_CHARS:
                j += 1
            word = text[i:j]
            if word.lower() in KEYWORDS:
                tokens.append(Token(TokenKind.KEYWORD, word.lower(), i, word))
            else:
                tokens.append(Token(TokenKind.IDENT, word, i, word))
            i = j
        else:
            hint = 'quote column names that contain other characters: "my column"'
            if ch in "-+":
                hint = "a sign must be followed by a number, e.g. -5"
            raise SliceExpressionError(
                f"unexpected character {ch!r}",
                expression=text,
                position=i,
                hint=hint,
            )
    tokens.append(Token(TokenKind.EOF, "", n, ""))
    return tokens


def _read_quoted(text: str, start: int, quote: str, what: str) -> tuple[str, int]:
    """Read a quoted token starting at ``start``; a doubled quote stands for one quote."""
    parts: list[str] = []
    i = start + 1
    n = len(text)
    while i < n:
        ch = text[i]
        if ch == quote:
            if i + 1 < n and text[i + 1] == quote:
                parts.append(quote)
                i += 2
                continue
            return "".join(parts), i + 1
        parts.append(ch)
        i += 1
    raise SliceExpressionError(
        f"unclosed {what}: no closing {quote} for the {quote} here",
        expression=text,
        position=start,
        hint=f"close it with {quote}; write a {quote} inside it as {quote}{quote}",
    )


def _read_number(text: str, start: int) -> int:
    """Return the end of the number starting at ``start`` (optional sign, digits, fraction,
    exponent); raise when letters follow it directly."""
    n = len(text)
    i = start
    if text[i] in "-+":
        i += 1
    digits = 0
    while i < n and text[i] in _DIGITS:
        i += 1
        digits += 1
    if i < n and text[i] == ".":
        i += 1
        while i < n and text[i] in _DIGITS:
            i += 1
            digits += 1
    if digits == 0:
        raise SliceExpressionError(
            f"malformed number {text[start:i]!r}",
            expression=text,
            position=start,
            hint="write numbers like 5, -2.5, .5 or 1e6",
        )
    if i < n and text[i] in "eE":
        j = i + 1
        if j < n and text[j] in "+-":
            j += 1
        if j < n and text[j] in _DIGITS:
            while j < n and text[j] in _DIGITS:
                j += 1
            i = j
    if i < n and (text[i] in _IDENT_CHARS):
        j = i
        while j < n and text[j] in _IDENT_CHARS:
            j += 1
        raise SliceExpressionError(
            f"malformed number {text[start:j]!r}",
            expression=text,
            position=start,
            hint='column names cannot start with a digit unless quoted: "' + text[start:j] + '"',
        )
    return i
