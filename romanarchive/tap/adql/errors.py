"""Exceptions raised while parsing and translating ADQL."""

from __future__ import annotations


class AdqlError(ValueError):
    """A query that is valid ADQL syntax but cannot be run here.

    Unknown or unpublished tables and columns, ambiguous names, wrong argument counts or types, forbidden functions and
    exceeded size or nesting limits.
    """


class AdqlSyntaxError(AdqlError):
    """A query that does not parse as ADQL.

    Parameters
    ----------
    message
        Human-readable description, already including the position.
    line, column
        1-based position of the offending token (None when unknown).
    """

    def __init__(self, message: str, line: int | None = None, column: int | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.column = column
