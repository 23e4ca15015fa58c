"""How refusals travel: an exception inside the ingress, a plain value across deployment handles."""
from __future__ import annotations

from dataclasses import dataclass


class RequestRejected(Exception):
    """A request the server refuses: carries the HTTP status and a message for the user."""

    def __init__(self, status: int, detail: str, headers: dict[str, str] | None = None):
        super().__init__(detail)
        self.status = status
        self.detail = detail
        self.headers = headers


@dataclass(frozen=True)
class Failure:
    """What a generation or evaluation replica returns instead of raising.

    Returned rather than raised so that the ingress gets the status and the
    message as they were meant, not wrapped in a Ray task error.
    """

    status: int
    detail: str

    def reject(self) -> RequestRejected:
        return RequestRejected(self.status, self.detail)
