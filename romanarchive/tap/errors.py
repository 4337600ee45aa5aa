"""The error every TAP module raises for a request it refuses or a query that failed."""

from __future__ import annotations


class TapError(Exception):
    """A request the service refuses or a query that failed; ``status`` is the HTTP status to answer with."""

    def __init__(self, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.status = status
