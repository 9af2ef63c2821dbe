"""Typed domain errors; one handler (web.py) renders them as JSON problems."""

from __future__ import annotations

import math


class DomainError(Exception):
    """Base class: status and a title the client can read."""

    status = 400
    title = "Bad request"
    headers: dict[str, str] = {}

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


class TooManyRequests(DomainError):
    """A limit was reached (rate or queue); Retry-After says when trying again makes sense."""

    status = 429
    title = "Too many requests"

    def __init__(self, detail: str, *, retry_after_s: float, **extra: object) -> None:
        seconds = max(1, math.ceil(retry_after_s))
        super().__init__(detail, retry_after_s=seconds, **extra)
        self.headers = {"Retry-After": str(seconds)}
