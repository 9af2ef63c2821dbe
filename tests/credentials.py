"""Credentials every test uses: the root conftest puts the app key and the user-token secret
in the environment (so every service's settings read them), and in-process clients send the
app credential unless a test says otherwise."""

from __future__ import annotations

import time

import jwt

APP_KEY = "test-app-credential-0123456789abcdef"
USER_TOKEN_SECRET = "test-user-token-secret-" + "0123456789abcdef" * 3
APP = {"Authorization": f"Bearer {APP_KEY}"}
ENV = {"APP_API_KEY": APP_KEY, "USER_TOKEN_SECRET": USER_TOKEN_SECRET}


def user_token(
    user_id: int | str, *, ttl_s: float = 600, secret: str = USER_TOKEN_SECRET, **claims: object
) -> str:
    """A user token as the web app would issue it (HS256, `sub` the user id as a string)."""
    payload = {"sub": str(user_id), "exp": int(time.time() + ttl_s), **claims}
    return jwt.encode(payload, secret, algorithm="HS256")


def as_user(user_id: int | str, **kwargs: object) -> dict[str, str]:
    return {"Authorization": f"Bearer {user_token(user_id, **kwargs)}"}  # type: ignore[arg-type]
