"""Recommendation ids: every recommend answer carries one, and events may refer to it.

The id is opaque to clients, but it names the source that answered (m1, m2, m3, llm, blend,
popular, ...) and the A/B arm the user was in, so an event that refers to it is attributed to a
model and an arm without a lookup or a write on the answer's path:

    "<source>.<arm>.<token>"    e.g. "m3.control.5f2c9a1e0b7d4c3a"

An id that does not parse is a client error (422 where it is accepted as input).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Annotated

from pydantic import Field

NO_ARM = "none"
_PART = r"[a-z0-9_]{1,24}"
PATTERN = rf"^({_PART})\.({_PART})\.([0-9a-f]{{16}})$"
_RE = re.compile(PATTERN)

RecommendationId = Annotated[
    str,
    Field(
        pattern=PATTERN,
        max_length=66,
        description="the recommendation_id of the answer this refers to (opaque)",
        examples=["m3.control.5f2c9a1e0b7d4c3a"],
    ),
]


@dataclass(frozen=True)
class ParsedId:
    source: str
    arm: str


def new_id(source: str, arm: str = NO_ARM) -> str:
    """A fresh id for an answer given by `source` to a user in `arm`."""
    rid = f"{source}.{arm}.{secrets.token_hex(8)}"
    if not _RE.match(rid):
        raise ValueError(f"source and arm must match {_PART}: {source!r}, {arm!r}")
    return rid


def parse(rid: str) -> ParsedId:
    """The source and arm named by an id; ValueError if it is not one."""
    match = _RE.match(rid)
    if match is None:
        raise ValueError(f"not a recommendation id: {rid!r}")
    return ParsedId(source=match.group(1), arm=match.group(2))
