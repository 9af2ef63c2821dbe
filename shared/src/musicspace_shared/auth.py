"""The admin credential: X-API-Key or Authorization: Bearer, compared in constant time."""

from __future__ import annotations

import hmac
from typing import Annotated

from fastapi import Depends, Header, Request

from musicspace_shared.errors import Forbidden, Unauthorized


async def require_admin(
    request: Request,
    x_api_key: Annotated[str | None, Header(max_length=512)] = None,
    authorization: Annotated[str | None, Header(max_length=512)] = None,
) -> None:
    expected = request.app.state.settings.admin_key
    supplied = x_api_key
    if supplied is None and authorization and authorization.lower().startswith("bearer "):
        supplied = authorization[7:].strip()
    if not supplied:
        raise Unauthorized("admin credential required (X-API-Key header)")
    if expected is None or not hmac.compare_digest(supplied.encode(), expected.encode()):
        raise Forbidden("admin credential rejected")


AdminDep = Depends(require_admin)
AdminOnly = Annotated[None, Depends(require_admin)]
