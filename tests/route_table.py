"""A fake peer's route table, for tests over httpx.MockTransport (the enrichment and recommend
fakes): each fake serves (method, path template) routes that its tests check against the real
service's OpenAPI; a request to any other path is recorded in `unknown` and answered 404.
"""

from __future__ import annotations

import re
from collections.abc import Callable

import httpx

Handler = Callable[[httpx.Request, dict[str, str]], httpx.Response]


def _pattern(template: str) -> re.Pattern[str]:
    return re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", template) + "$")


class RouteTable:
    """Dispatch by (method, path template); unknown routes are recorded and answered 404."""

    routes: dict[tuple[str, str], Handler]

    def __init__(self) -> None:
        self.unknown: list[str] = []

    def dispatch(self, request: httpx.Request) -> httpx.Response:
        for (method, template), handler in self.routes.items():
            match = _pattern(template).match(request.url.path)
            if match and request.method == method:
                return handler(request, match.groupdict())
        self.unknown.append(f"{request.method} {request.url.path}")
        return httpx.Response(404, json={"title": "Not found", "detail": "no such route"})
