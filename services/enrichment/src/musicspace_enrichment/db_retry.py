"""Retry a short transaction that lost a deadlock or a lock wait (MariaDB 1213 / 1205, SQLite busy)."""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from typing import TypeVar

from sqlalchemy.exc import DBAPIError

T = TypeVar("T")

_RETRYABLE_CODES = {1205, 1213}


def is_lock_conflict(exc: DBAPIError) -> bool:
    args = getattr(exc.orig, "args", ()) or ()
    if args and isinstance(args[0], int) and args[0] in _RETRYABLE_CODES:
        return True
    return "database is locked" in str(exc.orig)


async def retry_on_deadlock(attempt: Callable[[], Awaitable[T]], *, tries: int = 5) -> T:
    """Run attempt(); InnoDB rolls a deadlock victim back whole, so running it again is safe."""
    for n in range(tries):
        try:
            return await attempt()
        except DBAPIError as exc:
            if n + 1 >= tries or not is_lock_conflict(exc):
                raise
            await asyncio.sleep(0.05 * (2**n) * (1 + random.random()))
    raise AssertionError("unreachable")
