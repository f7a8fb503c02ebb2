"""The loopml exception hierarchy.

Every error loopml raises on purpose is a :class:`LoopmlError`. Its message has one
shape: what was given, what was expected, and how to fix it, naming the file, key,
column or row where that applies. The CLI prints the message and the hint and exits
with status 2 (no traceback unless ``--debug``); the server maps the classes to HTTP
statuses.

::

    LoopmlError                     base class; never raised directly
    ├── SpecError                   loopml.toml is missing, unreadable or invalid
    ├── ProjectNotFoundError        no loopml.toml in the directory or its parents
    ├── StoreError                  the store cannot be opened, read or written
    │   └── IntegrityError          an artifact does not match its content hash
    ├── NotFoundError               an id or name@version that the store does not hold
    ├── InputError                  a file, table, column or value given by the user is bad
    │   ├── SchemaError             a column is missing or has the wrong type
    │   └── SliceExpressionError    a slice expression does not parse or names unknown columns
    ├── ComputationError            a result is undefined for the given data
    └── ConfigurationError          an estimator, rule or extension cannot be loaded
"""

from __future__ import annotations

__all__ = [
    "ComputationError",
    "ConfigurationError",
    "InputError",
    "IntegrityError",
    "LoopmlError",
    "NotFoundError",
    "ProjectNotFoundError",
    "SchemaError",
    "SliceExpressionError",
    "SpecError",
    "StoreError",
]


class LoopmlError(Exception):
    """Base class of every error loopml raises on purpose.

    ``message`` says what went wrong (what was given and what was expected);
    ``hint`` says how to fix it; ``where`` names the file, key, column or row.
    """

    exit_code = 2

    def __init__(self, message: str, *, hint: str | None = None, where: str | None = None) -> None:
        self.message = message
        self.hint = hint
        self.where = where
        super().__init__(self.__str__())

    def __str__(self) -> str:
        text = f"{self.where}: {self.message}" if self.where else self.message
        if self.hint:
            text += f"\n  hint: {self.hint}"
        return text

    def to_dict(self) -> dict[str, str | None]:
        return {
            "error": type(self).__name__,
            "message": self.message,
            "where": self.where,
            "hint": self.hint,
        }


class SpecError(LoopmlError):
    """loopml.toml is missing, unreadable or invalid."""


class ProjectNotFoundError(LoopmlError):
    """No loopml.toml in the directory or any of its parents."""


class StoreError(LoopmlError):
    """The store cannot be opened, read or written."""


class IntegrityError(StoreError):
    """An artifact's content does not match its sha256 address."""


class NotFoundError(LoopmlError):
    """An id or name@version that the store does not hold."""


class InputError(LoopmlError):
    """A file, table, column or value given by the user is bad."""


class SchemaError(InputError):
    """A column is missing or has the wrong type."""


class SliceExpressionError(InputError):
    """A slice expression does not parse or names unknown columns.

    ``position`` is the 0-based character offset of the offending token.
    """

    def __init__(
        self,
        message: str,
        *,
        expression: str = "",
        position: int | None = None,
        hint: str | None = None,
        where: str | None = None,
    ) -> None:
        self.expression = expression
        self.position = position
        if expression and position is not None:
            pointer = " " * position + "^"
            message = f"{message}\n    {expression}\n    {pointer}"
        super().__init__(message, hint=hint, where=where)


class ComputationError(LoopmlError):
    """A result is undefined for the given data (for example agreement with one annotator)."""


class ConfigurationError(LoopmlError):
    """An estimator, rule function or extension cannot be imported or configured."""
