"""Who is calling: three credentials, checked once here; routes only say what they need.

- **admin key** (ADMIN_API_KEY[_FILE]): the ops routes (`/admin/...`, index sync,
  enrich-all) and anything else; not rate limited.
- **app credential** (APP_API_KEY[_FILE]): the web app's backend; may act for any user.
- **user token**: a JWT signed HS256 with USER_TOKEN_SECRET[_FILE], the user id in `sub`
  (a decimal string), `exp` required (and `aud` when USER_TOKEN_AUDIENCE is set); it reads
  and acts only for its own user.

Keys go in `X-API-Key: <key>` or `Authorization: Bearer <key>`, tokens in `Authorization:
Bearer <jwt>`; one of the two headers, not both. The value is compared in constant time
against both keys (the time taken says nothing about which, if any, matched); credentials are
never logged. Spaces and tabs around a header value are not part of it (RFC 9110 5.5): the
gateway strips them before a service sees the request, so the service strips them too and a
key with trailing spaces gets the same answer directly and through the gateway; any other
difference (a space inside, a missing or extra character) is refused.
A route takes `Caller` (any credential) and calls `caller.act_for(user_id)` for each user
whose data it reads or changes, `Backend` (the app credential or the admin key: ingestion) or
`AdminOnly`. No or an unknown credential: 401; a known one
without the right: 403. Each credential has its own rate limit (musicspace_shared.limits).
"""

from __future__ import annotations

import hmac
import re
from dataclasses import dataclass
from typing import Annotated, Any, Literal

import jwt
from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPBearer

from musicspace_shared.errors import Forbidden, Unauthorized
from musicspace_shared.ids import MAX_USER_ID
from musicspace_shared.limits import RateLimiter

Scope = Literal["admin", "app", "user"]
_USER_ID = re.compile(r"[1-9][0-9]{0,15}")
MAX_CREDENTIAL_LENGTH = 4096

BEARER_DOC = (
    "`Authorization: Bearer <credential>`: the app credential (the web app's backend, acts for "
    "any user), a user token (JWT, HS256, the user id as a string in `sub`, `exp` required; "
    "reads and acts only for that user: another user's id answers 403) or the admin key."
)
API_KEY_DOC = "`X-API-Key: <key>`: the app credential or the admin key (ops routes)."


class _RawBearer(HTTPBearer):
    """Documents the bearer scheme; hands the token to identify() as sent."""

    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        value = request.headers.get("authorization")
        if value is None:
            return None
        scheme, _, token = value.partition(" ")
        return token if scheme.lower() == "bearer" else ""


class _RawApiKey(APIKeyHeader):
    async def __call__(self, request: Request) -> str | None:  # type: ignore[override]
        return request.headers.get("x-api-key")


bearer_scheme = _RawBearer(
    scheme_name="bearer", bearerFormat="JWT or key", description=BEARER_DOC, auto_error=False
)
api_key_scheme = _RawApiKey(
    name="X-API-Key", scheme_name="apiKey", description=API_KEY_DOC, auto_error=False
)


@dataclass(frozen=True)
class Principal:
    """An authenticated caller: its scope and, for a user token, its user."""

    scope: Scope
    user_id: int | None = None

    def act_for(self, user_id: int) -> None:
        """Refuse (403) unless this caller may read and change `user_id`'s data."""
        if self.scope == "user" and user_id != self.user_id:
            raise Forbidden("this user token may only read and act for its own user")


def _matches(supplied: bytes, expected: str | None) -> bool:
    # Always compares (against a dummy when unset): the time does not reveal what is configured.
    return hmac.compare_digest(supplied, (expected or "\0").encode()) and expected is not None


def _user_from_token(token: str, settings: Any) -> int:
    key = settings.user_token_key
    if key is None:
        raise Unauthorized("credential not recognised (user tokens are not configured)")
    audience = settings.user_token_audience
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=["HS256"],
            audience=audience,
            options={"require": ["exp", "sub"], "verify_aud": audience is not None},
        )
    except jwt.ExpiredSignatureError:
        raise Unauthorized("user token expired") from None
    except jwt.PyJWTError as exc:
        # The reason (e.g. "Signature verification failed"), never the token itself.
        raise Unauthorized(f"user token rejected: {exc}") from None
    sub = claims["sub"]
    if not (isinstance(sub, str) and _USER_ID.fullmatch(sub) and int(sub) <= MAX_USER_ID):
        raise Unauthorized("user token rejected: `sub` must be a user id (a decimal string)")
    return int(sub)


def identify(settings: Any, *, api_key: str | None, bearer: str | None) -> Principal:
    """The caller behind the headers, or Unauthorized (no, two or an unknown credential)."""
    if api_key is not None and bearer is not None:
        raise Unauthorized("send one credential: X-API-Key or Authorization, not both")
    supplied = (api_key if api_key is not None else bearer or "").strip(" \t")
    if not supplied:
        raise Unauthorized(
            "credential required: Authorization: Bearer <app credential or user token>, "
            "or X-API-Key: <key>"
        )
    if len(supplied) > MAX_CREDENTIAL_LENGTH:
        raise Unauthorized(f"credential not recognised (longer than {MAX_CREDENTIAL_LENGTH})")
    raw = supplied.encode("utf-8", "surrogateescape")
    is_admin = _matches(raw, settings.admin_key)
    is_app = _matches(raw, settings.app_key)
    if is_admin:
        return Principal("admin")
    if is_app:
        return Principal("app")
    if bearer is not None and supplied.count(".") == 2:
        return Principal("user", _user_from_token(supplied, settings))
    raise Unauthorized("credential not recognised")


def rate_limiters(settings: Any) -> dict[Scope, RateLimiter]:
    """The buckets one service process keeps: one per user token's user, one for the app."""
    return {
        "user": RateLimiter(
            per_s=settings.rate_limit_user_per_s, burst=settings.rate_limit_user_burst
        ),
        "app": RateLimiter(
            per_s=settings.rate_limit_app_per_s, burst=settings.rate_limit_app_burst
        ),
    }


async def authenticate(
    request: Request,
    api_key: Annotated[str | None, Depends(api_key_scheme)],
    bearer: Annotated[str | None, Depends(bearer_scheme)],
) -> Principal:
    principal = identify(request.app.state.settings, api_key=api_key, bearer=bearer)
    limiter = request.app.state.rate_limiters.get(principal.scope)
    if limiter is not None:
        limiter.take(principal.user_id)
    return principal


async def require_admin(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    if principal.scope != "admin":
        raise Forbidden("this route needs the admin key")
    return principal


async def require_backend(principal: Annotated[Principal, Depends(authenticate)]) -> Principal:
    if principal.scope == "user":
        raise Forbidden("this route needs the app credential or the admin key, not a user token")
    return principal


Caller = Annotated[Principal, Depends(authenticate)]
"""Any credential; user-scoped routes then call caller.act_for(user_id)."""
AdminOnly = Annotated[Principal, Depends(require_admin)]
Backend = Annotated[Principal, Depends(require_backend)]
"""The app credential or the admin key (the web app's backend writing users and the catalog)."""
