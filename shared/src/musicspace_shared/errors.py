"""Typed domain errors; one handler (web.py) renders them as JSON problems."""

from __future__ import annotations


class DomainError(Exception):
    """Base class: status and a title the client can read."""

    status = 400
    title = "Bad request"

    def __init__(self, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.detail = detail
        self.extra = extra


class InvalidInput(DomainError):
    status = 422
    title = "Invalid input"


class NotFound(DomainError):
    status = 404
    title = "Not found"


class Conflict(DomainError):
    status = 409
    title = "Conflict"


class NotEnoughData(DomainError):
    status = 422
    title = "Not enough data"


class ModelNotReady(DomainError):
    status = 503
    title = "Model not ready"


class UpstreamUnavailable(DomainError):
    status = 503
    title = "Upstream unavailable"


class Unauthorized(DomainError):
    status = 401
    title = "Unauthorized"


class Forbidden(DomainError):
    status = 403
    title = "Forbidden"
