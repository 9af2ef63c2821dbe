"""Validated identifiers: checked before they touch a path or a query."""

from __future__ import annotations

import re
from typing import Annotated

from fastapi import Path
from pydantic import Field

from musicspace_shared.inputs import DecimalText

MAX_USER_ID = 2**53 - 1
TRACK_ID_PATTERN = r"^[A-Za-z0-9_-]{1,64}$"
_TRACK_ID_RE = re.compile(TRACK_ID_PATTERN)

# strict: true, "1" and 1.0 are not user 1 (musicspace_shared.inputs).
UserId = Annotated[int, Field(strict=True, ge=1, le=MAX_USER_ID, description="MusicSpace user id")]
TrackId = Annotated[
    str, Field(min_length=1, max_length=64, pattern=TRACK_ID_PATTERN, description="track id")
]
UserIdPath = Annotated[
    int, DecimalText, Path(ge=1, le=MAX_USER_ID, description="MusicSpace user id (decimal digits)")
]
TrackIdPath = Annotated[
    str, Path(min_length=1, max_length=64, pattern=TRACK_ID_PATTERN, description="track id")
]


def is_valid_track_id(value: str) -> bool:
    return bool(_TRACK_ID_RE.match(value))


def checked_user_id(value: int) -> int:
    """Return value if it is a valid user id (safe to use in a file name), else raise."""
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= MAX_USER_ID:
        raise ValueError(f"invalid user id: {value!r}")
    return value
